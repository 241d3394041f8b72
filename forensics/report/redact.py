"""Masking of secrets and PII in everything a report renders.

Two sources of patterns, applied to each string *value* before anything is serialized (JSON,
HTML, figure specs), so no escaping can split a secret from its pattern:

1. the secret classes of Yelp's `detect-secrets <https://github.com/Yelp/detect-secrets>`_
   (its regex plugins, run through ``analyze_string``: no verification, no network): AWS keys,
   Azure storage keys, basic-auth URLs, Artifactory, Cloudant, Discord, GitHub, GitLab, IBM,
   Mailchimp, npm, OpenAI, PyPI, SendGrid, Slack, SoftLayer, Square, Stripe, Telegram, Twilio
   tokens, JWTs (signed or not), private keys, and secret-sounding assignments
   (``password=...``, ``SECRETKEY: ...``, ``aws_secret_access_key = ...``, quoted or not). Its
   entropy plugins are not used: they would mask every trace id;
2. :data:`DEFAULT_PATTERNS` for what that set does not cover: bearer/basic tokens (also
   URL-encoded, ``Bearer%20...``), URL credentials with an empty user (``redis://:pw@host``),
   PEM private-key blocks, Google API keys, ``token``/``session id`` assignments, e-mail
   addresses, IPv4 and IPv6 addresses (``::1`` too).

Each match becomes ``[REDACTED:<kind>]``; :attr:`Redactor.counts` counts them by kind.

>>> Redactor().text("GET https://bob:hunter2@api.example.com/?api_key=abc123 from 10.1.2.3")
'GET https://bob:[REDACTED:basic_auth_credentials]@api.example.com/?api_key=[REDACTED:secret_keyword] from [REDACTED:ipv4]'
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator

#: detect-secrets plugins not used (secret_type): entropy scans flag every hex/base64 id; IPs are
#: masked below, private ranges included
EXCLUDED_PLUGINS = frozenset({"Base64 High Entropy String", "Hex High Entropy String", "Public IP (ipv4)"})

#: a value already masked is never masked again
_NOT_MASKED = r"(?!\[REDACTED:)"

#: (kind, regex) in the order applied, after the detect-secrets plugins; a regex with a group named
#: ``secret`` masks only that group
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    ("url_credentials", r"(?<=://)(?P<secret>[^/\s:@]*:" + _NOT_MASKED + r"[^/\s@]+)(?=@)"),
    ("bearer", r"(?i)\b(?:bearer|basic|token)(?:\s+|%20|\+)" + _NOT_MASKED + r"(?P<secret>[A-Za-z0-9._~+/=-]{8,})"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    ("aws_key", r"\b(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("token", r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}\b|\bgh[pousr]_[A-Za-z0-9]{20,}\b|\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    ("secret", r"(?i)[\w.-]*(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|"
               r"secret|password|passwd|pwd|client[_-]?secret|session[_-]?id|private[_-]?key|credentials?)[\w.-]*"
               r"[\"']?\s*(?:[:=]|%3[Dd])\s*[\"']?" + _NOT_MASKED + r"(?P<secret>[^\s\"'&,;}]+)"),
    ("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    ("ipv4", r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
    ("ipv6", r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:])"),
)

_DEFAULT_REGEX = dict(DEFAULT_PATTERNS)

#: no detect-secrets regex plugin matches fewer characters (Artifactory's ``AP`` + 9)
_SHORTEST_PLUGIN_SECRET = 10

#: own patterns applied before the plugins (detect-secrets masks only a private key's header line)
_BEFORE_PLUGINS = frozenset({"private_key"})

#: a string can hold a match of this kind only if its lower-cased text contains one of these
#: (a cheap test that skips most telemetry strings)
_HINTS: dict[str, tuple[str, ...]] = {
    "private_key": ("private key",), "url_credentials": ("://",), "bearer": ("bearer", "basic", "token"),
    "jwt": ("eyj",), "google_api_key": ("aiza",), "aws_key": ("a3t", "abia", "acca", "akia", "asia"),
    "token": ("_live_", "_test_", "gh", "xox"),
    "secret": ("key", "token", "secret", "pass", "pwd", "session", "credential"),
    "email": ("@",), "ipv4": (".",), "ipv6": (":",),
}

#: candidate matches of these kinds are masked only when this check accepts them
_VALIDATORS: dict[str, Callable[[str], bool]] = {}


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_VALIDATORS["ipv6"] = _is_ipv6


def _kind(secret_type: str) -> str:
    """``'AWS Access Key'`` -> ``'aws_access_key'``."""
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


@lru_cache(maxsize=1)
def secret_plugins() -> tuple[tuple[str, Any], ...]:
    """(kind, detect-secrets plugin instance) for every regex plugin used (see module docstring)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    return tuple((_kind(t), cls()) for t, cls in sorted(get_mapping_from_secret_type_to_class().items())
                 if t not in EXCLUDED_PLUGINS)


def plugin_kinds() -> list[str]:
    """The kinds masked through detect-secrets (``[REDACTED:<kind>]``), for documentation."""
    return [k for k, _ in secret_plugins()]


@lru_cache(maxsize=1)
def _keyword_stems() -> tuple[str, ...]:
    """Words one of which a string must contain for the keyword plugin to find anything (the last
    part of each entry of its denylist: ``api_?key`` -> ``key``)."""
    from detect_secrets.plugins.keyword import DENYLIST

    return tuple(sorted({re.split(r"_\?", entry)[-1] for entry in DENYLIST}))


def _value_secrets(plugin: Any, value: str) -> list[str]:
    """Secret values found by a plugin that filters its own matches (JWTs are decoded, the keyword
    plugin picks the assigned value): quoted forms first, then unquoted ``key=value``/``key: value``
    assignments, cut at the first space or ``&`` (the next field of a log line is not the secret)."""
    found = [s for s in plugin.analyze_string(value) if s and not s.startswith("[REDACTED:")]
    if type(plugin).__name__ == "KeywordDetector":
        from detect_secrets.plugins.keyword import CONFIG_DENYLIST_REGEX_TO_GROUP

        for s in plugin.analyze_string(value, denylist_regex_to_group=CONFIG_DENYLIST_REGEX_TO_GROUP):
            s = re.split(r"[\s&]", s, maxsplit=1)[0]
            if s and not s.startswith("[REDACTED:"):
                found.append(s)
    return sorted(set(found), key=len, reverse=True)


def _match_span(m: re.Match) -> tuple[int, int]:
    """The part of a plugin regex match that is the secret: its first non-empty group unless that
    group only is the token's prefix (``ghp`` of a GitHub token), else the whole match without the
    delimiters some plugins match around a token (space, ``=``, ``:``, quotes)."""
    for g in range(1, (m.re.groups or 0) + 1):
        if m.group(g):
            if m.start(g) > m.start(0):
                return m.span(g)
            break
    start, end = m.span(0)
    text = m.string
    while start < end and text[start] in " \t\r\n=:\"'":
        start += 1
    while end > start and text[end - 1] in " \t\r\n\"'":
        end -= 1
    return start, end


def _mask_matches(kind: str, rx: re.Pattern, value: str, found: dict[str, int]) -> str:
    """``value`` with the secret part (:func:`_match_span`) of each match of ``rx`` masked."""
    spans = [sp for sp in (_match_span(m) for m in rx.finditer(value)) if sp[1] > sp[0]]
    for start, end in reversed(spans):
        if not value.startswith("[REDACTED:", start):
            value = value[:start] + f"[REDACTED:{kind}]" + value[end:]
            found[kind] = found.get(kind, 0) + 1
    return value


def _filters_itself(plugin: Any) -> bool:
    from detect_secrets.plugins.base import RegexBasedDetector

    return type(plugin).analyze_string is not RegexBasedDetector.analyze_string


@dataclass
class Redactor:
    """Masks secrets and PII in strings and, recursively, in lists and dicts.

    Parameters
    ----------
    patterns:
        ``(kind, regex)`` pairs applied after the detect-secrets plugins (``private_key`` blocks
        before them); defaults to :data:`DEFAULT_PATTERNS`.
    extra:
        More ``(kind, regex)`` pairs appended to ``patterns`` (e.g. customer ids).
    use_detect_secrets:
        Also mask the secret classes of detect-secrets' regex plugins (default).
    """

    patterns: Iterable[tuple[str, str]] = DEFAULT_PATTERNS
    extra: Iterable[tuple[str, str]] = ()
    use_detect_secrets: bool = True
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._compiled = [(kind, re.compile(rx)) for kind, rx in [*self.patterns, *self.extra]]
        plugins = secret_plugins() if self.use_detect_secrets else ()
        #: (kind, regex) of the plugins that are their regexes; the plugins that filter their matches
        self._plugin_regexes = [(kind, rx) for kind, p in plugins if not _filters_itself(p) for rx in p.denylist]
        self._filtering = [(kind, p) for kind, p in plugins if _filters_itself(p)]
        self._cache: dict[str, tuple[str, dict[str, int]]] = {}

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        hit = self._cache.get(value)
        if hit is None:
            found: dict[str, int] = {}
            hit = (self._redact(value, found), found)
            if len(self._cache) < 200_000:
                self._cache[value] = hit
        for kind, n in hit[1].items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return hit[0]

    def _redact(self, value: str, found: dict[str, int]) -> str:
        for kind, rx in self._compiled:
            if kind in _BEFORE_PLUGINS:
                value = self._own(kind, rx, value, found)
        if len(value) >= _SHORTEST_PLUGIN_SECRET:
            for kind, rx in self._plugin_regexes:
                value = _mask_matches(kind, rx, value, found)
        for kind, plugin in self._filtering:
            value = self._plugin(kind, plugin, value, found)
        for kind, rx in self._compiled:
            if kind not in _BEFORE_PLUGINS:
                value = self._own(kind, rx, value, found)
        return value

    def _own(self, kind: str, rx: re.Pattern, value: str, found: dict[str, int]) -> str:
        hints = _HINTS.get(kind) if rx.pattern == _DEFAULT_REGEX.get(kind) else None
        if hints is not None and not any(h in value.lower() for h in hints):
            return value
        return rx.sub(lambda m: self._mask(m, kind, found), value)

    @staticmethod
    def _plugin(kind: str, plugin: Any, value: str, found: dict[str, int]) -> str:
        mask = f"[REDACTED:{kind}]"
        if type(plugin).__name__ == "KeywordDetector" and not any(w in value.lower() for w in _keyword_stems()):
            return value
        for _ in range(20):  # the keyword plugin reports one assignment per regex and call
            secrets = _value_secrets(plugin, value)
            before = value
            for secret in secrets:
                rx = re.compile(r"(?<![A-Za-z0-9])" + re.escape(secret) + r"(?![A-Za-z0-9])")
                value, n = rx.subn(mask, value)
                if n == 0:  # part of a longer word: mask it wherever it is
                    n = value.count(secret)
                    value = value.replace(secret, mask)
                found[kind] = found.get(kind, 0) + n
            if value == before:
                break
        return value

    @staticmethod
    def _mask(m: re.Match, kind: str, found: dict[str, int]) -> str:
        check = _VALIDATORS.get(kind)
        if check is not None and not check(m.group(0)):
            return m.group(0)
        found[kind] = found.get(kind, 0) + 1
        if "secret" in m.re.groupindex and m.group("secret") is not None:
            start, end = m.span("secret")
            whole, base = m.group(0), m.start(0)
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

    def __init__(self) -> None:
        super().__init__(patterns=(), use_detect_secrets=False)

    def text(self, value: str) -> str:
        return value

    def obj(self, value: Any, skip_keys: frozenset[str] = frozenset()) -> Any:
        return value
