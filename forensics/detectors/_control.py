"""The control of a version comparison (difference in differences): how unchanged code moved.

A version is blamed only for a change beyond what the operations of other services, whose
version did not change, went through over the same windows (a machine that slowed down slows
every service, a no-op redeploy included). The compared service's callers are left out: their
latency includes its own.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def callers_sql(req: str, pairs: str) -> str:
    """(t_service, service, operation, share): operations of other services whose requests
    contain (same trace, start before and end after) a request of a compared service, in at
    least 5% of their requests: its callers, whose latency includes its own."""
    return f"""
SELECT c.t_service, c.service, c.operation, c.n_in / g.n AS share FROM (
  SELECT t.service AS t_service, o.service, o.operation, count(DISTINCT o.sid) AS n_in
  FROM {req} t JOIN {req} o ON o.trace_id = t.trace_id AND o.service <> t.service
    AND o.start_time <= t.start_time AND o.end_time >= t.end_time
  WHERE t.service IN (SELECT service FROM {pairs} WHERE tested)
  GROUP BY t.service, o.service, o.operation) c
JOIN (SELECT service, operation, count(*) AS n FROM {req} GROUP BY service, operation) g
  ON g.service = c.service AND g.operation = c.operation
WHERE c.n_in >= 0.05 * g.n
"""


def control_sql(req: str, pairs: str, callers: str) -> str:
    """Per compared pair (service, operation, version) and control group: the median latency
    of the control group's requests in the baseline's window and in the new version's window
    (named parameter ``$min_control``: requests a control group needs in each window).

    Control groups are the (service, operation) of *other* services whose version is the same
    in both windows (unchanged code), except the compared service's callers (``callers``,
    :func:`callers_sql`): their latency includes the compared one's. What moves them between
    the windows is the machine, the load, the network: what moved the compared operation
    without its new version.
    """
    return f"""
WITH win AS (
  SELECT service AS t_service, operation AS t_operation, version AS t_version, 0 AS side,
    base_first_seen AS t0, base_last_seen AS t1 FROM {pairs} WHERE tested
  UNION ALL
  SELECT service, operation, version, 1, first_seen, last_seen FROM {pairs} WHERE tested),
per AS (
  SELECT w.t_service, w.t_operation, w.t_version, w.side, o.service, o.operation, count(*) AS n,
    min(o.version) AS v_lo, count(DISTINCT o.version) AS versions, median(o.duration_ms) AS p50_ms
  FROM win w JOIN {req} o ON o.service <> w.t_service AND o.start_time >= w.t0 AND o.start_time <= w.t1
  LEFT JOIN {callers} c ON c.t_service = w.t_service AND c.service = o.service AND c.operation = o.operation
  WHERE c.service IS NULL
  GROUP BY w.t_service, w.t_operation, w.t_version, w.side, o.service, o.operation)
SELECT b.t_service AS service, b.t_operation AS operation, b.t_version AS version,
  b.service AS control_service, b.operation AS control_operation, b.v_lo AS control_version,
  b.n AS base_n, a.n AS new_n, b.p50_ms AS base_p50_ms, a.p50_ms AS new_p50_ms
FROM per b JOIN per a ON a.t_service = b.t_service AND a.t_operation = b.t_operation AND a.t_version = b.t_version
  AND a.service = b.service AND a.operation = b.operation AND b.side = 0 AND a.side = 1
WHERE b.versions <= 1 AND a.versions <= 1 AND b.v_lo IS NOT DISTINCT FROM a.v_lo
  AND b.n >= $min_control AND a.n >= $min_control AND b.p50_ms > 0 AND a.p50_ms > 0
"""


#: the control of a pair without unchanged operations of other services in both windows
NO_CONTROL = {"method": "difference in differences", "factor": 1.0, "applied_factor": 1.0, "groups": 0,
               "operations": [], "note": "no unchanged operation of another service in both windows: not adjusted"}


#: control groups above which the control factor is their ratios' 90th percentile, not their maximum
CONTROL_MAX_GROUPS = 5


def controls(found: list[dict[str, Any]], callers: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Per pair key (service, operation, version): the control (difference in differences).

    Each control group's change is its median latency in the new version's window over its
    median in the baseline's window. Unchanged operations slow down by different factors when
    a machine slows (CPU-bound work more than waiting), so a version is blamed only for a
    change beyond theirs: the control factor is the largest control change (the 90th
    percentile above :data:`CONTROL_MAX_GROUPS` groups), and the factor applied never goes
    below 1 (the control explains a slowdown away, it never creates one).
    """
    excluded: dict[str, list[dict[str, Any]]] = {}
    for c in callers:
        excluded.setdefault(c["t_service"], []).append({"service": c["service"], "operation": c["operation"],
                                                        "share_containing": c["share"]})
    by_pair: dict[tuple, list[dict[str, Any]]] = {}
    for g in found:
        by_pair.setdefault((g["service"], g["operation"], g["version"]), []).append(g)
    out = {}
    for key, groups in by_pair.items():
        ratios = np.array([g["new_p50_ms"] / g["base_p50_ms"] for g in groups])
        factor = float(ratios.max() if ratios.size <= CONTROL_MAX_GROUPS else np.quantile(ratios, 0.9))
        top = sorted(groups, key=lambda g: (-g["new_p50_ms"] / g["base_p50_ms"], g["control_service"],
                                            g["control_operation"]))
        out[key] = {"method": "difference in differences", "factor": factor, "applied_factor": max(factor, 1.0),
                    "median_factor": float(np.median(ratios)), "groups": len(groups),
                    "operations": [{"service": g["control_service"], "operation": g["control_operation"],
                                    "version": g["control_version"], "base_p50_ms": g["base_p50_ms"],
                                    "new_p50_ms": g["new_p50_ms"], "ratio": g["new_p50_ms"] / g["base_p50_ms"],
                                    "requests": {"baseline": g["base_n"], "new": g["new_n"]}} for g in top[:5]],
                    "excluded_callers": excluded.get(key[0], [])[:5]}
    return out


def control_note(lat: dict[str, Any]) -> str:
    """", net of the 1.8x slowdown of unchanged operations ..." when the control moved latency."""
    c = lat["control"]
    if c["applied_factor"] <= 1.0:
        return ""
    return (f", net of the {c['factor']:.2g}x slowdown of unchanged operations of other services over the same "
            f"windows ({c['groups']} compared)")
