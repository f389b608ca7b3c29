"""Benchmarks: `make bench` (see README, "Performance")."""
