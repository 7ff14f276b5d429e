"""lbcore: a load balancer and VRRP agent that speak HAProxy's and keepalived's dialects."""

__version__ = "0.1.0"
