"""lbcore: a load balancer and VRRP agent that speak HAProxy's and keepalived's dialects."""

from lbcore import _native

__version__ = "0.1.0"

_native.install()  # before any compiled module can be imported (see lbcore/_native.py)
