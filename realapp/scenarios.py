"""Scenarios: each runs the application, captures what it left behind and writes truth.json.

A scenario is a function ``(capture, work_dir) -> truth`` registered with :func:`scenario`.
The truth's ``facts`` are measured on the captured spans (ids, counts, times), the rest says
what was done and what a detector should conclude.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .capture import Capture
from .otlp import Span, collector_json_lines, read_spans
from .stack import Stack, iso

SCENARIOS: dict[str, Callable[[Capture, Path], dict[str, Any]]] = {}


def scenario(name: str) -> Callable:
    def register(fn: Callable[[Capture, Path], dict[str, Any]]) -> Callable:
        SCENARIOS[name] = fn
        return fn

    return register


# ------------------------------------------------------------------------------ helpers
def window(spans: list[Span]) -> dict[str, str]:
    return {"start": iso(min(s.start_ns for s in spans)), "end": iso(max(s.end_ns for s in spans))}


def children(spans: list[Span], parent: Span, kind: str | None = None) -> list[Span]:
    return [s for s in spans if s.parent_span_id == parent.span_id and (kind is None or s.kind == kind)]


def max_overlap(spans: list[Span]) -> int:
    """The largest number of the spans open at the same instant."""
    events = sorted([(s.start_ns, 1) for s in spans] + [(s.end_ns, -1) for s in spans], key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def one(spans: list[Span], **match: Any) -> Span:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    if len(found) != 1:
        raise AssertionError(f"expected one span with {match}, found {len(found)}")
    return found[0]


def keep(cap: Capture, st: Stack, variant: str, text: str) -> list[Span]:
    """Keep ``st``'s span bodies and logs as ``variant``; return its spans."""
    d = cap.variant(variant, text + "; OTLP/HTTP protobuf bodies and JSON logs")
    spans = read_spans(cap.traces(st, d))
    cap.logs(st, d)
    return spans


def servers(spans: list[Span], service: str) -> list[Span]:
    """``service``'s server spans in start order."""
    return sorted((s for s in spans if s.service == service and s.kind == "server"), key=lambda s: s.start_ns)


def write_json(path: Path, doc: Any, indent: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=indent) + "\n")


def otlp_json_variant(cap: Capture, files: list[Path], description: str) -> Path:
    d = cap.variant("otlp_json", description)
    (d / "traces.otlp.jsonl").write_text("".join(line + "\n" for line in collector_json_lines(files)))
    return d


# ------------------------------------------------------------------------------ traffic
def request_mix(n: int, seed: int, fleets: bool = True) -> list[tuple[str, str, dict[str, Any]]]:
    """A realistic mix of gateway calls: product pages, searches, checkouts, fleet status."""
    import random

    rng = random.Random(seed)
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(n):
        r = rng.random()
        if r < 0.5:
            calls.append(("GET", f"/api/products/SKU-{rng.randrange(1, 400):04d}", {}))
        elif r < 0.7:
            calls.append(("GET", "/api/search", {"params": {"q": rng.choice(["lamp", "desk", "chair", "mug", "rug"]),
                                                            "limit": str(rng.choice([5, 10, 20]))}}))
        elif r < 0.85 or not fleets:
            items = [{"sku": f"SKU-{rng.randrange(1, 400):04d}", "qty": rng.randrange(1, 4)}
                     for _ in range(rng.randrange(1, 4))]
            calls.append(("POST", "/api/checkout", {"json": {"items": items, "ip": f"203.0.113.{i % 250}"}}))
        else:
            calls.append(("GET", f"/api/fleets/fleet-{rng.randrange(1, 20)}/status", {}))
    return calls


def latency_by_operation(spans: list[Span], service: str | None = None) -> dict[str, dict[str, float]]:
    """p50/p95 (ms) and count of each service's server operations."""
    groups: dict[str, list[float]] = {}
    for s in spans:
        if s.kind == "server" and (service is None or s.service == service):
            groups.setdefault(f"{s.service} {s.name}", []).append(s.duration_ms)
    out = {}
    for k, v in sorted(groups.items()):
        v = sorted(v)
        out[k] = {"count": len(v), "p50_ms": round(v[len(v) // 2], 3), "p95_ms": round(v[min(len(v) - 1, int(len(v) * 0.95))], 3)}
    return out


def load_all() -> dict[str, Callable[[Capture, Path], dict[str, Any]]]:
    """Every registered scenario (importing the modules that define them)."""
    from . import healthy, incidents  # noqa: F401 - they register their scenarios

    return SCENARIOS
