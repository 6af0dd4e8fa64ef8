"""The results tables (Parquet): schema, atomic per-trial writer, validated reader."""
