"""Tabular dumps of the canonical tables (CSV, Parquet, Arrow): spans tables as labelled
datasets ship them, and ``forensics export`` output."""
