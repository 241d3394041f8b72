"""Span signals of a cause ranking: what each service does itself, per time bucket.

Every span that starts in the baseline or the window is given a *culprit*, the service its own
time and its failures are charged to, and a *role*:

``self``
    Server, internal, consumer and producer spans, and calls to in-process databases
    (:data:`IN_PROCESS_DB`): charged to the span's service. Its own time is the *self time*:
    duration minus the union of its children's intervals (clipped to the span), so time spent
    waiting on callees is not counted twice. A *request* is a server or consumer span (or a
    span whose parent is not in its service) with the spans of its service beneath it; its own
    time is the sum of their self times: what the service spent itself on the request, however
    many spans its instrumentation cut it into (:func:`_requests_sql`).
``gap``
    A client span with a server (or consumer) child: its self time is the part of the call the
    callee's server span does not cover (network, connection set-up, the callee's queue and
    its response on the wire), visible only at the caller; charged to the callee.
``dependency``
    A client span (or a database span with a statement and no kind, as OpenTracing wrote them)
    with no server child (an uninstrumented dependency such as
    PostgreSQL or an external API): its time is the dependency's, charged to the call's target
    (``peer.service``, ``server.address``, ``db.system``...).

A span *fails at its origin* when it failed (status error or HTTP >= 500, or it recorded an
``exception`` event) and none of its children failed (status error or HTTP >= 500); the failure
is charged like the span's time. *Call patterns* are the number of calls a span makes to each
dependency operation, charged to the caller.

All of it is one pass of SQL over ``spans`` into narrow TEMP tables (8-byte keys, no strings but
the service, pod and target names), then GROUP BYs per family; Python only sees the per-bucket
aggregates.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._db import query_arrow, run
from ..semantics import OP_COLUMNS, is_call_sql, is_error_sql, operation_key_sql, operations_sql
from ..detectors._common import temp_table
from .periods import Periods
from .severity import warning_sql

if TYPE_CHECKING:
    from ..case import Case

#: database systems that run inside the calling process: their time is the caller's own
IN_PROCESS_DB = ("sqlite", "h2", "hsqldb", "derby", "duckdb")

#: a span recorded an exception (OpenTelemetry ``exception`` span event)
EXCEPTION_EVENT_SQL = "(s.events IS NOT NULL AND strpos(CAST(s.events AS VARCHAR), '\"exception\"') > 0)"


_IN_PERIODS = "((s.start_time >= $b0 AND s.start_time < $b1) OR (s.start_time >= $w0 AND s.start_time < $w1))"


def _ops_sql() -> str:
    """Per distinct operation key of the spans in the periods: its normalized operation and
    ``opid`` (hash of the operation: the key the families group by). Normalization runs once per
    distinct input (:func:`forensics.semantics.operations_sql`)."""
    cols = ", ".join(f"s.{c}" for c in OP_COLUMNS)
    src = f"(SELECT {operation_key_sql('s')} AS opkey, {cols} FROM spans s WHERE {_IN_PERIODS})"
    return f"SELECT opkey, operation, hash(operation) AS opid FROM ({operations_sql(src)})"


def _own_sql(ops: str) -> str:
    """One narrow row per span starting in the baseline or the window (parameters: $b0, $b1,
    $w0, $w1, $width_us), with ``opid`` from the table ``ops`` (:func:`_ops_sql`)."""
    outbound = is_call_sql("s")
    target_sql = ("coalesce(nullif(s.peer_service, ''), nullif(s.server_address, ''), "
                  "nullif(regexp_extract(s.http_url, '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#@]+)', 1), ''), "
                  "nullif(s.db_system, ''), nullif(s.messaging_system, ''), 'unknown')")
    return f"""
SELECT hash(s.trace_id, s.span_id) AS sid,
  CASE WHEN s.parent_span_id IS NOT NULL THEN hash(s.trace_id, s.parent_span_id) END AS psid,
  s.service, coalesce(nullif(s.host_name, ''), s.resource_attributes['k8s.pod.name'], s.service) AS pod,
  s.kind, ops.opid, hash(s.name, s.http_url, s.db_statement) AS request_id, {outbound} AS is_out,
  (s.kind = 'client' OR (s.db_statement IS NOT NULL AND s.kind NOT IN ('server', 'consumer', 'producer'))) AS is_call,
  CASE WHEN {outbound} THEN {target_sql} END AS target,
  coalesce(lower(s.db_system), '') IN ({', '.join(repr(d) for d in IN_PROCESS_DB)}) AS in_process,
  epoch_us(s.start_time) AS start_us, epoch_us(coalesce(s.end_time, s.start_time)) AS end_us,
  greatest(coalesce(s.duration_ms, 0), 0) AS duration_ms,
  coalesce({is_error_sql('s')}, false) AS err, {EXCEPTION_EVENT_SQL} AS exc,
  (s.start_time >= $w0 AND s.start_time < $w1) AS w,
  CAST(floor((epoch_us(s.start_time) - CASE WHEN s.start_time >= $w0 AND s.start_time < $w1
                                           THEN epoch_us($w0) ELSE epoch_us($b0) END)
             / $width_us) AS INTEGER) AS bucket
FROM spans s JOIN {ops} ops ON ops.opkey = {operation_key_sql('s')}
WHERE {_IN_PERIODS}"""


#: columns of a span's parent that :func:`_with_parent_sql` adds (``p_`` + name)
PARENT_COLUMNS = ("start_us", "end_us", "service", "opid", "w", "bucket", "is_out")


def _with_parent_sql(own: str) -> str:
    """The rows of the query ``own`` (:func:`_own_sql`) with their parent's
    :data:`PARENT_COLUMNS` (``p_start_us``...) and ``has_parent`` (the parent is in the
    periods): the one join of spans to their parents, which the children's coverage, the
    requests and the call patterns then read without joining again. ``own`` is computed once,
    for this statement only (no table of it outlives the join)."""
    cols = ", ".join(f"p.{c} AS p_{c}" for c in PARENT_COLUMNS)
    return (f"WITH own AS MATERIALIZED ({own}) "
            f"SELECT o.*, {cols}, p.sid IS NOT NULL AS has_parent FROM own o LEFT JOIN own p ON p.sid = o.psid")


def _kids_sql(own: str) -> str:
    """Per parent span (``own`` with its parents' columns: :func:`_with_parent_sql`): the time its children cover (union of their intervals clipped to the
    parent, microseconds), whether a child failed, and its server/consumer children's service."""
    return f"""
SELECT psid, sum(greatest(ce - greatest(cs, coalesce(prev_end, cs)), 0)) AS covered_us,
  bool_or(err) AS child_err, count(*) FILTER (WHERE srv) AS n_srv,
  any_value(service) FILTER (WHERE srv) AS srv_service
FROM (
  SELECT psid, err, kind IN ('server', 'consumer') AS srv, service,
    greatest(start_us, p_start_us) AS cs, least(end_us, p_end_us) AS ce,
    max(least(end_us, p_end_us)) OVER (PARTITION BY psid ORDER BY greatest(start_us, p_start_us), sid
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
  FROM {own} WHERE has_parent)
WHERE ce > cs OR srv OR err
GROUP BY psid"""


def _roles_sql(own: str, kids: str) -> str:
    """Every span of ``own`` (its columns but those only the role needs) with its self time
    (ms), origin failure flag, role and culprit."""
    return f"""
SELECT o.* EXCLUDE (is_call, in_process, exc, p_start_us, p_end_us),
  greatest(o.duration_ms - coalesce(k.covered_us, 0) / 1000.0, 0) AS self_ms,
  (o.err OR o.exc) AND NOT coalesce(k.child_err, false) AS origin,
  r.role, CASE r.role WHEN 'gap' THEN k.srv_service WHEN 'dependency' THEN o.target ELSE o.service END AS culprit
FROM {own} o LEFT JOIN {kids} k ON k.psid = o.sid,
LATERAL (SELECT CASE
    WHEN o.kind = 'client' AND coalesce(k.n_srv, 0) > 0 THEN 'gap'
    WHEN o.is_call AND coalesce(k.n_srv, 0) = 0 AND NOT o.in_process THEN 'dependency'
    ELSE 'self' END AS role) r"""


def _requests_sql(roles: str) -> str:
    """Per request (see the module docs): its local root's ``sid``, ``service``, ``culprit``,
    ``pod``, ``opid``, ``w``, ``bucket``, ``role``, ``origin`` and ``self_ms``, the request's
    own time (ms): the self time of the ``self`` spans of its service beneath it. A span belongs
    to the request of its nearest ancestor that is a server or consumer span or whose parent is
    in another service (or missing)."""
    return f"""
WITH RECURSIVE link AS (
  SELECT sid, CASE WHEN kind IN ('server', 'consumer') OR NOT has_parent OR p_service <> service THEN NULL
                   ELSE psid END AS up, CASE WHEN role = 'self' THEN self_ms ELSE 0 END AS ms
  FROM {roles}),
tree(sid, root, ms) AS (
  SELECT sid, sid, ms FROM link WHERE up IS NULL
  UNION ALL
  SELECT l.sid, t.root, l.ms FROM link l JOIN tree t ON l.up = t.sid),
own_ms AS (SELECT root AS sid, sum(ms) AS self_ms FROM tree GROUP BY root)
SELECT r.sid, r.service, r.culprit, r.pod, r.opid, r.w, r.bucket, r.role, r.origin, m.self_ms
FROM {roles} r JOIN own_ms m USING (sid) WHERE r.role = 'self'"""


def pods_sql() -> str:
    """(pod, service) pairs seen on spans (host.name and k8s.pod.name). It scans every span:
    :class:`SpanSignals` keeps it as a table (``pods``) for the log, metric and event signals."""
    return """SELECT DISTINCT pod, service FROM (
  SELECT host_name AS pod, service FROM spans WHERE host_name IS NOT NULL
  UNION ALL SELECT resource_attributes['k8s.pod.name'], service FROM spans
  WHERE resource_attributes['k8s.pod.name'] IS NOT NULL) WHERE pod <> service"""


def reaction_sql(calls: str, spans: str, log: str = "l") -> tuple[str, str, str, str]:
    """How a log line ``log`` relates to the answers its span got: ``(join, callee, reacts,
    masked)``, SQL pieces over ``logs`` aliased ``log``.

    ``join`` attaches the latest call its span made that ended before the line (up to 1 ms
    after it: log times are often cut to milliseconds) from ``calls`` (a table of ``psid``,
    ``end_us``, ``culprit``, ``failed``: :meth:`SpanSignals.reactions`) and the span itself from
    ``spans`` (``sid``, ``err``); ``callee`` is that call's culprit; the line ``reacts`` to it
    when the call failed ("retrying", "call failed") or when the line is ``masked``: a warning
    or worse in a span that did not fail (the caller masked something in the answer: a wrong
    value, "falling back", "asking again"). One definition for the log templates
    (:func:`forensics.causes.others.log_buckets`) and the calls that follow an answer
    (:meth:`SpanSignals.call_buckets`)."""
    join = (f"ASOF LEFT JOIN {calls} f ON f.psid = hash({log}.trace_id, {log}.span_id) "
            f"AND epoch_us({log}.time) + 1000 >= f.end_us "
            f"LEFT JOIN {spans} sp ON sp.sid = hash({log}.trace_id, {log}.span_id)")
    masked = f"({warning_sql(log)} AND NOT coalesce(sp.err, true) AND f.culprit IS NOT NULL)"
    return join, "f.culprit", f"coalesce(f.failed OR {masked}, false)", masked


def as_bucket_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Bucket rows with the column types :func:`forensics.causes.series.compare_buckets` expects
    (DuckDB sums of counts arrive as 128-bit integers or decimals)."""
    if {"n", "value", "w"} <= set(frame.columns):
        frame = frame.astype({"n": "int64", "value": "float64", "w": "bool"})
        for c in ("sd", "res"):
            if c in frame.columns:
                frame[c] = frame[c].astype("float64")
    return frame


#: span families :meth:`SpanSignals.exemplars` finds traces for
EXEMPLAR_FAMILIES = ("self_time", "service_time", "pod_time", "gap", "dependency", "errors", "calls", "call_ops")


class SpanSignals:
    """The span signals of one case over one pair of periods (TEMP tables while open).

    Use as a context manager; each ``*_buckets`` method returns a pandas DataFrame with columns
    ``family``, ``service`` (the culprit), ``key`` (operation, edge or pod), ``w`` (window or
    baseline), ``bucket``, ``n`` (observations) and ``value``; :meth:`summary` gives the
    per-period medians in natural units and exemplar span keys.
    """

    def __init__(self, case: "Case", periods: Periods, width_s: float) -> None:
        self.case = case
        self._call_bases: dict[tuple[str, str], float] = {}
        self.params = {"b0": periods.baseline_start, "b1": periods.baseline_end, "w0": periods.window_start,
                       "w1": periods.window_end, "width_us": width_s * 1e6}
        self._stack = ExitStack()

    def __enter__(self) -> "SpanSignals":
        try:
            periods_only = {k: v for k, v in self.params.items() if k != "width_us"}
            ops = self._stack.enter_context(temp_table(self.case, _ops_sql(), periods_only))
            self.ops = self._stack.enter_context(temp_table(
                self.case, f"SELECT DISTINCT opid, operation FROM {ops}"))
            with temp_table(self.case, _with_parent_sql(_own_sql(ops)), self.params) as own_p:
                with temp_table(self.case, _kids_sql(own_p)) as kids:
                    # every span's columns, its parent's and its role: the one table kept
                    self.roles = self._stack.enter_context(temp_table(self.case, _roles_sql(own_p, kids)))
            self.requests = self._stack.enter_context(temp_table(self.case, _requests_sql(self.roles)))
            self.answers = self._stack.enter_context(temp_table(self.case, f"""
SELECT psid, end_us, culprit, err AS failed FROM {self.roles} WHERE role IN ('gap', 'dependency') AND psid IS NOT NULL"""))
            self.spans = self.roles
            self.turns = self._stack.enter_context(temp_table(self.case, self._turns_sql(), periods_only))
            self.pods = self._stack.enter_context(temp_table(self.case, pods_sql()))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _turns_sql(self) -> str:
        """Moments a calling span turned on a callee's answer that it masked (``psid``,
        ``culprit``, ``t_us``): the span logged a warning right after a call to it and did not
        fail (:func:`reaction_sql`). Calls the span makes to that callee afterwards follow its
        answers (:meth:`call_buckets`)."""
        join, callee, _, masked = reaction_sql(self.answers, self.spans)
        return f"""
SELECT hash(l.trace_id, l.span_id) AS psid, {callee} AS culprit, epoch_us(l.time) AS t_us FROM logs l {join}
WHERE l.trace_id IS NOT NULL AND l.time >= least($b0, $w0) AND l.time < greatest($b1, $w1) AND {masked}"""

    def _frame(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return as_bucket_frame(query_arrow(self.case.con, query, params).to_pandas())

    def count(self) -> int:
        return int(run(self.case.con, f"SELECT count(*) FROM {self.roles}")[0][0])

    # -- families ------------------------------------------------------------------------
    def time_buckets(self) -> pd.DataFrame:
        """Families ``self_time``, ``gap`` and ``dependency``: mean ``ln(1 + ms)`` per bucket of
        the own time of a service's requests keyed by their operation (self), of calls' time
        outside their callee keyed ``caller -> callee operation`` (gap), or of calls to an
        uninstrumented dependency keyed ``caller operation`` (dependency), these two with the
        calling service as ``caller`` (:func:`forensics.causes.series.without_caller_shift`); ``service_time``
        (key ``*``) and ``pod_time`` (key: the pod, window buckets; compared with the service's
        baseline buckets): the mean over the service's requests of ``ln(1 + own ms)`` minus the
        baseline median of their operation (so a change in the mix of operations is not a
        change), or, for an operation the baseline never saw, minus the baseline median of all
        the service's requests."""
        return self._frame(f"""
WITH q AS (SELECT q.*, ln(1 + q.self_ms) AS v, o.operation FROM {self.requests} q LEFT JOIN {self.ops} o USING (opid)),
med AS (SELECT culprit, opid, median(v) AS m FROM q WHERE NOT w GROUP BY ALL),
svc AS (SELECT culprit, median(v) AS m FROM q WHERE NOT w GROUP BY ALL),
rel AS (SELECT q.culprit, q.pod, q.w, q.bucket, q.v - coalesce(med.m, svc.m) AS v
        FROM q JOIN svc USING (culprit) LEFT JOIN med USING (culprit, opid)),
c AS (SELECT r.*, ln(1 + r.self_ms) AS v, o.operation FROM {self.roles} r LEFT JOIN {self.ops} o USING (opid)
      WHERE r.role IN ('gap', 'dependency'))
SELECT 'self_time' AS family, culprit AS service, coalesce(operation, '?') AS key, w, bucket, count(*) AS n,
  avg(v) AS value, stddev_samp(v) AS sd, NULL::VARCHAR AS caller
FROM q GROUP BY ALL
UNION ALL
SELECT role, culprit, CASE role WHEN 'gap' THEN service || ' -> ' || culprit || ' ' || coalesce(operation, '?')
                                ELSE service || ' ' || coalesce(operation, '?') END,
  w, bucket, count(*), avg(v), stddev_samp(v), service
FROM c GROUP BY ALL
UNION ALL
SELECT 'service_time', culprit, '*', w, bucket, count(*), avg(v), stddev_samp(v), NULL FROM rel GROUP BY ALL
UNION ALL
SELECT 'pod_time', culprit, pod, w, bucket, count(*), avg(v), stddev_samp(v), NULL FROM rel WHERE w GROUP BY ALL""")

    def error_buckets(self) -> pd.DataFrame:
        """Family ``errors``: share of spans failing at their origin per bucket, keyed by the
        culprit's operation (``caller -> callee operation`` for gap, ``caller operation`` for
        dependency roles), and ``*``: over all the spans charged to the culprit (a new
        operation that fails has no baseline of its own)."""
        return self._frame(f"""
WITH r AS (SELECT r.*, o.operation FROM {self.roles} r LEFT JOIN {self.ops} o USING (opid))
SELECT 'errors' AS family, culprit AS service,
  CASE role WHEN 'gap' THEN service || ' -> ' || culprit || ' ' || coalesce(operation, '?')
            WHEN 'dependency' THEN service || ' ' || coalesce(operation, '?')
            ELSE coalesce(operation, '?') END AS key,
  w, bucket, count(*) AS n, avg(origin::INT) AS value, NULL::DOUBLE AS sd
FROM r GROUP BY ALL
UNION ALL
SELECT 'errors', culprit, '*', w, bucket, count(*), avg(origin::INT), NULL FROM r GROUP BY ALL""")

    def call_buckets(self) -> pd.DataFrame:
        """Families ``calls`` and ``call_ops``: calls per parent span to each dependency
        (``operation -> target``) and to each of its operations (``operation -> target
        operation``), per bucket, charged to the parent's service; buckets where the parent
        operation ran without that call count 0.

        A call that *follows an answer* is not the caller's call pattern but the callee's doing:
        a call right after a failed call from the same parent with the same request (span name,
        URL and statement: a retry; the next item of a loop over items is not one, nor a call
        of the same request after one that succeeded; the order is only taken among the calls
        of a request that failed at least once, the few),
        or a call to a callee after the parent logged a masked warning about that callee's
        answer (asking again, looking items up one by one after a wrong value; see
        :func:`reaction_sql`). Those
        calls are left out of the caller's families and form the family ``follow_ups``, charged
        to the callee: per calling operation (key ``caller operation``), follow-up calls per
        request."""
        frame = self._frame(f"""
WITH turned AS (SELECT psid, culprit, min(t_us) AS t_us FROM {self.turns} GROUP BY ALL),
failed AS (SELECT DISTINCT psid, culprit, request_id FROM {self.roles} WHERE is_out AND err AND has_parent),
calls AS (
  SELECT c.sid, c.psid, c.target, c.opid, c.culprit, c.request_id, c.start_us, c.err, c.p_service, c.p_opid,
    c.p_w, c.p_bucket, coalesce(c.start_us >= t.t_us, false) AS turned, f.psid IS NOT NULL AS may_retry
  FROM {self.roles} c
  LEFT JOIN turned t ON t.psid = c.psid AND t.culprit = c.culprit
  LEFT JOIN failed f ON f.psid = c.psid AND f.culprit = c.culprit AND f.request_id = c.request_id
  WHERE c.is_out AND c.has_parent AND NOT c.p_is_out),
attempts AS (
  SELECT *, turned AS follows FROM calls WHERE NOT may_retry
  UNION ALL
  SELECT *, turned OR coalesce(lag(err) OVER (PARTITION BY psid, culprit, request_id ORDER BY start_us, sid), false)
  FROM calls WHERE may_retry),
follow_ups AS (
  SELECT culprit, p_service AS service, p_opid AS p_opkey, p_w AS w, p_bucket AS bucket, count(*) AS calls
  FROM attempts WHERE follows GROUP BY ALL),
per_parent AS (
  SELECT p_service AS service, p_opid AS p_opkey, target, opid AS c_opkey, p_w AS w, p_bucket AS bucket,
    count(*) AS calls
  FROM attempts WHERE NOT follows GROUP BY ALL),
parents AS (SELECT service, opid AS p_opkey, w, bucket, count(*) AS n FROM {self.roles} WHERE NOT is_out GROUP BY ALL),
edges AS (SELECT DISTINCT service, p_opkey, target, c_opkey FROM per_parent)
SELECT 'call_ops' AS family, e.service, coalesce(po.operation, '?') || ' -> ' || e.target || ' '
  || coalesce(co.operation, '?') AS key, pa.w, pa.bucket, pa.n, coalesce(pp.calls, 0) / pa.n AS value,
  NULL::DOUBLE AS sd
FROM edges e JOIN parents pa USING (service, p_opkey)
LEFT JOIN per_parent pp ON pp.service = e.service AND pp.p_opkey = e.p_opkey AND pp.target = e.target
  AND pp.c_opkey = e.c_opkey AND pp.w = pa.w AND pp.bucket = pa.bucket
LEFT JOIN {self.ops} po ON po.opid = e.p_opkey LEFT JOIN {self.ops} co ON co.opid = e.c_opkey
UNION ALL
SELECT 'calls', e.service, coalesce(po.operation, '?') || ' -> ' || e.target, pa.w, pa.bucket, pa.n,
  coalesce(pp.calls, 0) / pa.n, NULL::DOUBLE
FROM (SELECT DISTINCT service, p_opkey, target FROM edges) e JOIN parents pa USING (service, p_opkey)
LEFT JOIN (SELECT service, p_opkey, target, w, bucket, sum(calls) AS calls FROM per_parent GROUP BY ALL) pp
  ON pp.service = e.service AND pp.p_opkey = e.p_opkey AND pp.target = e.target AND pp.w = pa.w
  AND pp.bucket = pa.bucket
LEFT JOIN {self.ops} po ON po.opid = e.p_opkey
UNION ALL
SELECT 'follow_ups', e.culprit, e.service || ' ' || coalesce(po.operation, '?'), pa.w, pa.bucket, pa.n,
  coalesce(f.calls, 0) / pa.n, NULL::DOUBLE
FROM (SELECT DISTINCT culprit, service, p_opkey FROM follow_ups) e JOIN parents pa USING (service, p_opkey)
LEFT JOIN follow_ups f ON f.culprit = e.culprit AND f.service = e.service AND f.p_opkey = e.p_opkey AND f.w = pa.w
  AND f.bucket = pa.bucket
LEFT JOIN {self.ops} po ON po.opid = e.p_opkey""")
        base = frame[~frame["w"]].groupby(["family", "service", "key"])["value"].mean()
        self._call_bases = {(svc, key): v for (_, svc, key), v in base.items()}
        return frame

    def reactions(self) -> tuple[str, str]:
        """Two TEMP tables for charging what a caller does after a callee's answer to the callee
        (:func:`reaction_sql`, :func:`forensics.causes.others.log_buckets`): the calls, ``psid``
        (key of the calling span), ``end_us``, ``culprit`` (the callee service or dependency)
        and ``failed``; and every span's ``sid`` and ``err``."""
        return self.answers, self.spans

    def exemplars(self, family: str, service: str, key: str, *, top: int = 3) -> list[int]:
        """Keys (``sid``) of up to ``top`` window spans that show ``family`` most for ``service``
        and ``key`` (the requests with the most own time, the slowest calls, or failing at
        their origin); :meth:`trace_ids` turns them into trace ids, all at once."""
        if family not in EXEMPLAR_FAMILIES:
            return []
        order = "origin DESC, self_ms DESC" if family == "errors" else "self_ms DESC"
        where = "origin" if family == "errors" else "true"
        role = {"gap": "gap", "dependency": "dependency"}.get(family, "self")
        keyed = {"pod_time": "r.pod = $key", "service_time": "$key = '*'", "errors": "($key = '*' OR "
                 "coalesce(o.operation, '?') = $key OR r.service || ' -> ' || r.culprit || ' ' || coalesce(o.operation, '?') = $key "
                 "OR r.service || ' ' || coalesce(o.operation, '?') = $key)",
                 "gap": "r.service || ' -> ' || r.culprit || ' ' || coalesce(o.operation, '?') = $key",
                 "dependency": "r.service || ' ' || coalesce(o.operation, '?') = $key"}.get(
                     family, "coalesce(o.operation, '?') = $key")
        if family in ("calls", "call_ops"):
            return self._call_exemplars(service, key, top)
        source = self.requests if family in ("self_time", "service_time", "pod_time") else self.roles
        sids = [r[0] for r in run(self.case.con, f"""
SELECT r.sid FROM {source} r LEFT JOIN {self.ops} o USING (opid)
WHERE r.w AND r.culprit = $service AND ({keyed}) AND {where} AND (r.role = $role OR $family = 'errors')
ORDER BY {order}, r.sid LIMIT {int(top)}""", {"service": service, "key": key, "role": role, "family": family})]
        return sids

    def _call_exemplars(self, service: str, key: str, top: int) -> list[int]:
        """Window spans of the calling operation in ``key`` (``operation -> target operation``)
        with the most calls of that kind, or, when the pattern dropped, the fewest."""
        parent_op = key.split(" -> ", 1)[0]
        sids = [r[0] for r in run(self.case.con, f"""
WITH calls AS (
  SELECT c.psid, count(*) AS n FROM {self.roles} c LEFT JOIN {self.ops} co ON co.opid = c.opid
  WHERE c.is_out AND c.w AND c.psid IS NOT NULL
    AND ($parent_op || ' -> ' || c.target || ' ' || coalesce(co.operation, '?') = $key
         OR $parent_op || ' -> ' || c.target = $key)
  GROUP BY c.psid),
parents AS (
  SELECT p.sid, coalesce(calls.n, 0) AS n FROM {self.roles} p LEFT JOIN {self.ops} po ON po.opid = p.opid
  LEFT JOIN calls ON calls.psid = p.sid
  WHERE p.w AND NOT p.is_out AND p.service = $service AND coalesce(po.operation, '?') = $parent_op),
dropped AS (SELECT avg(n) < $base AS fewer FROM parents)
SELECT sid FROM parents, dropped ORDER BY CASE WHEN fewer THEN n ELSE -n END, sid LIMIT {int(top)}""",
            {"service": service, "key": key, "parent_op": parent_op, "base": self._call_base(service, key)})]
        return sids

    def _call_base(self, service: str, key: str) -> float:
        """Baseline calls per request of ``key`` (from :meth:`call_buckets`' last result)."""
        return float(self._call_bases.get((service, key), 0.0))

    def trace_ids(self, sids: list[Any]) -> dict[Any, str]:
        """The trace id of each span key in ``sids`` (one pass over ``spans`` for all of them)."""
        if not sids:
            return {}
        unique = sorted(set(sids))
        return dict(run(self.case.con, f"""
SELECT hash(trace_id, span_id), any_value(trace_id) FROM spans
WHERE hash(trace_id, span_id) IN ({', '.join('?' * len(unique))}) GROUP BY 1""", unique))

    def edges(self) -> set[tuple[str, str]]:
        """(caller, callee) service pairs of the window's calls (callee: the culprit of a gap or
        dependency span)."""
        return {(a, b) for a, b in run(self.case.con, f"SELECT DISTINCT service, culprit FROM {self.roles} "
                                                      "WHERE w AND role IN ('gap', 'dependency') AND culprit IS NOT NULL")}

    def totals(self) -> pd.DataFrame:
        """Per service and period: spans, median duration and median self time of its
        server/consumer spans (ms), for the sentences (inherited vs own time)."""
        return self._frame(f"""
SELECT service, w, count(*) AS n, median(duration_ms) AS p50_ms, median(self_ms) AS self_p50_ms,
  avg(origin::INT) AS origin_rate
FROM {self.roles} WHERE kind IN ('server', 'consumer') GROUP BY ALL""")
