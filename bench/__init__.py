"""Benchmarks: ``python bench/saga_throughput.py`` and ``python -m bench.limits`` (see bench/README.md)."""
