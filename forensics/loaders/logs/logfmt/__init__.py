"""logfmt ``key=value`` logs."""
