"""Masking of secrets and PII in everything a report renders.

The default patterns cover bearer tokens, JWTs, API keys and tokens in ``key=value`` form, cloud
keys (AWS access key ids, Stripe/GitHub/Slack style tokens), passwords in URLs, e-mail addresses,
IPv4 and IPv6 addresses. Each match is replaced by ``[REDACTED:<kind>]``.

>>> Redactor().text("GET https://bob:hunter2@api.example.com/?api_key=abc123 from 10.1.2.3")
'GET https://[REDACTED:url_credentials]@api.example.com/?api_key=[REDACTED:secret] from [REDACTED:ipv4]'
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

#: (kind, regex) in the order applied; a regex with a group named ``secret`` masks only that group
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("url_credentials", r"(?<=://)(?P<secret>[^/\s:@]+:[^/\s@]+)(?=@)"),
    ("bearer", r"(?i)\b(?:bearer|basic|token)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\b"),
    ("aws_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("token", r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}\b|\bgh[pousr]_[A-Za-z0-9]{20,}\b|\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    ("secret", r"(?i)(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|secret|password|passwd|pwd|client[_-]?secret|session[_-]?id)"
               r"[\"']?\s*[:=]\s*[\"']?(?P<secret>[^\s\"'&,;}]+)"),
    ("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    ("ipv4", r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
    ("ipv6", r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![:\w])|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}(?![:\w])"),
)


@dataclass
class Redactor:
    """Applies masking patterns to strings and, recursively, to lists and dicts.

    Parameters
    ----------
    patterns:
        ``(kind, regex)`` pairs; defaults to :data:`DEFAULT_PATTERNS`.
    extra:
        More ``(kind, regex)`` pairs appended to ``patterns`` (e.g. customer ids).
    """

    patterns: Iterable[tuple[str, str]] = DEFAULT_PATTERNS
    extra: Iterable[tuple[str, str]] = ()
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._compiled = [(kind, re.compile(rx)) for kind, rx in [*self.patterns, *self.extra]]

    def text(self, value: str) -> str:
        """``value`` with every match masked."""
        for kind, rx in self._compiled:
            value = rx.sub(lambda m, k=kind: self._mask(m, k), value)
        return value

    def _mask(self, m: re.Match, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if "secret" in m.re.groupindex and m.group("secret") is not None:
            start, end = m.span("secret")
            whole = m.group(0)
            base = m.start(0)
            return whole[: start - base] + f"[REDACTED:{kind}]" + whole[end - base:]
        return f"[REDACTED:{kind}]"

    def obj(self, value: Any, skip_keys: frozenset[str] = frozenset()) -> Any:
        """Redact every string inside nested dicts/lists/tuples (keys too), leaving the values of
        ``skip_keys`` (e.g. plotly's base64 ``bdata`` arrays) untouched."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {(self.text(k) if isinstance(k, str) else k): (v if k in skip_keys else self.obj(v, skip_keys))
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.obj(v, skip_keys) for v in value]
        return value


class NoRedaction(Redactor):
    """Identity redactor (used when a report is not redacted)."""

    def text(self, value: str) -> str:
        return value

    def obj(self, value: Any, skip_keys: frozenset[str] = frozenset()) -> Any:
        return value
