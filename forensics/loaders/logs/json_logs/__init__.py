"""JSON-lines logs and container (kubectl/CRI) logs."""
