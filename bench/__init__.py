"""Parley's benchmarks: ``python -m bench [name ...] [--quick]`` (see bench/README.md)."""
