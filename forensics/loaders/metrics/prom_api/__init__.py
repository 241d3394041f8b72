"""Prometheus HTTP API ``query`` / ``query_range`` responses."""
