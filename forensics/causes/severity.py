"""What a warning log line is, for the cause ranking (the onset search, reactions to answers)."""
from __future__ import annotations

#: log severities at warning level or worse (lower case)
WARNING_SEVERITIES = ("warn", "warning", "error", "fatal", "critical")


def warning_sql(alias: str = "l") -> str:
    """Whether a log line aliased ``alias`` is at warning level or worse."""
    levels = ", ".join(f"'{s}'" for s in WARNING_SEVERITIES)
    return f"(lower(coalesce({alias}.severity, '')) IN ({levels}))"
