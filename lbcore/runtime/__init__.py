"""The runtime API (HAProxy's CLI on the stats socket), sans-I/O core plus adapters.

* ``state``    -- the state store the commands read and change (backends -> servers);
* ``commands`` -- the command table and what each command answers;
* ``cli``      -- a session: bytes in, bytes out (``;``, ``prompt``, ``quit``, levels);
* ``server``   -- the asyncio adapter serving unix and TCP sockets;
* ``ctl``      -- ``lbcore ctl -S SOCKET COMMAND...``, a socat-like client.
"""
