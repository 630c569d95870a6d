"""The live engine: a Room on one media clock, its chunk scheduler, latency policy, compositor and
subscribers."""
