"""What a warning log line is, for the cause ranking: the one definition in :mod:`forensics.semantics.logs`."""
from __future__ import annotations

from ..semantics.logs import WARNING_SEVERITIES, warning_sql

__all__ = ["WARNING_SEVERITIES", "warning_sql"]
