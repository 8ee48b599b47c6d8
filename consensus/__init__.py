"""Commons pure core: ledger, hash chain, checkpoints, rules, tallies. No I/O, no clock."""
