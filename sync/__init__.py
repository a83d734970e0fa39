"""The handheld sync protocol: op registry, push engine, change feed and pull."""
