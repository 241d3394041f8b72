"""Deploy / change logs: CSV with a header or JSON lines."""
