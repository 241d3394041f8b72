"""Log, metric and event signals of a cause ranking, per service and time bucket.

``logs``
    The share of each mined log template (``logs.template``) among a service's log lines, per
    bucket (0 in buckets where the service logged but not that template): a new error message,
    a message that stopped (a step no longer reached) and a message that grew all move it. A
    caller's lines reacting to a callee's answer count for the callee (:func:`log_buckets`).
``metrics``
    Resource metrics of a service's pods (names matching :data:`RESOURCE_METRIC_RE`: CPU,
    memory, threads, GC, restarts, throttling, file descriptors, network, disk, pools), one
    series per metric and label set, counters turned into per-second rates (``res``: the
    series' resolution, its smallest step: one tick of a counter over the sampling interval, or
    one unit of a gauge that counts; a change within it is not a change); request counts and
    latencies are left out: they move with the traffic and the callees, not with the service.
``events``
    Kubernetes warning events (BackOff, OOMKilled, Unhealthy...) and deploys of the service:
    warnings counted against the baseline's rate (a Poisson z), a deploy shortly before or in
    the window scored :data:`DEPLOY_Z`.

A metric sample, log line or event is charged to a service through its ``service`` column,
its labels / resource attributes, or the pod it names (pods mapped to services by the spans'
``host.name`` / ``k8s.pod.name``: :func:`pods_sql`, a table of it as ``pods=``).
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._db import query_arrow
from .periods import Periods
from .spans import as_bucket_frame, pods_sql, reaction_sql

if TYPE_CHECKING:
    from ..case import Case

#: metric names treated as resource metrics of a pod (case-insensitive regular expression)
RESOURCE_METRIC_RE = (r"cpu|memory|mem_|_mem|rss|heap|gc_|_gc|garbage|thread|restart|throttl|oom|"
                      r"file_descriptor|open_fds|_fds|disk|filesystem|network|_net_|receive|transmit|swap|"
                      r"load_average|load1|pool|connections_usage|connections_pending|goroutine")
#: z of a deploy of the service within the window or just before it (one bucket of lead time);
#: half of it when the window itself was placed at that deploy (the coincidence is then given)
DEPLOY_Z = 4.0
#: share of a template's lines that must be reactions to a callee's answer (see
#: :func:`log_buckets`) for the template to count for that callee
REACTION_SHARE = 0.5
#: Kubernetes event reasons that count as trouble when ``severity`` is not given
WARNING_REASONS = ("BackOff", "CrashLoopBackOff", "OOMKilled", "OOMKilling", "Unhealthy", "Failed", "FailedMount",
                   "Evicted", "Killing", "NodeNotReady", "FailedScheduling", "ProbeWarning")

_PERIOD_COLS = """
  (t >= $w0 AND t < $w1) AS w,
  CAST(floor((epoch_us(t) - CASE WHEN t >= $w0 AND t < $w1 THEN epoch_us($w0) ELSE epoch_us($b0) END)
             / $width_us) AS INTEGER) AS bucket"""
_IN_PERIODS = "((t >= $b0 AND t < $b1) OR (t >= $w0 AND t < $w1))"


def _params(periods: Periods, width_s: float) -> dict:
    return {"b0": periods.baseline_start, "b1": periods.baseline_end, "w0": periods.window_start,
            "w1": periods.window_end, "width_us": width_s * 1e6}


def log_buckets(case: "Case", periods: Periods, width_s: float, calls: str | None = None,
                spans: str | None = None, pods: str | None = None) -> pd.DataFrame:
    """Family ``logs``: per (service, template) and bucket, the template's share of the
    service's lines (``n`` = the service's lines in the bucket).

    With ``calls`` (a table of ``psid``, ``end_us``, ``culprit``, ``failed``) and ``spans`` (a
    table of ``sid``, ``err``), see :meth:`forensics.causes.spans.SpanSignals.reactions`: a
    log line is a *reaction* to the callee of the latest call its span made before the line (up
    to 1 ms after the call's end: log times are often cut to milliseconds) when that call failed
    ("retrying", "call failed"), or when the line is a warning or worse and its span did not
    fail: the caller masked something in the answer (a wrong value: "falling back", "asking
    again"; :func:`forensics.causes.spans.reaction_sql`). A template of which at least :data:`REACTION_SHARE` of the lines are reactions
    counts for the callee they react to most, keyed ``caller: template``, as a share of the
    caller's lines; the caller's own templates are shares of its other lines.
    """
    join = ""
    cols = "NULL::VARCHAR AS callee, false AS reacts"
    if calls and spans:
        join, callee, reacts, _ = reaction_sql(calls, spans)
        cols = f"{callee} AS callee, {reacts} AS reacts"
    return as_bucket_frame(query_arrow(case.con, f"""
WITH l AS (
  SELECT coalesce(l.service, l.resource_attributes['service.name'], p.service) AS service,
    coalesce(l.template, left(l.body, 200), '(empty)') AS template, l.time AS t, {cols}
  FROM logs l LEFT JOIN {pods or f'({pods_sql()})'} p ON p.pod = l.resource_attributes['k8s.pod.name'] {join}
  WHERE l.time IS NOT NULL),
lp AS (SELECT service, template, callee, reacts, {_PERIOD_COLS} FROM l WHERE service IS NOT NULL AND {_IN_PERIODS}),
reaction AS (
  SELECT service, template, mode(callee) FILTER (WHERE reacts) AS culprit FROM lp GROUP BY ALL
  HAVING count(*) FILTER (WHERE reacts) >= $share * count(*) AND culprit <> service),
b AS (SELECT lp.service, coalesce(r.culprit, lp.service) AS charged, r.culprit IS NOT NULL AS reacted,
        CASE WHEN r.culprit IS NULL THEN lp.template ELSE lp.service || ': ' || lp.template END AS key, lp.w, lp.bucket
      FROM lp LEFT JOIN reaction r USING (service, template)),
tot AS (SELECT service, w, bucket, count(*) AS n, count(*) FILTER (WHERE NOT reacted) AS n_own FROM b GROUP BY ALL),
per AS (SELECT service, charged, reacted, key, w, bucket, count(*) AS k FROM b GROUP BY ALL),
keys AS (SELECT DISTINCT service, charged, reacted, key FROM per)
SELECT 'logs' AS family, keys.charged AS service, key, w, bucket, CASE WHEN reacted THEN tot.n ELSE tot.n_own END AS n,
  coalesce(per.k, 0) / CASE WHEN reacted THEN tot.n ELSE tot.n_own END AS value, NULL::DOUBLE AS sd
FROM keys JOIN tot USING (service) LEFT JOIN per USING (service, charged, reacted, key, w, bucket)
WHERE (CASE WHEN reacted THEN tot.n ELSE tot.n_own END) > 0""",
        {**_params(periods, width_s), "share": REACTION_SHARE}).to_pandas())


def metric_buckets(case: "Case", periods: Periods, width_s: float, pods: str | None = None) -> pd.DataFrame:
    """Family ``metrics``: per resource metric series (name and pod or label set), the mean
    per bucket (counters as per-second rates between consecutive samples; resets restart)."""
    return as_bucket_frame(query_arrow(case.con, f"""
WITH m AS (
  SELECT m.name, m.type, m.time AS t, m.value, m.labels, m.resource_attributes, m.source_file,
    coalesce(m.labels['pod'], m.labels['k8s_pod_name'], m.labels['pod_name'], m.labels['kubernetes_pod_name'],
             m.resource_attributes['k8s.pod.name']) AS pod,
    coalesce(m.service, m.labels['service'], m.labels['service_name'], m.resource_attributes['service.name'],
             m.labels['app'], m.labels['container'], m.labels['job']) AS svc
  FROM metrics m
  WHERE m.type NOT IN ('histogram_bucket', 'summary_quantile', 'exp_histogram', 'info', 'stateset', 'created')
    AND regexp_matches(lower(m.name), $re) AND isfinite(m.value)),
s AS (
  SELECT m.*, coalesce(p.service, m.svc) AS service,
    hash(m.name, m.labels, m.svc, m.pod, m.resource_attributes, m.source_file) AS series,
    m.name || ' ' || CAST(map_from_entries(list_concat(
        CASE WHEN m.pod IS NOT NULL THEN [{{'key': 'pod', 'value': m.pod}}] ELSE [] END,
        list_filter(map_entries(m.labels), lambda e: e.key NOT IN ('service', 'job', 'service_name', 'instance',
                                                                  'pod', 'k8s_pod_name', 'pod_name')))) AS VARCHAR) AS key
  FROM m LEFT JOIN {pods or f'({pods_sql()})'} p ON p.pod = m.pod),
d AS (
  SELECT service, key, series, t, value,
    type IN ('counter', 'histogram_sum', 'histogram_count', 'summary_sum', 'summary_count') AS is_counter,
    CASE WHEN value >= lag(value) OVER w THEN value - lag(value) OVER w ELSE value END AS inc,
    abs(value - lag(value) OVER w) AS step, (epoch_us(t) - epoch_us(lag(t) OVER w)) / 1e6 AS dt
  FROM s WINDOW w AS (PARTITION BY series ORDER BY t)),
r AS (
  SELECT service, key, t, CASE WHEN is_counter THEN inc / nullif(dt, 0) ELSE value END AS v,
    CASE WHEN is_counter THEN min(inc) FILTER (WHERE inc > 0) OVER (PARTITION BY series)
                              / median(dt) FILTER (WHERE dt > 0) OVER (PARTITION BY series)
         ELSE min(step) FILTER (WHERE step > 0) OVER (PARTITION BY series) END AS res
  FROM d)
SELECT 'metrics' AS family, service, key, {_PERIOD_COLS}, count(*) AS n, avg(v) AS value, stddev_samp(v) AS sd,
  max(res) AS res
FROM r WHERE v IS NOT NULL AND service IS NOT NULL AND {_IN_PERIODS} GROUP BY ALL""",
        {**_params(periods, width_s), "re": RESOURCE_METRIC_RE}).to_pandas())


def event_signals(case: "Case", periods: Periods, width_s: float, pods: str | None = None) -> pd.DataFrame:
    """Family ``events`` in the shape of :func:`forensics.causes.series.compare_buckets`'s output:
    per (service, reason) of warning events, the window's count against the baseline's rate
    (``z = (k - e) / sqrt(e + 1)``, ``e`` the count the baseline's rate predicts); per deploy of a
    service from one bucket before the window (the ranking's bucket, or the onset search's when
    the window starts at a found onset) to its end, ``z`` = :data:`DEPLOY_Z` (halved when
    the window was placed at the latest deploy)."""
    # a found onset is known to within its search bucket: a deploy that close before it leads it
    lead = periods.window_start - timedelta(seconds=max(width_s, float(periods.onset.get("bucket_s", 0.0))))
    rows = query_arrow(case.con, f"""
WITH e AS (
  SELECT coalesce(e.service, p.service) AS service, e.kind, e.reason, e.version, e.time AS t, coalesce(e.count, 1) AS k,
    lower(coalesce(e.severity, '')) AS severity
  FROM events e LEFT JOIN {pods or f'({pods_sql()})'} p ON p.pod = e.attributes['object_name']
  WHERE e.time IS NOT NULL)
SELECT 'trouble' AS what, service, reason AS key, count(*) FILTER (WHERE t >= $w0 AND t < $w1) AS k_win,
  count(*) FILTER (WHERE t >= $b0 AND t < $b1) AS k_base, NULL AS t
FROM e WHERE service IS NOT NULL AND kind <> 'deploy'
  AND (severity IN ('warning', 'error') OR reason IN (SELECT unnest($reasons::VARCHAR[])))
GROUP BY ALL
UNION ALL
SELECT 'deploy', service, coalesce(version, '?'), 1, 0, min(t) FROM e
WHERE kind = 'deploy' AND service IS NOT NULL AND t >= $lead AND t < $w1 GROUP BY ALL""",
        {"w0": periods.window_start, "w1": periods.window_end, "b0": periods.baseline_start,
         "b1": periods.baseline_end, "lead": lead, "reasons": list(WARNING_REASONS)}).to_pylist()
    ratio = periods.window_s / max(periods.baseline_s, 1e-9)
    out = []
    for r in rows:
        if r["what"] == "deploy":
            z = DEPLOY_Z / 2 if periods.how == "deploy" else DEPLOY_Z
            key = f"deployed {r['key']} at {r['t'].strftime('%H:%M:%S')} UTC"
            base, win = 0.0, 1.0
        else:
            expected = r["k_base"] * ratio
            z = (r["k_win"] - expected) / np.sqrt(expected + 1.0)
            key = f"{r['k_win']} {r['key']} events (baseline rate predicts {expected:.1f})"
            base, win = float(expected), float(r["k_win"])
        out.append({"family": "events", "service": r["service"], "key": key, "base": base, "win": win,
                    "z": float(z), "n_base": int(r["k_base"]), "n_win": int(r["k_win"]), "buckets_base": 0,
                    "buckets_win": 0})
    return pd.DataFrame(out)
