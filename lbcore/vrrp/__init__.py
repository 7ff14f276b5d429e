"""lbcore's VRRP agent (keepalived-compatible): codec, state machine, config, daemon."""
