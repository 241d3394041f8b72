"""Spans as rows of a table: CSV or Parquet trace dumps of labelled datasets and APM exports."""
