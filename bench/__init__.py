"""Benchmarks for SPEC's targets P1-P5 and M1 (`make bench`)."""
