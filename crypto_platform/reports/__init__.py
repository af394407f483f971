"""Reports and checks over the stores: plain Python, shared by the CLI and the Dagster assets.

`stores` opens the clients (once); `statistics`, `storage` and `throughput` build the
reports; `checks` holds every data check. `cassandra_sizes` (with `nodetool`) reads what
Cassandra says its tables hold; `disk` measures the local data directories where they
are visible. `defs/` only wires these into Dagster.
"""
