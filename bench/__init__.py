"""lagduel's benchmark suite: `make bench` (python -m bench) writes BENCHMARKS.md and bench/results.json."""
