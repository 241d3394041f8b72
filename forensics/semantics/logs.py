"""What a warning log line is: one definition for the detectors (new error types of a version),
the cause ranking (onset search, a caller's reactions to a callee's answers) and the report."""
from __future__ import annotations

#: log severities at warning level or worse, as loaders write them (lower case) and as apps spell them
WARNING_SEVERITIES = ("warn", "warning", "error", "fatal", "critical")
#: OpenTelemetry's SeverityNumber of WARN (13-16); ERROR is 17-20, FATAL 21-24
WARN_SEVERITY_NUMBER = 13


def warning_sql(alias: str = "l") -> str:
    """Whether a log line aliased ``alias`` is at warning level or worse: its severity text, else
    its OpenTelemetry severity number."""
    levels = ", ".join(f"'{s}'" for s in WARNING_SEVERITIES)
    return (f"(lower(coalesce({alias}.severity, '')) IN ({levels}) "
            f"OR coalesce({alias}.severity_number, 0) >= {WARN_SEVERITY_NUMBER})")
