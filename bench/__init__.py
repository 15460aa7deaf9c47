"""Benchmarks for the performance targets P1-P15, M1 and S1 (`make bench`)."""
