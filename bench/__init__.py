"""Benchmarks: `python bench/issuance.py` (or `make bench`)."""
