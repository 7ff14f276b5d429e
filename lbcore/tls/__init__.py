"""TLS: certificate contexts, SNI selection, and ClientHello inspection for passthrough."""
