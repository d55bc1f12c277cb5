"""Benchmarks: `make bench` runs them and prints tables (figures go in the issue notes)."""
