"""Benchmarks of the engine against its baselines; run with `make bench`, never as tests."""
