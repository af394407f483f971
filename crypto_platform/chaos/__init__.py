"""`crypto-platform chaos`: faults under load on a stack of its own, then every tick accounted for.

`faults` applies the faults, `pipeline` runs and restarts producer, sink and Spark job,
`watch` sees when ticks flow end to end again, `compare` checks the stores tick by tick,
`report` writes the table, and `runner` puts them together.
"""
