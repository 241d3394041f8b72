"""Assembling a capture directory from a stack's work directory, and its ``truth.json``.

Layout of one scenario (``<out>/<scenario>/``)::

    truth.json            what the capture shows (ignored by forensics.load)
    <variant>/            one self-contained capture: forensics.load(case, "<variant>") loads it
        bodies/<service>/traces-NNNN.binpb[.gz] OTLP/HTTP request bodies as POSTed
        bodies/<service>/zipkin-NNNN.json       Zipkin exporter bodies as POSTed
        logs/<service>.jsonl.gz                 the services' JSON log lines
        metrics/<service>.binpb.gz              the OTLP metrics bodies, varint-length-delimited
        deploys.jsonl                           deploy events

Variants of one scenario hold the same kind of incident (or the same spans in another format):
load one variant at a time, never the scenario directory as a whole.
"""
from __future__ import annotations

import gzip
import importlib.metadata as md
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from .otlp import Span, read_spans
from .stack import Stack

#: packages whose versions made the capture (recorded in truth.json)
PRODUCED_WITH = ("opentelemetry-sdk", "opentelemetry-distro", "opentelemetry-exporter-otlp-proto-http",
                 "opentelemetry-exporter-zipkin-json", "opentelemetry-instrumentation-flask",
                 "opentelemetry-instrumentation-requests", "opentelemetry-instrumentation-urllib3",
                 "opentelemetry-instrumentation-sqlite3", "opentelemetry-instrumentation-sqlalchemy",
                 "opentelemetry-instrumentation-threading", "opentelemetry-instrumentation-logging",
                 "flask", "sqlalchemy", "requests", "urllib3")


def versions(names: tuple[str, ...] = PRODUCED_WITH) -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            pass
    return out


def gz(data: bytes) -> bytes:
    """gzip with a fixed header (no time stamp, no name): same bytes for the same content."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Capture:
    """One scenario's output directory."""

    def __init__(self, root: Path, scenario: str) -> None:
        self.dir = Path(root) / scenario
        self.scenario = scenario
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.variants: dict[str, str] = {}

    def variant(self, name: str, description: str) -> Path:
        self.variants[name] = description
        d = self.dir / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def traces(self, stack: Stack, dest: Path, signal: str = "traces") -> list[Path]:
        """Copy the span bodies (``traces`` or ``zipkin``) as they were POSTed."""
        out = []
        for p in stack.collector.files(signal):
            target = dest / "bodies" / p.parent.name / p.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
            out.append(target)
        return out

    def logs(self, stack: Stack, dest: Path) -> None:
        (dest / "logs").mkdir(parents=True, exist_ok=True)
        for p in sorted(stack.logs.glob("*.jsonl")):
            (dest / "logs" / (p.name + ".gz")).write_bytes(gz(p.read_bytes()))

    def metrics(self, stack: Stack, dest: Path) -> None:
        """Each service's OTLP metrics bodies, in order, as one varint-length-delimited stream."""
        services = sorted({p.parent.name for p in stack.collector.files("metrics")})
        for svc in services:
            stream = bytearray()
            for p in stack.collector.files("metrics", svc):
                body = p.read_bytes()
                body = gzip.decompress(body) if p.name.endswith(".gz") else body
                stream += varint(len(body)) + body
            (dest / "metrics").mkdir(parents=True, exist_ok=True)
            (dest / "metrics" / f"{svc}.binpb.gz").write_bytes(gz(bytes(stream)))

    def deploys(self, stack: Stack, dest: Path) -> None:
        if stack.deploys:
            stack.write_deploys(dest / "deploys.jsonl")

    def all_signals(self, stack: Stack, dest: Path) -> list[Span]:
        """Traces, logs, metrics and deploys of ``stack`` into ``dest``; returns the spans."""
        files = self.traces(stack, dest)
        self.logs(stack, dest)
        self.metrics(stack, dest)
        self.deploys(stack, dest)
        return read_spans(files)

    def write_truth(self, truth: dict[str, Any]) -> None:
        doc = {"scenario": self.scenario, **truth, "variants": self.variants,
               "regenerate": f"python -m realapp {self.scenario} --out tests/data/realapp",
               "produced_with": versions()}
        (self.dir / "truth.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())
