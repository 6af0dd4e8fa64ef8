"""Benchmarks runnable as modules, e.g. ``python -m direct_ray.benchmarks.selection``."""
