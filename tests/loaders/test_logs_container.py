"""container_logs: CRI runtime files (partial lines joined) and kubectl logs --timestamps."""
from __future__ import annotations

from ._logs_helpers import DATA, load_rows, rejects, utc


def test_cri_file_joins_partial_lines() -> None:
    rows, case, report = load_rows(DATA / "cri.log")
    assert report.files[0].format == "container_logs"
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 100000), "service": "catalog", "severity": "info",
        "body": "search served", "trace_id": None, "span_id": None,
        "attributes": {"stream": "stdout", "container.time": "2026-02-18T10:12:33.123456789Z", "items_returned": "50"},
        "source_line": 1,
    }
    # lines 2 (P) and 3 (F) are one JSON document
    assert rows[1] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 500000), "service": None, "severity": "error",
        "body": "inventory call failed", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": None,
        "attributes": {"stream": "stderr", "container.time": "2026-02-18T10:12:33.500000000Z"}, "source_line": 2,
    }
    # a text payload is the body; the runtime's time is the time
    assert (rows[2]["time"], rows[2]["body"], rows[2]["source_line"]) == (
        utc(2026, 2, 18, 10, 12, 34), "plain text from the container", 4)
    assert rejects(case) == [(5, "unparsed_line")]
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (4, 3, 1)


def test_kubectl_logs_with_timestamps() -> None:
    rows, _, _ = load_rows(DATA / "kubectl_timestamps.log")
    assert [(r["time"], r["severity"], r["body"], r["attributes"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33, 123456), "info", "search served", {}),
        # the application's own time wins over the runtime's
        (utc(2026, 2, 18, 10, 12, 33, 999000), "warn", "slow inventory",
         {"container.time": "2026-02-18T10:12:34.000000000Z"}),
    ]


def test_text_payloads_need_the_format_named(tmp_path) -> None:
    from forensics.loaders.logs.json_logs.json_logs import _sniff_container
    from forensics.loaders.core.sniff import head_of

    path = tmp_path / "k.log"
    path.write_text("2026-02-18T10:12:33.1Z starting\n2026-02-18T10:12:34.2Z [WARN] ready late\n"
                    "2026-02-18T10:12:35Z 10:12:35.001 main ERROR: Error while serving\n")
    assert _sniff_container(head_of(str(path))) == 0.0
    rows, _, _ = load_rows(path, format="container_logs")
    assert [(r["time"], r["severity"], r["body"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33, 100000), None, "starting"),
        (utc(2026, 2, 18, 10, 12, 34, 200000), "warn", "[WARN] ready late"),
        (utc(2026, 2, 18, 10, 12, 35), "error", "10:12:35.001 main ERROR: Error while serving"),
    ]


def test_stack_trace_lines_join_the_text_line_before_them() -> None:
    rows, case, report = load_rows(DATA / "cri_java.log")
    assert [(r["source_line"], r["severity"]) for r in rows] == [(1, "error"), (6, "info")]
    assert rows[0]["body"].splitlines() == [
        "2026-02-18 10:12:33.123 ERROR 1 --- [nio-8080-exec-2] c.s.c.InventoryClient : inventory call failed",
        "java.util.concurrent.TimeoutException: inventory-service did not answer in 800 ms",
        "\tat com.shop.catalog.InventoryClient.lookup(InventoryClient.java:88)",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        "\t... 12 more",
    ]
    assert rejects(case) == [] and report.files[0].records_read == 2


def test_docker_json_file_stack_trace_lines_are_joined() -> None:
    rows, _, _ = load_rows(DATA / "docker_java.jsonl")
    assert [(r["source_line"], r["severity"], r["body"]) for r in rows] == [
        (1, "error", "2026-02-18 10:12:33.123 ERROR inventory call failed\n"
                     "java.util.concurrent.TimeoutException: late\n"
                     "\tat com.shop.catalog.InventoryClient.lookup(InventoryClient.java:88)"),
        (4, "info", "2026-02-18 10:12:34.000 INFO next"),
    ]
