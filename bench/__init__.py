"""Benchmarks, each a ratio against a baseline run in the same command (`make bench`)."""
