"""HTTP/1.x sans-I/O core: framing (h1), ACLs, rules and lbcore's own answers."""
