"""Explain what a detector could not judge: the groups it skipped for too little data."""
from __future__ import annotations

from typing import Any, Sequence

from ._common import clean

#: groups listed by name in one record (the count covers all of them)
MAX_LISTED = 50


def too_little_data(detector: str, threshold: str, required: int, groups: Sequence[dict[str, Any]],
                    thresholds: dict[str, Any], *, unit: str = "samples") -> list[dict[str, Any]]:
    """One ``info`` near-miss record (``evidence.near_miss``, ``failed = [threshold]``) listing the
    groups a detector did not test because they had fewer than ``required`` ``unit``, for
    ``explain=True``; no record when nothing was skipped.

    ``groups`` are dicts with ``label`` (how the group is named: "svc GET /x") and ``count``;
    the largest are listed first, at most :data:`MAX_LISTED` by name.
    """
    if not groups:
        return []
    ordered = sorted(({k: clean(v) for k, v in g.items()} for g in groups), key=lambda g: (-g["count"], g["label"]))
    listed = ", ".join(f"{g['label']} ({g['count']})" for g in ordered[:5])
    more = f" and {len(ordered) - 5} more" if len(ordered) > 5 else ""
    return [{
        "detector": detector, "severity": "info",
        "title": f"not tested: {len(ordered)} group{'s' if len(ordered) != 1 else ''} with fewer than {required} {unit}",
        "service": None, "operation": None, "target": None, "target_operation": None, "version": None,
        "start_time": None, "end_time": None, "score": 0.0,
        "evidence": {"near_miss": True, "failed": [threshold], "skipped_groups": len(ordered),
                     "skipped": [dict(g) for g in ordered[:MAX_LISTED]],
                     "checks": [{"name": threshold, "observed": ordered[0]["count"], "required": required,
                                 "passed": False}],
                     "thresholds": thresholds},
        "summary": (f"Not tested for too little data (fewer than {required} {unit}, {threshold}): "
                    f"{listed}{more}."),
    }]
