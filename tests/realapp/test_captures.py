"""Every realapp capture loads completely and shows what its truth.json claims.

The detector tests of issues #16 and #20 are written against these files, so each claim in a
truth.json is checked here on the canonical tables, as a detector would see them.
"""
from __future__ import annotations

import pandas as pd
import pytest

from .helpers import DATA, df, loaded, max_overlap, scenarios, spans, truth, variants


def test_there_are_captures() -> None:
    assert {"single_trace_parallel_fanout", "sql_n_plus_one_double_instrumented",
            "retries_in_client_span"} <= set(scenarios())


@pytest.mark.parametrize(("scenario", "variant"), variants())
def test_variant_loads_completely(scenario: str, variant: str) -> None:
    _, report = loaded(scenario, variant)
    assert report.files, f"{scenario}/{variant} holds no file"
    assert report.rows_rejected == 0
    assert report.rows_loaded + report.rows_merged == report.records_read  # merged: overlapping_exports
    assert all(f.status == "loaded" for f in report.files), [(f.path, f.status) for f in report.files]
    assert report.by_table().get("spans", 0) > 0


@pytest.mark.parametrize("scenario", scenarios())
def test_truth_is_complete(scenario: str) -> None:
    t = truth(scenario)
    assert t["scenario"] == scenario
    for key in ("description", "healthy", "variants", "facts", "window", "produced_with"):
        assert key in t, key
    assert t["healthy"] or t.get("incident") and t.get("expected_finding")
    for v in t["variants"]:
        assert (DATA / scenario / v).is_dir(), v


# ---------------------------------------------------------------------------------- fan-out
FANOUT = "single_trace_parallel_fanout"


@pytest.mark.parametrize("variant", ["otlp", "jaeger", "otlp_json"])
def test_parallel_fanout_one_parent_52_concurrent_calls(variant: str) -> None:
    facts = truth(FANOUT)["facts"]
    s = spans(FANOUT, variant)
    assert s.trace_id.unique().tolist() == [facts["trace_id"]]
    assert len(s) == facts["spans"]
    parent = s[(s.service == "fleet-service") & (s.kind == "server")]
    assert len(parent) == 1 and parent.span_id.iloc[0] == facts["parent_span_id"]
    calls = s[s.parent_span_id == facts["parent_span_id"]]
    assert len(calls) == 52 and set(calls.kind) == {"client"} and set(calls.name) == {"GET"}
    assert calls.http_url.str.match(r"http://device-api:\d+/devices/fleet-7-\d{3}$").all()
    servers = s[(s.service == "device-api") & (s.kind == "server")]
    assert len(servers) == 52 and set(servers.parent_span_id) == set(calls.span_id)
    assert set(servers.name) == {"GET /devices/<did>"}
    # the calls run at the same time: most of them are open together
    overlap = max_overlap(calls.start_time, calls.end_time)
    assert overlap >= 30
    if variant != "jaeger":  # Jaeger keeps microseconds: ties may order differently
        assert overlap == facts["max_concurrent_client_spans"]
    assert calls.start_time.max() - calls.start_time.min() < (calls.end_time.max() - calls.start_time.min())


def test_parallel_fanout_variants_hold_the_same_spans() -> None:
    cols = ["trace_id", "span_id", "parent_span_id", "service", "name", "kind"]
    ref = spans(FANOUT, "otlp")[cols].sort_values("span_id").reset_index(drop=True)
    for v in ("jaeger", "otlp_json"):
        other = spans(FANOUT, v)[cols].sort_values("span_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(ref, other)


def test_parallel_fanout_jaeger_is_a_ui_download() -> None:
    import json

    (path,) = (DATA / FANOUT / "jaeger").glob("*.json")
    doc = json.loads(path.read_text())
    assert set(doc) == {"data", "total", "limit", "offset", "errors"} and len(doc["data"]) == 1
    trace = doc["data"][0]
    assert path.stem == trace["traceID"] == truth(FANOUT)["facts"]["trace_id"]
    span = trace["spans"][0]
    assert span["warnings"] is None and span["processID"] in trace["processes"]
    keys = [t["key"] for t in span["tags"]]
    assert keys == sorted(keys) and "internal.span.format" in keys and "otel.scope.name" in keys


# ---------------------------------------------------------------------------------- SQL N+1
SQL = "sql_n_plus_one_double_instrumented"


def _db_spans(variant: str) -> pd.DataFrame:
    return df(SQL, variant, """
        SELECT d.trace_id, d.parent_span_id, d.span_id, d.scope_name, d.db_statement, d.start_time, d.end_time
        FROM spans d JOIN spans p ON p.span_id = d.parent_span_id AND p.trace_id = d.trace_id
        WHERE p.service = 'inventory-service' AND p.kind = 'server' AND p.name = 'GET /stock'
          AND d.db_statement IS NOT NULL AND d.db_statement NOT LIKE 'PRAGMA%'""")


def test_sql_n_plus_one_twenty_statements_each_traced_twice() -> None:
    facts = truth(SQL)["facts"]["n_plus_one"]
    db = _db_spans("n_plus_one")
    assert db.parent_span_id.nunique() == facts["requests"] == 5
    for _, req in db.groupby("parent_span_id"):
        outer = req[req.scope_name.str.endswith("sqlalchemy")].sort_values("start_time")
        inner = req[req.scope_name.str.endswith("sqlite3")]
        assert len(outer) == len(inner) == 20
        assert outer.db_statement.nunique() == 1 and "WHERE stock.sku = ?" in outer.db_statement.iloc[0]
        # the 20 statements run one after the other ...
        assert (outer.start_time.iloc[1:].reset_index(drop=True) >= outer.end_time.iloc[:-1].reset_index(drop=True)).all()
        # ... and each sqlite3 span lies within a SQLAlchemy span of the same statement
        for _, o in outer.iterrows():
            inside = inner[(inner.start_time >= o.start_time) & (inner.end_time <= o.end_time)]
            assert len(inside) == 1 and inside.db_statement.iloc[0] == o.db_statement


def test_sql_batched_baseline_one_statement_per_request() -> None:
    db = _db_spans("batched")
    assert db.parent_span_id.nunique() == 5
    counts = db.groupby(["parent_span_id", "scope_name"]).size()
    assert (counts == 1).all() and len(counts) == 10
    assert db.db_statement.str.contains(r"IN \(\?(?:, \?){19}\)").all()


# ---------------------------------------------------------------------------------- retries
RETRY = "retries_in_client_span"


def _pricing_calls(variant: str) -> pd.DataFrame:
    """Each catalog-service client span to pricing-service GET /prices/<sku>, with the status
    codes of the server spans under it (in time order)."""
    return df(RETRY, variant, """
        SELECT c.trace_id, c.span_id, c.http_status_code AS client_status,
               list(s.http_status_code ORDER BY s.start_time) AS server_statuses, count(s.span_id) AS servers
        FROM spans c LEFT JOIN spans s ON s.parent_span_id = c.span_id AND s.trace_id = c.trace_id AND s.kind = 'server'
        WHERE c.service = 'catalog-service' AND c.kind = 'client' AND c.http_url LIKE '%/prices/%'
        GROUP BY ALL ORDER BY min(c.start_time)""")


@pytest.mark.parametrize("variant", ["otlp", "zipkin"])
def test_retries_one_client_span_holds_two_to_four_server_spans(variant: str) -> None:
    plan = truth(RETRY)["facts"][variant]["failed_first_attempts"]
    calls = _pricing_calls(variant)
    assert calls.servers.tolist() == [k + 1 for k in plan]
    assert (calls.client_status == 200).all()
    for k, statuses in zip(plan, calls.server_statuses):
        assert list(statuses) == [503] * k + [200]
    if variant == "otlp":
        facts = truth(RETRY)["facts"]["otlp"]["calls"]
        assert calls.span_id.tolist() == [c["client_span_id"] for c in facts]


# ---------------------------------------------------------------------------------- untraced dependencies
UNTRACED = "uninstrumented_dependency"
HOSTS = ("api.payments.example", "geoip.example")


@pytest.mark.parametrize("variant", ["old_semconv", "new_semconv", "dup_semconv"])
def test_untraced_dependencies_are_known_only_by_their_url(variant: str) -> None:
    s = spans(UNTRACED, variant)
    gw = df(UNTRACED, variant, """
        SELECT c.span_id, c.name, coalesce(c.http_url, c.attributes['url.full']) AS url, c.http_status_code,
               c.peer_service, c.attributes, (SELECT count(*) FROM spans k WHERE k.parent_span_id = c.span_id) AS kids
        FROM spans c WHERE c.service = 'api-gateway' AND c.kind = 'client'""")
    external = gw[gw.url.str.contains("|".join(HOSTS), regex=True)]
    assert len(external) == 12 and (external.kids == 0).all()
    hosts = external.url.str.extract(r"^http://([^:/]+)")[0]
    assert sorted(hosts.value_counts().items()) == [("api.payments.example", 6), ("geoip.example", 6)]
    assert external.peer_service.isna().all()
    assert set(external.http_status_code) == {200, 201}
    keys = set().union(*(dict(a).keys() for a in external.attributes))
    if variant == "old_semconv":
        assert keys == {"http.method", "http.url", "http.status_code", "user_agent.original"}
    else:
        assert {"url.full", "server.address", "http.request.method", "http.response.status_code"} <= keys
        assert ("http.url" in keys) == (variant == "dup_semconv")
    # nothing was received from the external services themselves
    assert not set(s.service) & {"payments-provider", "geoip"}


# ---------------------------------------------------------------------------------- one failed trace
FAILED = "single_failed_trace"


@pytest.mark.parametrize("variant", ["otlp", "jaeger"])
def test_single_failed_trace_error_starts_in_pricing(variant: str) -> None:
    facts = truth(FAILED)["facts"]
    s = spans(FAILED, variant)
    assert s.trace_id.unique().tolist() == [facts["trace_id"]] and len(s) == facts["spans"]
    err = s[s.status == "error"]
    assert sorted(zip(err.service, err.kind)) == sorted((e["service"], e["kind"]) for e in facts["error_spans"])
    assert (err.http_status_code == 500).all()
    origin = s[s.span_id == facts["origin_span_id"]].iloc[0]
    assert (origin["service"], origin["name"]) == ("pricing-service", "GET /prices/<sku>")
    # the origin has no failing child; every other error span has one
    failing_parents = set(err.parent_span_id)
    assert origin.span_id not in failing_parents
    assert set(err.span_id) - {origin.span_id} <= failing_parents
    ev = df(FAILED, variant, "SELECT service, e->>'$.attributes.\"exception.type\"' AS type "
                             "FROM spans, unnest(CAST(events AS JSON[])) AS t(e) WHERE e->>'$.name' IN ('exception')")
    assert sorted(zip(ev.service, ev.type)) == sorted(tuple(e[0::2]) for e in facts["exception_events"])


def test_single_failed_trace_logs_carry_the_tracebacks() -> None:
    facts = truth(FAILED)["facts"]
    logs = df(FAILED, "otlp", "SELECT service, severity, trace_id, body, attributes['exception'] AS exc FROM logs "
                              "WHERE severity = 'error'")
    assert sorted(logs.service) == ["api-gateway", "catalog-service", "pricing-service"]
    assert (logs.trace_id == facts["trace_id"]).all()
    assert logs[logs.service == "pricing-service"].exc.iloc[0].rstrip().endswith("ZeroDivisionError: float division by zero")


# ---------------------------------------------------------------------------------- clock skew
SKEW = "clock_skew_pair"


@pytest.mark.parametrize("variant", ["one_trace", "few_traces"])
def test_clock_skew_server_span_sticks_out_by_the_offset(variant: str) -> None:
    t = truth(SKEW)
    offset = t["incident"]["offset_ms"]
    pairs = df(SKEW, variant, """
        SELECT c.trace_id, c.span_id AS client, s.span_id AS server,
               epoch_us(s.start_time) - epoch_us(c.start_time) AS before_us,
               epoch_us(s.end_time) - epoch_us(c.end_time) AS after_us
        FROM spans s JOIN spans c ON c.span_id = s.parent_span_id AND c.trace_id = s.trace_id
        WHERE s.service = 'pricing-service' AND s.kind = 'server' AND c.service = 'catalog-service'""")
    assert len(pairs) == len(t["facts"][variant]["pairs"]) == (1 if variant == "one_trace" else 5)
    assert pairs.trace_id.nunique() == len(pairs)
    # the server span ends after its client span: not a containment a real request allows
    assert (pairs.after_us > 0).all()
    # a host ahead by offset: the true server interval lies within the client's, so the offset is
    # between how far the end sticks out and how far the start is in
    assert (pairs.after_us <= offset * 1000).all() and (pairs.before_us >= offset * 1000).all()
    # no other pair is skewed: inventory-service's server spans sit inside their client spans
    others = df(SKEW, variant, """
        SELECT count(*) AS n, count(*) FILTER (WHERE s.start_time < c.start_time OR s.end_time > c.end_time) AS out
        FROM spans s JOIN spans c ON c.span_id = s.parent_span_id AND c.trace_id = s.trace_id
        WHERE s.kind = 'server' AND c.kind = 'client' AND s.service <> 'pricing-service'""")
    assert others.n.iloc[0] >= len(pairs) and others.out.iloc[0] == 0


# ---------------------------------------------------------------------------------- small bimodal
BIMODAL = "small_bimodal"


def test_small_bimodal_35_slow_requests_marked_by_cache_miss() -> None:
    facts = truth(BIMODAL)["facts"]
    req = df(BIMODAL, "otlp", """
        SELECT g.trace_id, g.duration_ms, c.attributes['app.cache_hit'] AS hit, c.duration_ms AS catalog_ms
        FROM spans g JOIN spans c ON c.trace_id = g.trace_id AND c.service = 'catalog-service' AND c.kind = 'server'
        WHERE g.service = 'api-gateway' AND g.kind = 'server' AND g.name = 'GET /api/products/<sku>'""")
    assert len(req) == facts["requests"] == 150
    slow, fast = req[req.hit == "false"], req[req.hit == "true"]
    assert len(slow) == facts["slow"] == 35 and len(fast) == 115
    # the slow path adds ~950 ms (x lognormal jitter) of catalog work: the modes do not touch
    assert slow.catalog_ms.min() > 600 and slow.duration_ms.min() > fast.duration_ms.max()
    assert slow.duration_ms.median() > 5 * fast.duration_ms.median()
    assert round(slow.duration_ms.median(), 3) == facts["slow_p50_ms"]
    assert round(fast.duration_ms.median(), 3) == facts["fast_p50_ms"]


# ---------------------------------------------------------------------------------- overlapping exports
OVERLAP = "overlapping_exports"


def test_overlapping_exports_load_each_span_once_and_count_the_copies_as_merged() -> None:
    facts = truth(OVERLAP)["facts"]
    s = spans(OVERLAP, "jaeger")
    # the dumps hold span_rows records; the spans of the traces two dumps share are kept once
    assert len(s) == facts["unique_spans"] == s[["trace_id", "span_id"]].drop_duplicates().shape[0]
    rows = s.groupby("trace_id").size() / pd.Series(dict(zip(facts["traces"], facts["spans_per_trace"])))
    assert rows.to_dict() == {t: 1.0 for t in facts["traces"]}
    _, report = loaded(OVERLAP, "jaeger")
    assert report.records_read == facts["span_rows"]
    assert report.rows_merged == facts["span_rows"] - facts["unique_spans"]
    assert report.records_read == report.rows_loaded + report.rows_merged + report.rows_rejected
    per_file = df(OVERLAP, "jaeger", "SELECT regexp_extract(path, '[^/]+$') AS f, records_read, rows_loaded, rows_merged "
                                     "FROM files ORDER BY 1")
    assert (per_file.records_read == per_file.rows_loaded + per_file.rows_merged).all()
    # each file's copies of a trace an earlier dump held are the merged ones: the first dump keeps them
    files = df(OVERLAP, "jaeger", "SELECT regexp_extract(source_file, '[^/]+$') AS f, list(DISTINCT trace_id) AS t "
                                  "FROM spans GROUP BY 1")
    first: dict[str, str] = {}
    for name in sorted(facts["files"]):
        for t in facts["files"][name]:
            first.setdefault(t, name)
    assert {r.f: sorted(r.t) for r in files.itertuples()} == {
        name: sorted(t for t in ts if first[t] == name) for name, ts in facts["files"].items()}


# ---------------------------------------------------------------------------------- OpenTracing era
LEGACY = "opentracing_legacy"


def test_opentracing_legacy_jdbc_spans_without_kind() -> None:
    facts = truth(LEGACY)["facts"]
    s = spans(LEGACY, "jaeger")
    # 64-bit Jaeger trace ids (16 hex digits in the file), left-padded to 32 by the loader
    assert all(len(t["trace_id"]) == 16 for t in facts["traces"])
    assert sorted(s.trace_id.unique()) == sorted(t["trace_id"].rjust(32, "0") for t in facts["traces"])
    jdbc = s[s.name == "HikariProxyPreparedStatement.executeQuery"]
    assert (jdbc.kind == "unspecified").all()
    counts = jdbc.groupby("parent_span_id").size().sort_values().tolist()
    assert counts == [9, 12, 14] == [t["execute_query_spans"] for t in facts["traces"]]
    parents = s[s.span_id.isin(jdbc.parent_span_id)]
    assert set(parents.name) == {"OrderRepository.findLines"} and (parents.kind == "unspecified").all()
    attrs = pd.DataFrame([dict(a) for a in jdbc.attributes])
    assert (attrs["component"] == "java-jdbc").all() and (attrs["db.type"] == "sql").all()
    assert (attrs["db.statement"] == facts["statement"]).all() and (attrs["db.instance"] == "orders").all()
    assert (attrs["peer.service"] == "mysql").all() and (attrs["peer.address"] == "orders-db.internal:3306").all()
    assert "span.kind" not in attrs.columns
    # one after the other under their parent
    for _, g in jdbc.sort_values("start_time").groupby("parent_span_id"):
        assert (g.start_time.iloc[1:].reset_index(drop=True) >= g.end_time.iloc[:-1].reset_index(drop=True)).all()
    audit = s[s.name == "AuditLog.insert"]
    assert len(audit) == 3 and all({"sql", "database"} <= set(dict(a)) for a in audit.attributes)
    assert set(s.service) == {"web-frontend", "orders-service"}
    assert set(s[s.parent_span_id.isna()].name) == {"HTTP GET /orders/{id}"}


# ---------------------------------------------------------------------------------- healthy systems
def test_healthy_noisy_has_traffic_and_no_errors() -> None:
    facts = truth("healthy_noisy")["facts"]
    s = spans("healthy_noisy", "otlp")
    assert len(s) == facts["spans"] and 300 <= len(s) <= 5000
    assert (s.status != "error").all() and facts["error_spans"] == 0
    roots = s[s.parent_span_id.isna()]
    assert len(roots) == facts["requests"] and set(roots.service) == {"api-gateway"}
    assert {"api-gateway", "catalog-service", "inventory-service", "pricing-service", "fleet-service",
            "device-api"} <= set(s.service)
    m = df("healthy_noisy", "otlp", "SELECT DISTINCT service, name FROM metrics")
    assert {"process.cpu.time", "process.memory.usage", "http.server.duration_count"} <= set(m.name)
    assert set(m.service) == set(s.service)
    pods = df("healthy_noisy", "otlp", "SELECT service, count(DISTINCT resource_attributes['k8s.pod.name']) AS n "
                                       "FROM metrics GROUP BY 1")
    assert (pods.n == 1).all()


def test_noop_redeploy_slows_every_service_alike() -> None:
    t = truth("healthy_noop_redeploy")
    facts, deploy = t["facts"], t["deploy"]
    ev = df("healthy_noop_redeploy", "otlp", "SELECT kind, service, version, time FROM events")
    assert len(ev) == 1 and (ev.kind.iloc[0], ev.service.iloc[0], ev.version.iloc[0]) == ("deploy", "catalog-service", "1.7.10")
    versions = df("healthy_noop_redeploy", "otlp", "SELECT service_version, count(*) AS n, max(end_time) AS last, "
                                                   "min(start_time) AS first FROM spans WHERE service = 'catalog-service' "
                                                   "GROUP BY 1 ORDER BY 1")
    assert versions.service_version.tolist() == ["1.7.10", "1.7.9"]
    # the old version's last span ends around the deploy, the new one's first starts after it starts
    assert versions.first.iloc[0] > versions.first.iloc[1]
    assert facts["error_spans"] == 0 and facts["status_codes"] == [200]
    deploy_at = pd.Timestamp(deploy["time"])
    assert abs(ev.time.iloc[0] - deploy_at) < pd.Timedelta("1ms")
    ratio = df("healthy_noop_redeploy", "otlp", """
        SELECT service,
               median(duration_ms) FILTER (WHERE start_time > ?) / median(duration_ms) FILTER (WHERE end_time < ?) AS r
        FROM spans WHERE kind = 'server' AND service <> 'payments-provider' GROUP BY 1""", [deploy_at, deploy_at])
    r = dict(zip(ratio.service, ratio.r))
    control = [v for k, v in r.items() if k != "catalog-service"]
    assert min(control) > 1.2 and min(control) <= r["catalog-service"] <= max(control)
    for svc, v in facts["slowdown"].items():
        assert abs(r[svc] - v["p50_ratio"]) < 0.25 * v["p50_ratio"]  # medians vs the generator's upper medians


def test_single_failed_trace_jaeger_keeps_status_descriptions() -> None:
    q = "SELECT span_id, status, status_message FROM spans ORDER BY span_id"
    pd.testing.assert_frame_equal(df(FAILED, "otlp", q), df(FAILED, "jaeger", q))
