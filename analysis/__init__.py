"""Analysis of a sweep's Parquet results: learning curves, label savings, noise and b_parallel views.

Run from the repository root: ``python -m analysis RESULTS_DIR [--out DIR]`` writes
``report.md`` with its tables and figures (see :func:`analysis.report.build_report`).
This package is deliberately not installed into site-packages (its name is generic); the
reusable, validated reader lives in :mod:`direct_ray.results.read`.
"""
