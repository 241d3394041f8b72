"""One measured task per process, so peak RSS belongs to that task alone.

``python -m bench.tasks TASK FORMAT PATH [CASE]`` prints one JSON object: seconds, rows, peak_rss_mb.
Tasks: ``floor`` (read + orjson parse, no flattening), ``duckdb`` (DuckDB's own read_json + UNNEST
to a flat span table), ``pandas`` (json + pandas.json_normalize, the notebook way), ``forensics``
(forensics.load into a case file), ``detect:<name>`` and ``detect_cli`` over an existing case.
"""
from __future__ import annotations

import glob
import importlib
import json
import os
import resource
import subprocess
import sys
import time

from bench.scale import MemorySampler


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of all threads (the machine may be shared: wall time alone
    says little about the work done)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _files(pattern: str) -> list[str]:
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"no files match {pattern}")
    return files


def floor(fmt: str, pattern: str) -> int:
    import orjson

    n = 0
    for path in _files(pattern):
        with open(path, "rb") as fh:
            if fmt == "otlp":
                for line in fh:
                    if line.strip():
                        orjson.loads(line)
                        n += 1
            else:
                orjson.loads(fh.read())
                n += 1
    return n


DUCK_SQL = {
    "otlp": """
        CREATE TABLE flat AS
        WITH rs AS (SELECT unnest(resourceSpans) AS r FROM read_json(?, format='newline_delimited', maximum_object_size=536870912)),
             ss AS (SELECT r.resource AS res, unnest(r.scopeSpans) AS s FROM rs),
             sp AS (SELECT res, unnest(s.spans) AS x FROM ss)
        SELECT x.traceId AS trace_id, x.spanId AS span_id, x.parentSpanId AS parent_span_id, x.name AS name,
               x.kind AS kind, x.startTimeUnixNano AS start_ns, x.endTimeUnixNano AS end_ns,
               x.status AS status, x.attributes AS attributes, res.attributes AS resource_attributes
        FROM sp""",
    "jaeger": """
        CREATE TABLE flat AS
        WITH t AS (SELECT unnest(data) AS tr FROM read_json(?, maximum_object_size=536870912)),
             s AS (SELECT tr.processes AS procs, unnest(tr.spans) AS x FROM t)
        SELECT x.traceID AS trace_id, x.spanID AS span_id, x.references AS refs, x.operationName AS name,
               x.startTime AS start_us, x.duration AS duration_us, x.tags AS tags, x.processID AS process_id
        FROM s""",
    "zipkin": """
        CREATE TABLE flat AS
        SELECT traceId AS trace_id, id AS span_id, parentId AS parent_span_id, name, kind,
               timestamp AS start_us, duration AS duration_us, localEndpoint AS local, tags
        FROM read_json(?, format='array', maximum_object_size=536870912)""",
}


def duck(fmt: str, path: str) -> int:
    import duckdb

    con = duckdb.connect()
    con.execute(DUCK_SQL[fmt], [_files(path)]).fetchall()
    return con.execute("SELECT count(*) FROM flat").fetchall()[0][0]


def arrow_flat(fmt: str, pattern: str, store: str | None = None) -> int:
    """The fastest path measured for issue #8: pyarrow ``open_json`` streaming (with the OTLP
    trace schema) and a flatten of resource -> scope -> span to one flat span table per batch
    (ids, names, times, kind, status, span and resource attribute lists), not stored anywhere.

    With ``store`` (a DuckDB file path), each flat batch is also appended to a table there as it
    is (attribute lists of raw AnyValue structs, no conversion): the cost of the same parse plus
    DuckDB's own storage, the floor of any loader that keeps its spans in a DuckDB file."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    from forensics.loaders.traces.otlp.arrow import PARSE_SCHEMA  # the OTLP trace schema (a streaming reader needs one)

    if fmt != "otlp":
        raise SystemExit("pyarrow baseline: only for JSON-lines input (OTLP)")

    def unnest(lists):
        return lists.flatten(), pc.list_parent_indices(lists)

    con = None
    if store:
        import duckdb

        con = duckdb.connect(store)
        con.execute("BEGIN")
    n = 0
    for path in _files(pattern):
        reader = pj.open_json(path, read_options=pj.ReadOptions(block_size=16 << 20), parse_options=pj.ParseOptions(
            explicit_schema=PARSE_SCHEMA, unexpected_field_behavior="ignore"))
        for batch in reader:
            rs, _ = unnest(batch.column("resourceSpans"))
            ss, ss_rs = unnest(rs.field("scopeSpans"))
            spans, sp_ss = unnest(ss.field("spans"))
            res = rs.field("resource").field("attributes").take(pc.take(ss_rs, sp_ss))
            flat = pa.table({k: spans.field(k) for k in ("traceId", "spanId", "parentSpanId", "name", "kind",
                                                         "startTimeUnixNano", "endTimeUnixNano", "status", "attributes")}
                            | {"resource_attributes": res})
            if con is not None:
                rel = con.from_arrow(flat)
                if n:
                    rel.insert_into("flat")
                else:
                    rel.create("flat")
            n += flat.num_rows
    if con is not None:
        con.execute("COMMIT")
        con.close()
    return n


def pandas_naive(fmt: str, pattern: str) -> int:
    import pandas as pd

    frames = []
    for path in _files(pattern):
        with open(path, "rb") as fh:
            if fmt == "otlp":
                for line in fh:
                    if not line.strip():
                        continue
                    doc = json.loads(line)
                    for rs in doc.get("resourceSpans", []):
                        frames.append(pd.json_normalize(rs, record_path=["scopeSpans", "spans"], sep="."))
            elif fmt == "jaeger":
                doc = json.load(fh)
                frames.append(pd.json_normalize(doc["data"], record_path=["spans"], sep="."))
            else:
                frames.append(pd.json_normalize(json.load(fh), sep="."))
    df = pd.concat(frames, ignore_index=True)
    return len(df)


def forensics_load(fmt: str, pattern: str, case_path: str) -> int:
    import forensics

    with forensics.open_case(case_path) as case:
        report = forensics.load(case, *_files(pattern), progress=False)
        if report.rows_rejected:
            raise SystemExit(f"unexpected rejects: {report.rows_rejected}")
        return report.by_table().get("spans", 0)


def detect_one(name: str, case_path: str) -> int:
    import forensics
    from forensics.detectors import detect

    with forensics.open_case(case_path, read_only=True) as case:
        return len(detect(case, only=[name]))


def duplicate_rows(case_path: str, share: float = 0.01) -> int:
    """Load ``share`` of the case's span rows a second time (as overlapping exports do): the
    rows whose span id hashes into the first ``share`` of buckets. Returns the rows added."""
    import forensics

    with forensics.open_case(case_path) as case:
        before = case.sql("SELECT count(*) FROM spans").scalar()
        case.execute("INSERT INTO spans SELECT * FROM spans WHERE hash(span_id) % 10000 < ?", [int(share * 10000)])
        return case.sql("SELECT count(*) FROM spans").scalar() - before


_IMPORTS = {"floor": ("orjson",), "duckdb": ("duckdb",), "pyarrow": ("pandas", "pyarrow.json", "pyarrow.compute", "forensics.loaders.traces.otlp.arrow"),
            "pyarrow_store": ("pandas", "duckdb", "pyarrow.json", "pyarrow.compute", "forensics.loaders.traces.otlp.arrow"), "pandas": ("pandas",),
            "forensics": ("pandas", "forensics"), "detect": ("forensics", "forensics.detectors"),
            "detect_dup": ("forensics", "forensics.detectors")}


def main(argv: list[str]) -> None:
    task = argv[0]
    # every tool's imports happen before the clock starts (reported apart as import_seconds),
    # so each ratio compares loading work, not interpreter start-up; pandas counts as an import
    # for the Arrow tools too (pyarrow imports it at its first conversion of Python values)
    t_import = time.perf_counter()
    for module in _IMPORTS.get(task.split(":")[0], ()):
        importlib.import_module(module)
    duplicated = duplicate_rows(argv[1]) if task.startswith("detect_dup:") else None  # before the clock
    t0 = time.perf_counter()
    import_seconds = t0 - t_import
    cpu0 = _cpu_s()
    if task == "floor":
        rows = floor(argv[1], argv[2])
    elif task == "duckdb":
        rows = duck(argv[1], argv[2])
    elif task == "pyarrow":
        rows = arrow_flat(argv[1], argv[2])
    elif task == "pyarrow_store":
        rows = arrow_flat(argv[1], argv[2], store=argv[3])
    elif task == "pandas":
        rows = pandas_naive(argv[1], argv[2])
    elif task == "forensics":
        rows = forensics_load(argv[1], argv[2], argv[3])
    elif task.startswith(("detect:", "detect_dup:")):
        rows = detect_one(task.split(":", 1)[1], argv[1])
    elif task == "detect_cli":
        proc = subprocess.run([sys.executable, "-m", "forensics", "detect", argv[1], "--format", "json"],
                              capture_output=True, text=True, check=True)
        rows = len(json.loads(proc.stdout))
        # child's RSS, not ours
        print(json.dumps({"seconds": time.perf_counter() - t0, "rows": rows, "cpu_seconds": _cpu_s(resource.RUSAGE_CHILDREN),
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}))
        return
    else:
        raise SystemExit(f"unknown task {task!r}")
    print(json.dumps({"seconds": time.perf_counter() - t0, "rows": rows, "cpu_seconds": _cpu_s() - cpu0,
                      "import_seconds": import_seconds, "peak_rss_mb": MemorySampler.peak_rss_mb(),
                      **({"duplicated_rows": duplicated} if duplicated is not None else {})}))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main(sys.argv[1:])
