"""The runtime API (HAProxy's CLI on the stats socket), sans-I/O core plus adapters.

Core (no I/O, no clock):

* ``state``    -- the store the commands read and change (backends -> servers), whose
                  changes are published for the master to fan out to workers;
* ``commands`` -- the command table and the state-changing commands;
* ``show``     -- the ``show`` dumps; ``usage`` -- help and "Unknown command";
* ``cli``      -- a session: bytes in, bytes out (``;``, ``prompt``, ``quit``, levels);
* ``collect``  -- counters summed over worker snapshots; changes as channel messages;
* ``checks``   -- the health checker's verdicts as HAProxy's check columns.

Adapters: ``server`` (asyncio, unix and TCP stats sockets), ``service`` (that server
on a thread, for the master's selector loop), ``ctl`` (``lbcore ctl``, like socat).
"""
