"""Kubernetes exports: ``kubectl get events -o json`` and ``kubectl get pods -o json``.

Both are one JSON document (``kind`` ``List``/``EventList``/``PodList`` with ``items``, or a single
``Event``/``Pod``); rows keep the 0-based item index in ``source_offset``. The ``items`` of kubectl's
output stream (``core.json_stream``, batch by batch into a DuckDB table that spills under the
load's memory limit), so a document of any size loads with bounded memory; an item that is not
JSON is a reject and the others load; a document that ends early keeps the items before the cut.

``k8s_events`` (core ``v1`` and ``events.k8s.io/v1`` field names):

* ``time``: ``firstTimestamp``, else ``eventTime``, else ``deprecatedFirstTimestamp``, else
  ``metadata.creationTimestamp``; ``end_time``: ``series.lastObservedTime``, else
  ``lastTimestamp``, else ``deprecatedLastTimestamp``; ``count``: ``series.count``, ``count``,
  ``deprecatedCount`` (default 1);
* ``message`` from ``message``/``note``; ``severity`` is ``type`` lowercased (normal, warning);
* ``kind``: ``scale`` for ``ScalingReplicaSet`` and HPA ``SuccessfulRescale``; ``deploy`` for a
  rollout, i.e. the first "Scaled up replica set X" of a Deployment that (in the same file) also
  scales down another replica set (its ``version`` is the image tag its pods pulled, when the
  file has their ``Pulling``/``Pulled`` events); ``k8s`` otherwise;
* ``service``: the ``app.kubernetes.io/name`` or ``app`` label when present, else the involved
  object's workload (:mod:`forensics.loaders.core.kubernetes`: ``catalog-service-7d9f8b6c5-x2x9z``
  and the pre-1.8 ``catalog-service-4234284026-pbt8m`` → ``catalog-service``; replica sets
  ``-7d9f8b6c5``; stateful set ordinals ``-0``): one workload, one name;
* ``version``: the image tag of ``Pulling``/``Pulled`` messages for the workload's own container
  (not a sidecar's such as ``istio-proxy``, not an init container's; their image is in the
  ``image`` attribute); a rollout takes the tag its new pods pulled for their own container;
* ``attributes``: namespace, object_kind, object_name, field_path, component, host, action,
  replica_set.

``k8s_pods``: per container status (init containers too), events for ``lastState.terminated``
and ``state.terminated`` (reason OOMKilled/Error/Completed, ``time`` = ``finishedAt``,
attributes exit_code/started_at/finished_at), ``state.waiting`` reasons (CrashLoopBackOff,
ImagePullBackOff, CreateContainerConfigError, ...; ``time`` = the last termination, else the pod
start), restarts (reason ``Restarted``, ``count`` = ``restartCount``, ``time`` = the current
start), and pod-level ``status.reason`` (Evicted). ``version`` is the image tag of the pod's own
container (its name or image is the workload's; never a sidecar's or init container's: the
container's own image is the ``image`` attribute)
(``registry/x/catalog-service:1.8.0`` → ``1.8.0``; digests and registry ports are not tags).
"""
from __future__ import annotations

import itertools
import re

import pyarrow as pa

from forensics._db import run
from forensics.errors import Reason
from forensics.loaders.core import io as fio
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.json_stream import Tail, Truncated, iter_elements
from forensics.loaders.core.kubernetes import container_rank_sql, image_tag_sql, pod_workload_sql, workload_sql
from forensics.loaders.core.registry import register_format

#: kubectl's ``-o json`` list: ``{"apiVersion": "v1", "items": [`` (keys sorted), the items streamed
_LIST_START = re.compile(rb'^(?:\xef\xbb\xbf)?\s*\{\s*(?:"apiVersion"\s*:\s*"[^"]*"\s*,\s*)?"items"\s*:\s*\[')
_LIST_KIND = re.compile(rb'"kind"\s*:\s*"([A-Za-z]*)"')
_names = itertools.count()


def _ts(expr: str) -> str:
    return f"TRY_CAST(nullif({expr}, '') AS TIMESTAMPTZ)"


def _items(ctx: LoadContext, singular: str) -> str | None:
    """Register the document's items as a temp table ``(idx, it, ikind)``; returns its name."""
    start = _LIST_START.match(fio.read_head(ctx.path, 1 << 16))
    if start is not None and not ctx.option("whole_documents"):
        name = _streamed_items(ctx, start.end(), singular)
    else:
        name = _document_items(ctx, singular)
    if name is not None:
        ctx.emit("events", f"""
            SELECT idx AS source_offset, CAST(it AS VARCHAR) AS _raw, 'wrong_shape' AS _reject_code,
              'item of kind ' || coalesce(ikind, '(none)') || ' is not a {singular}' AS _reject_reason
            FROM {name} WHERE ikind IS DISTINCT FROM '{singular}'""")
    return name


def _streamed_items(ctx: LoadContext, start: int, singular: str) -> str:
    """The items of a kubectl list, streamed batch by batch into a temp table (items that are not
    JSON, or not UTF-8, rejected with their index; a cut document keeps the items before it)."""
    name = f"_k8s_items_{next(_names)}"
    run(ctx.con, f"CREATE TEMP TABLE {name} (idx BIGINT, it JSON, ikind VARCHAR)")
    list_kind = None
    try:
        with ctx.open() as fh:
            for item in iter_elements(fh, start, ctx.option("batch_bytes")):
                if isinstance(item, Tail):
                    found = _LIST_KIND.search(item.data)
                    list_kind = found.group(1).decode() if found else None
                    break
                if isinstance(item, Truncated):
                    ctx.reject(Reason.TRUNCATED, f"document ends inside item {item.element} (at byte {item.offset}); "
                               "the items before it were loaded", offset=item.element,
                               raw=item.raw[:1000].decode("utf-8", "backslashreplace"))
                    break
                for number, _, raw in item.bad_utf8:
                    ctx.reject(Reason.INVALID_UTF8, f"item {number} is not valid UTF-8 text", offset=number,
                               raw=raw[:1000].decode("utf-8", "backslashreplace"))
                src = ctx.register(item.table)
                ctx.emit("events", f"""SELECT element AS source_offset, raw AS _raw, 'invalid_json' AS _reject_code,
                    'item is not valid JSON (expected the output of kubectl get ' || ? || 's -o json)' AS _reject_reason
                    FROM {src} WHERE NOT json_valid(raw)""", [singular.lower()])
                run(ctx.con, f"INSERT INTO {name} SELECT element, raw::JSON, NULL FROM {src} WHERE json_valid(raw)")
                ctx.unregister(src)
    except fio.StreamTruncated as exc:
        ctx.reject(Reason.TRUNCATED, f"compressed stream ends early ({exc.cause}); the items before it were loaded",
                   offset=exc.offset)
    run(ctx.con, f"UPDATE {name} SET ikind = coalesce(it->>'$.kind', CASE WHEN ? = ? THEN ? END)",
        [list_kind, singular + "List", singular])
    return name


def _document_items(ctx: LoadContext, singular: str) -> str | None:
    """The items of a document read whole (one object, or a list in another key order)."""
    text = ctx.read_document()
    if text is None:
        return None
    src = ctx.register(pa.table({"text": [text]}))
    name = f"_k8s_items_{src}"
    bad = run(ctx.con, f"SELECT NOT json_valid(text) FROM {src}")[0][0]
    if bad:
        ctx.unregister(src)
        ctx.reject("invalid_json", f"not valid JSON (expected the output of kubectl get {singular.lower()}s -o json)", offset=0)
        return None
    run(ctx.con, f"""
        CREATE TEMP TABLE {name} AS
        SELECT idx, it, coalesce(it->>'$.kind', CASE WHEN list_kind = ? THEN ? END) AS ikind FROM (
          SELECT unnest(range(len(items))) AS idx, unnest(items) AS it, list_kind FROM (
            SELECT CASE WHEN json_type(d, '$.items') = 'ARRAY' THEN CAST(d->'$.items' AS JSON[]) ELSE [d] END AS items,
                   d->>'$.kind' AS list_kind
            FROM (SELECT text::JSON AS d FROM {src})))""", [singular + "List", singular])
    ctx.unregister(src)
    return name


def _load_items(ctx: LoadContext, singular: str, select_sql: str) -> None:
    """Emit the events ``select_sql`` (reading ``__ITEMS__``) makes of the document's items."""
    items = _items(ctx, singular)
    if items is not None:
        ctx.emit("events", select_sql.replace("__ITEMS__", items))
        ctx.unregister(items)


def _sniff_kind(head: Head, kind: str, marker: str) -> float:
    text = head.stripped
    if not text.startswith("{") or not re.search(rf'"kind"\s*:\s*"{kind}(List)?"', text):
        return 0.0
    return 0.95 if re.search(marker, text) else 0.0


def _sniff_events(head: Head) -> float:
    return _sniff_kind(head, "Event", r'"(involvedObject|regarding)"\s*:')


def _sniff_pods(head: Head) -> float:
    return _sniff_kind(head, "Pod", r'"(containers|containerStatuses)"\s*:')


_PULLED_IMAGE = "regexp_extract(message, 'image \"([^\"]+)\"', 1)"
_PULLED_TAG = image_tag_sql(_PULLED_IMAGE)
#: the container a pull event is about: ``spec.containers{app}``, ``spec.initContainers{istio-init}``
_PULLED_RANK = container_rank_sql("regexp_extract(o->>'$.fieldPath', '\\{([^}]+)\\}', 1)", _PULLED_IMAGE,
                                  pod_workload_sql("oname"), "starts_with(o->>'$.fieldPath', 'spec.initContainers')")

_EVENT_FIELDS = f"""
SELECT idx, it, o, o->>'$.kind' AS okind, o->>'$.name' AS oname, coalesce(o->>'$.namespace', it->>'$.metadata.namespace') AS ns,
  it->>'$.reason' AS reason, coalesce(it->>'$.message', it->>'$.note') AS message,
  coalesce({_ts("it->>'$.firstTimestamp'")}, {_ts("it->>'$.eventTime'")}, {_ts("it->>'$.deprecatedFirstTimestamp'")},
           {_ts("it->>'$.metadata.creationTimestamp'")}) AS time,
  coalesce({_ts("it->>'$.series.lastObservedTime'")}, {_ts("it->>'$.lastTimestamp'")},
           {_ts("it->>'$.deprecatedLastTimestamp'")}) AS end_time,
  coalesce(TRY_CAST(it->>'$.series.count' AS BIGINT), TRY_CAST(it->>'$.count' AS BIGINT),
           TRY_CAST(it->>'$.deprecatedCount' AS BIGINT), 1) AS count,
  regexp_extract(coalesce(it->>'$.message', it->>'$.note', ''), '^Scaled (up|down) replica set (\\S+) to', ['dir', 'rs']) AS scaled
FROM (SELECT idx, it, coalesce(it->'$.involvedObject', it->'$.regarding') AS o FROM __ITEMS__ WHERE ikind = 'Event')
"""

_EVENTS = f"""
WITH e AS ({_EVENT_FIELDS}),
rollout AS (
  SELECT *, scaled.dir = 'up' AND reason = 'ScalingReplicaSet'
      AND row_number() OVER (PARTITION BY ns, oname, scaled.rs, scaled.dir ORDER BY time, idx) = 1
      AND count(*) FILTER (scaled.dir = 'down') OVER (PARTITION BY ns, oname) > 0 AS is_rollout,
    CASE WHEN reason IN ('Pulling', 'Pulled') THEN {_PULLED_TAG} END AS pulled_tag,
    CASE WHEN reason IN ('Pulling', 'Pulled') THEN {_PULLED_RANK} END AS pulled_rank
  FROM e
),
rs_tags AS (  -- the image tag the pods of each replica set pulled for the own container of the workload
  SELECT ns, regexp_extract(oname, '^(.+)-[a-z0-9]{{5}}$', 1) AS rs, arg_min(pulled_tag, (pulled_rank, time)) AS tag
  FROM rollout WHERE okind = 'Pod' AND pulled_tag IS NOT NULL GROUP BY ALL
)
SELECT idx AS source_offset, CAST(it AS VARCHAR) AS _raw, time, end_time, count, reason, message,
  lower(it->>'$.type') AS severity,
  CASE WHEN is_rollout THEN 'deploy' WHEN reason IN ('ScalingReplicaSet', 'SuccessfulRescale') THEN 'scale' ELSE 'k8s' END AS kind,
  coalesce(it->>'$.metadata.labels."app.kubernetes.io/name"', it->>'$.metadata.labels.app', {workload_sql('oname', 'okind')}) AS service,
  CASE WHEN is_rollout THEN (SELECT tag FROM rs_tags t WHERE t.ns IS NOT DISTINCT FROM r.ns AND t.rs = r.scaled.rs)
       WHEN pulled_rank <= 1 THEN pulled_tag END AS version,  -- the tag of a sidecar or init container is not the version
  map_from_entries(list_filter([
    {{'key': 'namespace', 'value': ns}}, {{'key': 'object_kind', 'value': okind}}, {{'key': 'object_name', 'value': oname}},
    {{'key': 'field_path', 'value': o->>'$.fieldPath'}},
    {{'key': 'component', 'value': coalesce(nullif(it->>'$.reportingController', ''), nullif(it->>'$.reportingComponent', ''),
                                          it->>'$.source.component', it->>'$.deprecatedSource.component')}},
    {{'key': 'host', 'value': coalesce(it->>'$.source.host', it->>'$.deprecatedSource.host', nullif(it->>'$.reportingInstance', ''))}},
    {{'key': 'action', 'value': it->>'$.action'}}, {{'key': 'replica_set', 'value': nullif(scaled.rs, '')}},
    {{'key': 'image', 'value': CASE WHEN reason IN ('Pulling', 'Pulled') THEN {_PULLED_IMAGE} END}}
  ], lambda x: x.value IS NOT NULL AND x.value <> '')) AS attributes,
  CASE WHEN time IS NULL THEN 'bad_time' END AS _reject_code,
  CASE WHEN time IS NULL THEN 'event has no firstTimestamp, eventTime, deprecatedFirstTimestamp or metadata.creationTimestamp' END AS _reject_reason
FROM rollout r
"""


@register_format("k8s_events", signal="events", sniff=_sniff_events, extensions=(".json",),
                 description="Kubernetes events: kubectl get events -o json (v1 and events.k8s.io/v1)")
def load_k8s_events(ctx: LoadContext) -> None:
    _load_items(ctx, "Event", _EVENTS)


_WAITING_IGNORED = "('ContainerCreating', 'PodInitializing')"

_CONTAINERS = f"""
WITH p AS (
  SELECT idx, it, it->>'$.metadata.name' AS pod, it->>'$.metadata.namespace' AS ns,
    coalesce(it->>'$.metadata.labels."app.kubernetes.io/name"', it->>'$.metadata.labels.app',
             {pod_workload_sql("it->>'$.metadata.name'")}) AS service,
    coalesce({_ts("it->>'$.status.startTime'")}, {_ts("it->>'$.metadata.creationTimestamp'")}) AS pod_time
  FROM __ITEMS__ WHERE ikind = 'Pod'
), c0 AS (
  SELECT idx, it, pod, ns, service, pod_time, false AS init, unnest(CASE WHEN json_type(it, '$.status.containerStatuses') = 'ARRAY' THEN CAST(it->'$.status.containerStatuses' AS JSON[]) ELSE [] END) AS cs
  FROM p
  UNION ALL
  SELECT idx, it, pod, ns, service, pod_time, true, unnest(CASE WHEN json_type(it, '$.status.initContainerStatuses') = 'ARRAY' THEN CAST(it->'$.status.initContainerStatuses' AS JSON[]) ELSE [] END)
  FROM p
), c AS (  -- version: the image tag of the own container of the pod (not of a sidecar or init container)
  SELECT *, arg_min({image_tag_sql("cs->>'$.image'")}, ({container_rank_sql("cs->>'$.name'", "cs->>'$.image'", 'service', 'init')}, cs->>'$.name'))
      OVER (PARTITION BY idx) AS version
  FROM c0
), term AS (
  SELECT *, 'last' AS which, cs->'$.lastState.terminated' AS t FROM c WHERE json_exists(cs, '$.lastState.terminated')
  UNION ALL
  SELECT *, 'current', cs->'$.state.terminated' FROM c WHERE json_exists(cs, '$.state.terminated')
)
SELECT idx, it, pod, ns, service, cs->>'$.name' AS container, version, cs->>'$.image' AS image,
  {_ts("t->>'$.finishedAt'")} AS time, coalesce(t->>'$.reason', 'Terminated') AS reason, 1 AS count,
  'container ' || (cs->>'$.name') || ' terminated: ' || coalesce(t->>'$.reason', 'Terminated') || ' (exit code '
    || coalesce(t->>'$.exitCode', '?') || ')' || coalesce(': ' || (t->>'$.message'), '') AS message,
  CASE WHEN t->>'$.exitCode' = '0' THEN 'normal' ELSE 'warning' END AS severity,
  [{{'key': 'exit_code', 'value': t->>'$.exitCode'}}, {{'key': 'started_at', 'value': t->>'$.startedAt'}},
   {{'key': 'finished_at', 'value': t->>'$.finishedAt'}}, {{'key': 'signal', 'value': t->>'$.signal'}},
   {{'key': 'state', 'value': which}}] AS extra
FROM term
UNION ALL
SELECT idx, it, pod, ns, service, cs->>'$.name', version, cs->>'$.image',
  coalesce({_ts("cs->>'$.lastState.terminated.finishedAt'")}, pod_time), cs->>'$.state.waiting.reason', 1,
  coalesce(cs->>'$.state.waiting.message', 'container ' || (cs->>'$.name') || ' waiting: ' || (cs->>'$.state.waiting.reason')),
  'warning', [{{'key': 'state', 'value': 'waiting'}}]
FROM c WHERE cs->>'$.state.waiting.reason' IS NOT NULL AND cs->>'$.state.waiting.reason' NOT IN {_WAITING_IGNORED}
UNION ALL
SELECT idx, it, pod, ns, service, cs->>'$.name', version, cs->>'$.image',
  coalesce({_ts("cs->>'$.state.running.startedAt'")}, {_ts("cs->>'$.lastState.terminated.finishedAt'")}, pod_time),
  'Restarted', TRY_CAST(cs->>'$.restartCount' AS BIGINT),
  'container ' || (cs->>'$.name') || ' restarted ' || (cs->>'$.restartCount') || ' times', 'warning',
  [{{'key': 'restart_count', 'value': cs->>'$.restartCount'}}]
FROM c WHERE TRY_CAST(cs->>'$.restartCount' AS BIGINT) > 0
UNION ALL
SELECT idx, it, pod, ns, service, NULL, (SELECT any_value(version) FROM c WHERE c.idx = p.idx), NULL, pod_time, it->>'$.status.reason', 1,
  coalesce(it->>'$.status.message', 'pod ' || pod || ': ' || (it->>'$.status.reason')), 'warning', []
FROM p WHERE it->>'$.status.reason' IS NOT NULL
"""

_PODS = f"""
SELECT idx AS source_offset, CAST(it AS VARCHAR) AS _raw, time, 'k8s' AS kind, service, version, reason, message,
  severity, count,
  map_from_entries(list_filter([{{'key': 'namespace', 'value': ns}}, {{'key': 'object_kind', 'value': 'Pod'}},
    {{'key': 'object_name', 'value': pod}}, {{'key': 'container', 'value': container}}, {{'key': 'image', 'value': image}},
    {{'key': 'node', 'value': it->>'$.spec.nodeName'}},
    {{'key': 'replica_set', 'value': CASE WHEN it->>'$.metadata.ownerReferences[0].kind' = 'ReplicaSet'
                                        THEN it->>'$.metadata.ownerReferences[0].name' END}}] || extra, lambda x: x.value IS NOT NULL)) AS attributes,
  CASE WHEN time IS NULL THEN 'bad_time' END AS _reject_code,
  CASE WHEN time IS NULL THEN 'pod ' || coalesce(pod, '?') || ' ' || reason
    || ' has no time (no finishedAt/startedAt, status.startTime or metadata.creationTimestamp)' END AS _reject_reason
FROM ({_CONTAINERS})
UNION ALL BY NAME
SELECT idx AS source_offset, CAST(it AS VARCHAR) AS _raw, 'wrong_shape' AS _reject_code,
  'pod ' || coalesce(it->>'$.metadata.name', '?') || ': status.' || field || ' is a JSON ' || lower(t)
    || ', expected an array; its containers were not read' AS _reject_reason
FROM (SELECT idx, it, 'containerStatuses' AS field, json_type(it, '$.status.containerStatuses') AS t
      FROM __ITEMS__ WHERE ikind = 'Pod'
      UNION ALL
      SELECT idx, it, 'initContainerStatuses', json_type(it, '$.status.initContainerStatuses')
      FROM __ITEMS__ WHERE ikind = 'Pod')
WHERE t IS NOT NULL AND t NOT IN ('ARRAY', 'NULL')
"""


@register_format("k8s_pods", signal="events", sniff=_sniff_pods, extensions=(".json",),
                 description="Kubernetes pods: kubectl get pods -o json (restarts, OOMKilled, CrashLoopBackOff as events)")
def load_k8s_pods(ctx: LoadContext) -> None:
    _load_items(ctx, "Pod", _PODS)
