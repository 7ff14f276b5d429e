"""Health checks: ``core`` decides (sans I/O), ``prober`` performs one check."""
