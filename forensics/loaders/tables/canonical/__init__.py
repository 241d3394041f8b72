"""Parquet and Arrow files of a canonical table (``forensics export`` output, a notebook's
``to_parquet``): loaded as they are."""
