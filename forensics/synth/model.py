"""Building blocks of generated traces: spans, log records, a fast random pool and id helpers.

Randomness comes from a :class:`numpy.random.Generator` seeded per chunk of traces, drawn in
blocks (vectorized) and consumed by the per-trace code, so a seed gives byte-identical output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .topology import BASE_NS, OK, UNSET, Latency, Resource

_BLOCK = 1 << 16


class Rand:
    """Random numbers drawn from ``rng`` in vectorized blocks and handed out one at a time."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._z: list[float] = []
        self._ids: list[int] = []
        self._iu = self._iz = self._ii = 0

    def u(self) -> float:
        """A uniform float in [0, 1)."""
        if self._iu >= len(self._u):
            self._u, self._iu = self.rng.random(_BLOCK).tolist(), 0
        self._iu += 1
        return self._u[self._iu - 1]

    def z(self) -> float:
        """A standard normal float."""
        if self._iz >= len(self._z):
            self._z, self._iz = self.rng.standard_normal(_BLOCK).tolist(), 0
        self._iz += 1
        return self._z[self._iz - 1]

    def id64(self) -> int:
        """A non-zero random 64-bit integer (span ids; two make a trace id)."""
        if self._ii >= len(self._ids):
            self._ids, self._ii = self.rng.integers(1, 2**63, size=_BLOCK, dtype=np.int64).tolist(), 0
        self._ii += 1
        return self._ids[self._ii - 1] * 2 + (self._ii & 1)

    def lognormal(self, lat: Latency, scale: float = 1.0) -> float:
        """A latency in milliseconds from ``lat`` (median, sigma), multiplied by ``scale``."""
        return lat.median_ms * scale * math.exp(lat.sigma * self.z())

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.u()

    def choice(self, items: list) -> Any:
        return items[min(int(self.u() * len(items)), len(items) - 1)]

    def normal_int(self, mean: float, sd: float, lo: int = 1) -> int:
        return max(lo, int(round(mean + sd * self.z())))


def ms_to_ns(t_ms: float) -> int:
    """Window-relative milliseconds → absolute Unix nanoseconds."""
    return BASE_NS + int(round(t_ms * 1_000_000))


class Span:
    """One span. Times are absolute Unix nanoseconds; ``attrs`` values keep their Python type."""

    __slots__ = ("trace_id", "span_id", "parent_id", "res", "name", "kind", "start_ns", "end_ns",
                 "status", "message", "attrs", "events", "scope")

    def __init__(self, trace_id: str, span_id: str, parent_id: str | None, res: Resource, name: str, kind: int,
                 start_ns: int, scope: str, attrs: list[tuple[str, Any]]) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.res = res
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = start_ns
        self.status = UNSET
        self.message: str | None = None
        self.attrs = attrs
        self.events: list[tuple[int, str, list[tuple[str, Any]]]] = []
        self.scope = scope

    def fail(self, message: str, exception_type: str | None = None) -> None:
        """Mark the span as an error; with ``exception_type`` also record an exception event."""
        self.status = 2
        self.message = message
        if exception_type:
            self.events.append((self.end_ns, "exception", [("exception.type", exception_type),
                                                           ("exception.message", message)]))

    def ok(self) -> None:
        self.status = OK


@dataclass
class LogRecord:
    """A JSON log line: time (Unix ns), level, emitting pod, message and extra fields."""

    time_ns: int
    level: str
    res: Resource
    message: str
    trace_id: str | None
    span_id: str | None
    fields: dict[str, Any] = field(default_factory=dict)
