"""Metrics as CSV."""
