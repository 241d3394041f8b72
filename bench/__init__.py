"""Benchmark suite: `make bench` (python -m bench). Not part of `make test`."""

import json
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(prefix: str, result: dict) -> Path:
    """Write ``result`` to ``bench/results/<prefix>-<UTC time>.json``, print it, return the path."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path
