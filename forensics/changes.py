"""Changes to the system (deploys, rollbacks, config changes, scaling, Kubernetes events), with
the records of one rollout merged into one change.

A deploy usually reaches a case several times: a line of the deploy log, the Deployment's
``ScalingReplicaSet`` event (which the k8s loader already calls a deploy when it names the new
image), and a burst of pod events (``Scheduled``, ``Pulling``, ``Started``, ...) and scale-downs
of the old replica set. :func:`change_events` returns one row per change: the rollout's records
are counted in it, never drawn or reported as a second deploy. The timeline, the incident
triggers and the report all read changes from here.

>>> import forensics
>>> change_events(forensics.open_case()).empty
True
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

#: event kinds that change the system (alerts and other observations are not changes)
CHANGE_KINDS = ("deploy", "rollback", "config", "scale", "k8s", "feature_flag", "restart")
#: deploy records of one service and version this close together are one rollout
ROLLOUT_GAP = timedelta(minutes=10)
#: Kubernetes reasons that are the mechanics of a rollout (merged into the deploy they belong to)
ROLLOUT_REASONS = ("ScalingReplicaSet", "SuccessfulCreate", "SuccessfulDelete", "Scheduled", "Pulling", "Pulled",
                   "Created", "Started", "Killing", "SuccessfulRescale")
#: a rollout's Kubernetes records fall this long before its first deploy record ... after its last
ROLLOUT_BEFORE = timedelta(minutes=2)
ROLLOUT_AFTER = timedelta(minutes=5)

_EVENTS_SQL = """
SELECT time, kind, service, version, reason, message, format,
       element_at(attributes, 'previous_version')[1] AS previous_version
FROM events
WHERE kind IN (SELECT unnest($kinds::VARCHAR[]))
  AND ($start IS NULL OR time >= $start) AND ($end IS NULL OR time < $end)
ORDER BY time
"""

#: the version a service ran most in the half hour before a time (spans), for deploys whose
#: records do not name the previous version
_PREVIOUS_SQL = """
WITH d AS (SELECT * FROM (VALUES {rows}) d(i, service, version, time))
SELECT d.i, arg_max(s.service_version, s.n) AS previous_version
FROM d JOIN (
  SELECT service, service_version, time_bucket(INTERVAL 1 MINUTE, start_time) AS minute, count(*) AS n
  FROM spans WHERE service_version IS NOT NULL GROUP BY ALL
) s ON s.service = d.service AND s.service_version IS DISTINCT FROM d.version
   AND s.minute < d.time AND s.minute >= d.time - INTERVAL 30 MINUTE
GROUP BY d.i
"""

COLUMNS = ["time", "end_time", "kind", "service", "version", "previous_version", "reason", "message",
           "records", "label"]


def change_events(case: Any, *, start: Any = None, end: Any = None) -> pd.DataFrame:
    """One row per change in ``[start, end)`` (UTC; ``None`` is open), oldest first.

    Returns
    -------
    pandas.DataFrame
        ``time`` (the deploy log's time when there is one, else the first record's), ``end_time``
        (the rollout's last record), ``kind``, ``service``, ``version``, ``previous_version``
        (from the deploy record, else the version the service's spans mostly had in the 30 min
        before), ``reason``, ``message``, ``records`` (how many event rows were merged into it)
        and ``label`` (``"deploy catalog-service 1.7.9 -> 1.8.0"``).
    """
    ev = case.sql(_EVENTS_SQL, {"kinds": list(CHANGE_KINDS), "start": start, "end": end}).to_pandas()
    if ev.empty:
        return pd.DataFrame(columns=COLUMNS)
    ev = ev.reset_index(drop=True)
    rollout = _rollouts(ev)
    ev["group"] = rollout
    ev["from_log"] = ev["format"].eq("deploy_log")
    grouped = ev.sort_values(["group", "from_log", "time"], ascending=[True, False, True]).groupby("group", sort=False)
    out = grouped.agg(time=("time", "first"), kind=("kind", "first"), service=("service", "first"),
                      version=("version", "first"), previous_version=("previous_version", "first"),
                      reason=("reason", "first"), message=("message", "first"), records=("time", "size"))
    bounds = ev.groupby("group")["time"].agg(["min", "max"])
    out["end_time"] = bounds["max"].reindex(out.index)
    # a deploy's version and message may sit on different records of the rollout
    for col in ("version", "previous_version", "message"):
        out[col] = out[col].fillna(ev.dropna(subset=[col]).groupby("group")[col].first().reindex(out.index))
    out = out.sort_values("time").reset_index(drop=True)
    out["previous_version"] = _previous_versions(case, out)
    out["label"] = [_label(r) for r in out.itertuples()]
    return out[COLUMNS]


def _runs(part: pd.DataFrame, key: pd.Series) -> pd.Series:
    """For rows sorted by key then time: the index of the first row of each run of one key whose
    records are at most :data:`ROLLOUT_GAP` apart."""
    gap = part["time"].diff()
    new = key.ne(key.shift()) | gap.isna() | (gap > ROLLOUT_GAP)
    return pd.Series(part.index.where(new), index=part.index).ffill().astype(int)


def _rollouts(ev: pd.DataFrame) -> np.ndarray:
    """Group number per event: deploy/rollback records of one service and version within
    :data:`ROLLOUT_GAP` share one; rollout-mechanics k8s/scale records of that service near it join
    it; other records repeating one kind, service and reason within the gap share one."""
    group = np.arange(len(ev))
    key = ev["kind"] + "\x00" + ev["service"].fillna("") + "\x00" + ev["version"].fillna("")
    is_deploy = ev["kind"].isin(["deploy", "rollback"]) & ev["service"].notna()
    deploys = ev[is_deploy].assign(_k=key[is_deploy]).sort_values(["_k", "time"])
    taken = pd.Series(False, index=ev.index)
    if not deploys.empty:
        first = _runs(deploys, deploys["_k"])
        group[deploys.index.to_numpy()] = first.to_numpy()
        taken[deploys.index] = True
        spans = deploys.assign(g=first).groupby("g").agg(service=("service", "first"), lo=("time", "min"),
                                                         hi=("time", "max"))
        mech = ev[ev["kind"].isin(["k8s", "scale"]) & ev["reason"].isin(ROLLOUT_REASONS) & ev["service"].notna()]
        pairs = mech.reset_index().merge(spans.reset_index(), on="service")
        pairs = pairs[(pairs["time"] >= pairs["lo"] - ROLLOUT_BEFORE) & (pairs["time"] <= pairs["hi"] + ROLLOUT_AFTER)]
        pairs = pairs.sort_values("lo").drop_duplicates("index", keep="last")
        group[pairs["index"].to_numpy()] = pairs["g"].to_numpy()
        taken[pairs["index"].to_numpy()] = True
    if not taken.all():
        key = ev["kind"] + "\x00" + ev["service"].fillna("") + "\x00" + ev["reason"].fillna("")
        rest = ev[~taken].assign(_k=key[~taken]).sort_values(["_k", "time"])
        group[rest.index.to_numpy()] = _runs(rest, rest["_k"]).to_numpy()
    return group


def _previous_versions(case: Any, out: pd.DataFrame) -> pd.Series:
    missing = out[out["kind"].isin(["deploy", "rollback"]) & out["previous_version"].isna() & out["service"].notna()]
    if missing.empty:
        return out["previous_version"]
    rows = ", ".join(["(?, ?, ?, ?::TIMESTAMPTZ)"] * len(missing))
    params: list[Any] = []
    for i, r in missing.iterrows():
        params += [int(i), r["service"], r["version"], r["time"]]
    found = dict(case.sql(_PREVIOUS_SQL.format(rows=rows), params).rows())
    return out["previous_version"].fillna(pd.Series(found, dtype=object).reindex(out.index))


def _label(r: Any) -> str:
    """``"deploy catalog-service 1.7.9 -> 1.8.0"``, ``"k8s pricing-service BackOff"``."""
    parts = [str(r.kind)]
    if isinstance(r.service, str):
        parts.append(r.service)
    if isinstance(r.version, str):
        parts.append(f"{r.previous_version} -> {r.version}" if isinstance(r.previous_version, str) else r.version)
    elif isinstance(r.reason, str) and r.kind not in ("deploy", "rollback"):
        parts.append(r.reason)
    return " ".join(parts)
