"""Template mining: real log lines grouped into the expected templates, deterministically."""
from __future__ import annotations

from pathlib import Path

import pytest

import forensics
from forensics.templates import mine, mine_templates, template_id

DATA = Path(__file__).resolve().parent / "data" / "logs"

LINES = [
    ("timeout calling payment-service after 800 ms", "timeout calling payment-service after <*> ms"),
    ("timeout calling payment-service after 1250 ms", "timeout calling payment-service after <*> ms"),
    ("connected to 10.0.3.7:5432 in 12.5ms", "connected to <*> in <*>"),
    ("connected to 10.0.3.9:5432 in 3ms", "connected to <*> in <*>"),
    ("order 7f3c2a10-93b1-4c8e-9d2a-1b2c3d4e5f60 failed: card declined", "order <*> failed: card declined"),
    ("trace 4bf92f3577b34da6a3ce929d0e0e4736 dropped", "trace <*> dropped"),
    ("pointer 0xdeadbeef freed", "pointer <*> freed"),
    ("cache miss for sku:42", "cache miss for sku:<*>"),
    ("catalog-7d9f v1.8.0 ready", "catalog-7d9f v1.8.0 ready"),  # names and versions are not masked
    ("GET /search served 50 items in 2.5s", "GET /search served <*> items in <*>"),
    ("2026-02-18T10:12:33.123Z ERROR inventory call failed", "<*> ERROR inventory call failed"),
    ("job started 2026-02-18 10:12:33,123 ended 10:12:35.5", "job started <*> ended <*>"),
]


@pytest.mark.parametrize("line, expected", LINES)
def test_masking_and_templates(line: str, expected: str) -> None:
    assert mine([line]) == [expected]


def test_drain_generalizes_varying_words() -> None:
    lines = ["user alice logged in from web", "user bob logged in from web", "user carol logged in from mobile"]
    assert set(mine(lines)) == {"user <*> logged in from <*>"}


def test_load_fills_templates_and_ids() -> None:
    case = forensics.open_case()
    case.load(DATA / "payments.jsonl")
    rows = case.sql("SELECT template, template_id, count(*) AS n FROM logs GROUP BY ALL ORDER BY n DESC, template").rows()
    assert rows == [
        ("timeout calling payment-service after <*> ms", template_id("timeout calling payment-service after <*> ms"), 4),
        ("connected to <*> in <*>", template_id("connected to <*> in <*>"), 2),
        ("order <*> failed: card declined", template_id("order <*> failed: card declined"), 2),
        ("retrying payment-service call, attempt <*> of <*>", template_id("retrying payment-service call, attempt <*> of <*>"), 2),
    ]
    # "top error types" is one GROUP BY
    top = case.sql("SELECT template, count(*) FROM logs WHERE severity = 'error' GROUP BY template "
                   "ORDER BY 2 DESC LIMIT 1").rows()
    assert top == [("timeout calling payment-service after <*> ms", 4)]


def test_only_the_first_line_of_a_body_is_mined(tmp_path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text('{"time": "2026-02-18T10:12:33Z", "msg": "boom 1\\n  at a.b(C.java:1)"}\n'
                    '{"time": "2026-02-18T10:12:34Z", "msg": "boom 2\\n  at x.y(Z.java:99)\\n  at q"}\n')
    case = forensics.open_case()
    case.load(path)
    assert case.sql("SELECT DISTINCT template FROM logs").rows() == [("boom <*>",)]


def test_templates_option_false_skips_mining() -> None:
    case = forensics.open_case()
    case.load(DATA / "payments.jsonl", templates=False)
    assert case.sql("SELECT count(*) FROM logs WHERE template IS NOT NULL").scalar() == 0
    assert mine_templates(case) == 4
    assert case.sql("SELECT count(*) FROM logs WHERE template IS NULL").scalar() == 0


def test_mine_templates_where_and_determinism() -> None:
    case = forensics.open_case()
    case.load(DATA / "payments.jsonl", templates=False)
    assert mine_templates(case, where="severity = ?", params=["warn"]) == 1
    assert case.sql("SELECT count(*) FROM logs WHERE template IS NOT NULL").scalar() == 2
    mine_templates(case)
    first = case.sql("SELECT source_line, template, template_id FROM logs ORDER BY source_line").rows()
    mine_templates(case)
    assert case.sql("SELECT source_line, template, template_id FROM logs ORDER BY source_line").rows() == first


def test_order_of_loading_does_not_change_case_wide_templates(tmp_path) -> None:
    lines = (DATA / "payments.jsonl").read_text().splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:5]) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(lines[5:]) + "\n")
    results = []
    for order in (["a.jsonl", "b.jsonl"], ["b.jsonl", "a.jsonl"]):
        case = forensics.open_case()
        for name in order:
            case.load(tmp_path / name)
        mine_templates(case)
        results.append(case.sql("SELECT body, template FROM logs ORDER BY time").rows())
    assert results[0] == results[1]


def test_a_stray_drain3_ini_in_the_working_directory_has_no_effect(tmp_path, monkeypatch) -> None:
    expected = mine([line for line, _ in LINES])
    (tmp_path / "drain3.ini").write_text(
        "[DRAIN]\nsim_th = 0.99\ndepth = 3\n\n[MASKING]\n"
        'masking = [{"regex_pattern": ".+", "mask_with": "ALL"}]\n')
    monkeypatch.chdir(tmp_path)
    assert mine([line for line, _ in LINES]) == expected
    assert "<ALL>" not in " ".join(expected)


CORPUS = [
    "retry -1 of +3 after 1 2 3 ms", "connected to 10.0.3.7:5432 in 12.5ms", "v1.8.0 catalog-7d9f http2 s3",
    "order 7f3c2a10-93b1-4c8e-9d2a-1b2c3d4e5f60 failed", "ptr 0xDEADbeef/0x1f", "took 2.5s, 512MiB, 99.9%",
    "trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7", "a-5 b_6 c.7 8. .9 (10) [11] {12}",
    "1,2,3;4:5", "µs 5µs 6 µs", "at 2026-02-18T10:12:33.123+08:00 and 2026-02-18 10:12:33,5 or 10:12:33", "deadbeef cafebabe12 abcdefg", "GET /items/123?page=2 HTTP/1.1 200",
]


def test_sql_masking_matches_drain3_masking() -> None:
    import re

    import duckdb

    from forensics.templates import mask_sql, python_mask_patterns

    expected = []
    for text in CORPUS:
        for pattern in python_mask_patterns():
            text = re.sub(pattern, "<*>", text)
        expected.append(text)
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {mask_sql('s')} FROM unnest(?::VARCHAR[]) t(s)", [CORPUS]).fetchall()]
    assert got == expected
    assert got[0] == "retry <*> of <*> after <*> <*> <*> ms"


def test_many_distinct_numbers_mine_once_per_masked_message(tmp_path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(f'{{"time": {1771409553 + i}, "level": "error", "msg": "timeout after {i} ms '
                            f'calling 10.0.{i % 250}.{i % 7}:80"}}\n' for i in range(3000)))
    case = forensics.open_case()
    case.load(path)
    assert case.sql("SELECT DISTINCT template FROM logs").rows() == [("timeout after <*> ms calling <*>",)]


def test_request_lines_keep_method_and_route_and_never_share_a_template() -> None:
    lines = [f'10.11.10.{i} "{method} /v2/{"%032x" % (i * 7919)}/{route} HTTP/1.1" status: {status} len: {100 + i} '
             f'time: 0.{i:07d}' for i in range(1, 40)
             for method, route, status in [("GET", "servers/detail", 200), ("POST", "os-server-external-events", 200),
                                           ("DELETE", f"servers/7f3c2a10-93b1-4c8e-9d2a-1b2c3d4e{i:04d}", 204)]]
    case = forensics.open_case()
    case.con.execute("CREATE TEMP TABLE t AS SELECT unnest(?::VARCHAR[]) AS body", [lines])
    case.execute("INSERT INTO logs (time, body, source_file, source_line) SELECT TIMESTAMPTZ '2026-01-01', body, 'x', "
                 "row_number() OVER () FROM t")
    forensics.mine_templates(case)
    assert sorted(r[0] for r in case.sql("SELECT DISTINCT template FROM logs").rows()) == [
        '<*> "DELETE /v2/<*>/servers/<*> HTTP/<*>" status: <*> len: <*> time: <*>',
        '<*> "GET /v2/<*>/servers/detail HTTP/<*>" status: <*> len: <*> time: <*>',
        '<*> "POST /v2/<*>/os-server-external-events HTTP/<*>" status: <*> len: <*> time: <*>',
    ]


def test_paths_queries_and_bracketed_request_ids_are_masked() -> None:
    assert mine(["File does not exist: /var/www/html/favicon.ico", "File does not exist: /srv/robots.txt",
                 "GET /search?q=shoes&page=2 took 5 ms", "GET /search?q=hats took 7 ms",
                 "[req-38101a0b-2096-447d-96ea-a692162415ae 113d3a99c3da401fbd62cc2caa5b96d2 - - -] VM Started",
                 "[req-9bc36dd9-91c5-4314-898a-47625eb93b09 54fdadf51e5e4a8a9a8f0ae3c4d8b0e4 - - -] VM Started"]) == [
        "File does not exist: <*>", "File does not exist: <*>",
        "GET /search?<*> took <*> ms", "GET /search?<*> took <*> ms",
        "[<*> <*> - - -] VM Started", "[<*> <*> - - -] VM Started"]


def test_grouping_accuracy_on_the_labelled_corpus() -> None:
    """docs/templates.md quotes these figures (bench/templates.py prints them)."""
    from bench.templates import grouping_accuracy, mined, read_corpus, systems

    scores = {}
    for system in systems():
        truth, messages = read_corpus(system)
        scores[system] = grouping_accuracy(truth, mined(messages))
    assert len(scores) == 8 and scores["openstack"] >= 0.6
    assert all(score == 1.0 for name, score in scores.items() if name != "openstack")
    truth, messages = read_corpus("openstack")  # every request event has templates of its own
    found = mined(messages)
    for event in {t for t in truth if t.startswith("R")}:
        mine_of = {f for t, f in zip(truth, found) if t == event}
        assert {t for t, f in zip(truth, found) if f in mine_of} == {event}


def test_grouping_accuracy_measure() -> None:
    from bench.templates import grouping_accuracy

    assert grouping_accuracy(["a", "a", "b"], ["x", "x", "y"]) == 1.0
    assert grouping_accuracy(["a", "a", "b"], ["x", "x", "x"]) == 0.0
    assert grouping_accuracy(["a", "a", "b", "c"], ["x", "y", "z", "w"]) == 0.5
