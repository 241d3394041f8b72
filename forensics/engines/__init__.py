"""Execution engines other than DuckDB for the same detector definitions (see docs/spark.md)."""
