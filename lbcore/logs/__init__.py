"""HAProxy-format logging: records, the pure formatter, the sender, and ``lbcore halog``."""
