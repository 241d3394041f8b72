"""Benchmark suite: `make bench` (python -m bench). Not part of `make test`."""

import json
import os
import resource
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(prefix: str, result: dict) -> Path:
    """Write ``result`` to ``bench/results/<prefix>-<UTC time>.json``, print it, return the path."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path


def cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextmanager
def timed(result: dict, name: str) -> Iterator[None]:
    """Record ``<name>_s`` (wall) and ``<name>_cpu_s`` (this process's CPU) of the block in
    ``result``: on a shared host the wall time grows with the load, the CPU time much less."""
    t0, c0 = time.perf_counter(), cpu_s()
    yield
    result[f"{name}_s"] = round(time.perf_counter() - t0, 2)
    result[f"{name}_cpu_s"] = round(cpu_s() - c0, 2)


def host() -> dict:
    """What the measurement ran on: cores and the load average (1 min) when it started."""
    return {"cores": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)}
