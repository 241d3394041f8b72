"""Hostile telemetry: values reach SQL only as bind parameters, HTML is escaped, secrets redacted.

* a static scan of forensics/ for SQL text built with f-strings, ``%`` or ``+``: no value is
  spliced inside a SQL string literal, no telemetry-named variable is interpolated, except the
  validated identifier paths listed (with the reason) in :data:`ALLOWED`;
* behaviour: service names, span names and trace ids such as ``'; DROP TABLE spans; --`` go
  through ``case.red``, ``logs_for_trace``, ``trace``, ``analysis.compare``, ``forensics sql -p``
  and the explorer's filters without a SQL error, and every table survives;
* ``quote_ident`` refuses anything but plain identifiers;
* the report escapes span names, attribute values, log bodies and event messages carrying
  markup and ``javascript:`` URLs (tests/report covers the CSP and findings);
* redaction masks planted secrets in span attributes, log bodies and event messages.
"""
from __future__ import annotations

import ast
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

import forensics
from forensics.case import quote_ident
from forensics.errors import ForensicsError, UsageError
from forensics.report import render
from forensics.report.redact import Redactor
from forensics.synth.builder import SpanBuilder

ROOT = Path(forensics.__file__).parent
SQLISH = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|FROM|CREATE|DROP|VALUES|JOIN)\b")
CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*$")
#: variable names that carry telemetry or user values when they reach SQL building code
VALUE_NAMES = {"trace_id", "span_id", "service", "operation", "version", "metric", "message", "body", "value",
               "trace_ids", "services", "status", "target", "path", "source_file", "kind", "name", "label", "labels"}

#: (module path relative to forensics/, interpolated expression) -> why it is safe
ALLOWED: dict[tuple[str, str], str] = {
    ("analysis/trace_diff.py", "g"): "loop variable over the literals 'a', 'b'",
    ("analysis/trace_diff.py", "name"): "loop variable over literal column-name suffixes",
    ("analysis/_select.py", "selection.flag()"): "a user-written predicate by design (documented: user SQL with "
                                                 "the case's privileges; values go in its params)",
    ("analysis/_select.py", "baseline.flag()"): "same as selection.flag()",
    ("analysis/clock_skew.py", "name"): "literal temp table name",
    ("analysis/critical_path.py", "path"): "generated temp table name of the critical spans (_critical_core)",
    ("detectors/_common.py", "name"): "generated temp table name (_fx_<pid>_<counter>)",
    ("detectors/_calls.py", "name"): "generated call table names (_fx_<what>_<pid>_<counter>)",
    ("detectors/version_regression.py", "name"): "generated registered table name",
    ("loaders/traces/otlp/arrow.py", "name"): "generated registered table name",
    ("loaders/traces/jaeger_zipkin/arrow.py", "name"): "generated temp table name (ctx.register)",
    ("loaders/core/context.py", "name"): "generated temp table name (_src_<counter>, ctx.register)",
    ("loaders/traces/otlp/sql.py", "key"): "OTLP request key from the SIGNALS constant table",
    ("loaders/traces/otlp/sql.py", "signal"): "signal name from the SIGNALS constant table",
    ("loaders/traces/otlp/sql.py", "rkey"): "OTLP request key from the SIGNALS constant table",
    ("loaders/traces/otlp/sql.py", "p"): "JSON path built only from SIGNALS constants (container shape checks)",
    ("loaders/events/deploy_log/deploys.py", "width"): "an int (number of header fields)",
    ("loaders/metrics/metrics_csv/metrics_csv.py", "width"): "an int (number of header fields)",
    ("loaders/metrics/metrics_csv/metrics_csv.py", "value"): "SQL fragment TRY_CAST(f[<int>] AS DOUBLE) built from a column index",
    ("loaders/metrics/metrics_csv/metrics_csv.py", "labels"): "SQL fragment (csv_map_sql() or MAP {})",
    ("loaders/events/k8s/k8s.py", "singular"): "the literal 'Pod' or 'Event' of the registering loader",
    ("loaders/events/k8s/k8s.py", "name"): "generated temp table name",
    ("loaders/logs/plain/plaintext.py", "name"): "generated registered table name (ctx.register)",
    ("loaders/metrics/prometheus/prometheus.py", "ts_expect"): "literal description of the expected timestamp unit",
    ("templates.py", "name"): "literal registered table name",
    ("case.py", "quote_ident(name)"): "validated identifier",
}


def _sql_fstrings(tree: ast.AST):
    """f-strings that look like SQL, except error messages (``raise X(f"...")``)."""
    messages = {id(n) for r in ast.walk(tree) if isinstance(r, ast.Raise) for n in ast.walk(r)}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and id(node) not in messages:
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            if SQLISH.search(text):
                yield node


def _violations() -> list[str]:
    found: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _sql_fstrings(tree):
            in_text = ""
            for part in node.values:
                if isinstance(part, ast.Constant):
                    in_text += str(part.value)
                    continue
                expr = ast.unparse(part.value)
                names = {n.id for n in ast.walk(part.value) if isinstance(n, ast.Name)}
                inside_literal = in_text.count("'") % 2 == 1
                tainted = bool(names & VALUE_NAMES)
                in_text += "X"
                if not (inside_literal or tainted) or (rel, expr) in ALLOWED:
                    continue
                if inside_literal and CONSTANT.match(expr.split("(")[0].split(".")[0].replace("', '.join", "")):
                    continue
                if inside_literal and re.fullmatch(r"', '\.join\([A-Z_]+\)", expr):
                    continue
                found.append(f"{rel}:{node.lineno}: {{{expr}}} " + ("inside a SQL string literal" if inside_literal
                                                                    else "is a telemetry-named value"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)
                    and isinstance(node.left.value, str) and SQLISH.search(node.left.value)):
                found.append(f"{rel}:{node.lineno}: SQL built with % formatting")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                sides = (node.left, node.right)
                if any(isinstance(s, ast.Constant) and isinstance(s.value, str) and SQLISH.search(s.value) for s in sides) \
                        and any(isinstance(s, ast.Name) and s.id in VALUE_NAMES for s in sides):
                    found.append(f"{rel}:{node.lineno}: SQL concatenated with a telemetry-named value")
    return found


def test_no_value_is_spliced_into_sql_text() -> None:
    assert _violations() == []


def test_the_scan_catches_the_classic_injections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f(con, service, trace_id, x):\n"
                   "    run(con, f\"SELECT * FROM spans WHERE service = '{service}'\")\n"
                   "    run(con, f\"SELECT * FROM spans WHERE trace_id = {trace_id}\")\n"
                   "    run(con, \"SELECT * FROM spans WHERE name = '%s'\" % x)\n"
                   "    run(con, \"SELECT * FROM spans WHERE service = \" + service)\n"
                   "    raise ValueError(f\"CREATE {service} failed\")  # a message, not SQL\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert len(_violations()) == 4


# -- behaviour --------------------------------------------------------------------------------------

HOSTILE = ["'; DROP TABLE spans; --", "%s", "$1", "?", "back\\slash\\", "nul\x00byte", "\" OR 1=1 --",
           "<script>alert(1)</script>"]


@pytest.fixture()
def hostile_case() -> forensics.Case:
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=3)
    for i, evil in enumerate(HOSTILE):
        root = b.span(evil, evil, kind="server", start_ms=i * 1000, duration_ms=100 + i, version=evil,
                      status="error" if i % 2 else "ok", attributes={"http.route": evil, "user.note": evil})
        b.span("inventory-service", "GET /items", kind="client", parent=root, start_ms=i * 1000 + 5, duration_ms=20,
               attributes={"peer.service": evil})
    case = forensics.open_case()
    b.insert(case)
    case.execute("INSERT INTO logs (time, service, severity, body, trace_id, source_file) "
                 "SELECT start_time, service, 'error', name, trace_id, 'app.log' FROM spans")
    return case


def _intact(case: forensics.Case, spans: int) -> None:
    tables = case.tables()
    assert {"spans", "logs", "metrics", "events", "rejects", "files"} <= set(tables)
    assert tables["spans"] == spans


def test_hostile_values_through_the_query_helpers(hostile_case: forensics.Case) -> None:
    case = hostile_case
    n = case.tables()["spans"]
    red = case.red(by=["service", "name"]).to_arrow().to_pylist()
    assert {r["service"] for r in red} >= set(HOSTILE)
    for evil in HOSTILE:
        for call in (case.logs_for_trace, case.trace):
            try:
                assert call(evil).to_arrow().num_rows == 0
            except UsageError as exc:  # not a hex id: refused before any SQL
                assert "hex" in str(exc)
        with pytest.raises(UsageError):
            case.red(by=evil)  # a column name, validated
        got = case.sql("SELECT count(*) AS n FROM spans WHERE service = ?", [evil]).to_arrow().column(0)[0].as_py()
        assert got == 1
    _intact(case, n)


def test_hostile_values_through_compare(hostile_case: forensics.Case) -> None:
    from forensics.analysis import compare

    case = hostile_case
    n = case.tables()["spans"]
    for evil in HOSTILE:
        res = compare(case, ("service = ?", [evil])).to_arrow().to_pylist()
        assert any(r["value"] == evil for r in res), evil
        assert compare(case, [evil]).to_arrow().num_rows >= 0  # a trace-id list that matches nothing
    _intact(case, n)


def test_hostile_values_through_forensics_sql_params(hostile_case: forensics.Case, tmp_path: Path, capsys) -> None:
    from forensics.cli import main

    path = tmp_path / "c.duckdb"
    with forensics.open_case(path) as c:
        c.con.register("s", hostile_case.sql("SELECT * FROM spans").to_arrow())
        c.execute("INSERT INTO spans SELECT * FROM s")
    for evil in HOSTILE[:5]:
        assert main(["sql", str(path), "SELECT count(*) AS n FROM spans WHERE service = ?", "-p", evil,
                     "--format", "json"]) == 0
        assert '"n":1' in capsys.readouterr().out.replace(" ", "")
    with forensics.open_case(path, read_only=True) as c:
        _intact(c, hostile_case.tables()["spans"])


def test_hostile_values_through_explorer_filters(hostile_case: forensics.Case) -> None:
    from forensics.explore import Explorer
    from forensics.findings import Findings

    case = hostile_case
    n = case.tables()["spans"]
    ex = Explorer(case, findings=Findings.empty() if hasattr(Findings, "empty") else None)
    for evil in HOSTILE:
        if evil in ex.service.options:
            ex.service.value = evil
            ex.refresh()
            assert all(t in set(case.sql("SELECT trace_id FROM spans").to_arrow().column(0).to_pylist())
                       for t in ex.trace_table.get("trace_id", []))
    _intact(case, n)


@pytest.mark.parametrize("name", ["spans; DROP TABLE spans", 'a"b', "1abc", "", "a b", "a-b", "ünïcode", None, 3,
                                  "spans--", "x\x00"])
def test_quote_ident_rejects_everything_but_plain_identifiers(name) -> None:
    with pytest.raises(UsageError):
        quote_ident(name)


def test_quote_ident_accepts_identifiers() -> None:
    assert quote_ident("spans") == '"spans"' and quote_ident("_x1") == '"_x1"'


def test_case_table_refuses_injection() -> None:
    case = forensics.open_case()
    with pytest.raises(ForensicsError):
        case.table("spans; DROP TABLE logs")
    assert "logs" in case.tables()


# -- report -------------------------------------------------------------------------------------------

MARKUP = ['<script>alert("span")</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(document.cookie)",
          "</script><script>alert(2)</script>", "<svg/onload=alert(3)>", "<a href=\"javascript:alert(4)\">x</a>"]


def _markup_case() -> tuple[forensics.Case, str]:
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=11)
    first = None
    for i in range(12):
        evil = MARKUP[i % len(MARKUP)]
        root = b.span("catalog-service", evil, kind="server", start_ms=i * 1000, duration_ms=100 + 50 * i,
                      version="1.8.0", status="error", status_message=evil,
                      attributes={"http.url": evil, "note": evil})
        b.span("inventory-service", evil, kind="client", parent=root, start_ms=i * 1000 + 5, duration_ms=20,
               attributes={"peer.service": "inventory-service", "db.statement": evil})
        first = first or root
    case = forensics.open_case()
    b.insert(case)
    case.execute("INSERT INTO logs (time, service, severity, body, trace_id, source_file) "
                 "SELECT start_time, service, 'error', 'log ' || name, trace_id, 'app.log' FROM spans")
    for i, evil in enumerate(MARKUP):
        case.execute("INSERT INTO events (time, kind, service, version, message, reason, source_file) VALUES "
                     "(TIMESTAMPTZ '2026-02-18 10:00:00+00' + to_seconds(?), 'deploy', 'catalog-service', ?, ?, ?, 'd.jsonl')",
                     [i, evil, evil, evil])
    return case, first.trace_id


def test_report_escapes_markup_from_every_table() -> None:
    from forensics import Findings

    case, trace_id = _markup_case()
    findings = Findings.from_records([{
        "detector": "n_plus_one", "severity": "high", "title": MARKUP[1], "service": "catalog-service",
        "operation": MARKUP[0], "target": "inventory-service", "target_operation": MARKUP[2], "version": "1.8.0",
        "start_time": datetime(2026, 2, 18, 10, tzinfo=timezone.utc),
        "end_time": datetime(2026, 2, 18, 10, 1, tzinfo=timezone.utc), "score": 1.0,
        "evidence": {"exemplar_trace_ids": [trace_id], "source": MARKUP[3]}, "summary": MARKUP[4]}])
    html = render(case, findings=findings)
    executable = [s for s in re.findall(r"<script(\b[^>]*)>", html) if "application/json" not in s]
    assert len(executable) == 2, executable  # plotly.js and the report's bootstrap
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)
    for evil in MARKUP:
        if "<" in evil or '"' in evil:  # plain "javascript:..." as text is harmless; as a URL it is checked below
            assert evil not in markup
    assert not re.search(r"<(img|svg|a)\b[^>]*\bon\w+\s*=", markup, flags=re.I)
    assert not re.search(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", markup, flags=re.I)
    assert "&lt;script&gt;" in markup or "&lt;img" in markup  # the text is shown, escaped
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, flags=re.S):
        assert "<" not in block and ">" not in block  # figure data with span names: markup characters escaped


# -- redaction ----------------------------------------------------------------------------------------

PLANTED = {
    "bearer": ("Authorization: Bearer abcDEF1234567890xyz", "abcDEF1234567890xyz"),
    "jwt": ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlMTIz", "eyJzdWIiOiJib2IifQ"),
    "aws_key": ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    "stripe": ("charge with sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    "github": ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    "password_kv": ("login failed password=Tr0ub4dor&3 for user", "Tr0ub4dor"),
    "url_credentials": ("postgres://app:s3cr3tpw@db.internal:5432/orders", "s3cr3tpw"),
    "email": ("mail to carol.jones@example.net bounced", "carol.jones@example.net"),
    "ipv4": ("client 192.168.13.37 connected", "192.168.13.37"),
    "ipv6": ("client 2001:db8:85a3::8a2e:370:7334 connected", "2001:db8:85a3::8a2e:370:7334"),
    "private_key": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA7"),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_redactor_masks_each_planted_secret(kind: str) -> None:
    text, secret = PLANTED[kind]
    out = Redactor().text(text)
    assert secret not in out and "[REDACTED:" in out


def test_redactor_recurses_into_nested_values() -> None:
    r = Redactor()
    out = r.text(repr({"a": [PLANTED["email"][0], {"b": PLANTED["aws_key"][0]}]}))
    assert "carol.jones@example.net" not in out and "AKIAIOSFODNN7EXAMPLE" not in out


def test_report_redacts_planted_secrets_in_spans_logs_and_events() -> None:
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=5)
    texts = [t for t, _ in PLANTED.values()]
    roots = []
    for i, text in enumerate(texts):
        roots.append(b.span("catalog-service", "GET /search", kind="server", start_ms=i * 1000, duration_ms=100,
                            version="1.8.0", status="error", status_message=text, attributes={"http.url": text, "note": text}))
    case = forensics.open_case()
    b.insert(case)
    case.execute("INSERT INTO logs (time, service, severity, body, trace_id, source_file) "
                 "SELECT start_time, service, 'error', status_message, trace_id, 'app.log' FROM spans")
    for i, text in enumerate(texts):
        case.execute("INSERT INTO events (time, kind, service, version, message, source_file) VALUES "
                     "(TIMESTAMPTZ '2026-02-18 10:00:00+00' + to_seconds(?), 'config', 'catalog-service', '1.8.0', ?, 'e.jsonl')",
                     [i, text])
    from forensics import Findings

    findings = Findings.from_records([{
        "detector": "retry_storm", "severity": "high", "title": "t", "service": "catalog-service", "operation": "GET /search",
        "target": None, "target_operation": None, "version": "1.8.0",
        "start_time": datetime(2026, 2, 18, 10, tzinfo=timezone.utc), "end_time": datetime(2026, 2, 18, 10, 1, tzinfo=timezone.utc),
        "score": 1.0, "evidence": {"exemplar_trace_ids": [r.trace_id for r in roots[:3]], "note": texts[0]},
        "summary": " / ".join(texts[:4])}])
    plain = render(case, findings=findings)
    html = render(case, findings=findings, redact=True)
    shown = [k for k, (_, secret) in PLANTED.items() if secret in plain or secret.replace("&", "&amp;") in plain]
    assert shown, "the unredacted report shows some planted secret (else this test proves nothing)"
    for kind, (_, secret) in PLANTED.items():
        assert secret not in html and secret.replace("&", "&amp;") not in html, kind
