"""Tools that drive a running Fieldops server from outside: load for benchmarks, the fleet simulator.

They provision through the app and its services and speak the protocol over
HTTP; the sync engine (sync/) never imports them.
"""
