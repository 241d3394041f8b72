"""Per-file cost of a load: the same spans as N small OTLP/HTTP protobuf request bodies (what an
OTLP/HTTP exporter POSTs, one ``ExportTraceServiceRequest`` per batch, as a collector that keeps
request bodies stores them) against one file holding all of them.

    python -m bench.per_file [--bodies 100] [--spans-per-body 50] [--repeat 3] [--case-file] [--json] [--unbatched]

The spans come from ``forensics.synth`` (scenario ``clean``): its OTLP JSON lines are parsed
with opentelemetry-proto and re-serialized as protobuf, the bodies split by whole traces, and
the single file is their concatenation (one protobuf message whose ``resource_spans`` are all of
theirs: protobuf merges repeated fields of concatenated messages). Each load runs into a fresh
case (in memory, or a case file with ``--case-file``) after a warm-up load, imports done before
the clock starts; the best of ``--repeat`` runs is reported (wall seconds, and CPU seconds of the process, all
threads: steadier on a shared machine) with the ratios, which issue #18 asks to stay within 2x.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import forensics


def write_bodies(out: Path, bodies: int, spans_per_body: int) -> tuple[list[Path], Path, int]:
    """Write ``bodies`` request bodies under ``out/bodies`` and their concatenation as
    ``out/all.binpb``; returns (bodies, single file, spans)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from forensics.synth.api import generate

    synth = out / "synth"
    traces = max(1, bodies * spans_per_body // 9)  # the clean scenario makes ~10 spans per trace
    generate("clean", synth, traces=traces, seed=1, format="otlp", progress=False)
    parts = []  # (resource_spans without spans, spans): one per service and batch
    for line in (synth / "traces.otlp.jsonl").read_text().splitlines():
        request = json_format.Parse(line, ExportTraceServiceRequest(), ignore_unknown_fields=True)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                empty = type(rs)(resource=rs.resource, schema_url=rs.schema_url)
                empty.scope_spans.add(scope=ss.scope, schema_url=ss.schema_url)
                parts.append((empty, list(ss.spans)))
    items = [(i, span) for i, (_, spans) in enumerate(parts) for span in spans]
    (out / "bodies").mkdir(parents=True)
    paths = []
    for b in range(bodies):  # the spans in order, cut into ``bodies`` bodies of (almost) equal size
        chunk = items[b * len(items) // bodies:(b + 1) * len(items) // bodies]
        request = ExportTraceServiceRequest()
        last = None
        for i, span in chunk:
            if i != last:
                rs = request.resource_spans.add()
                rs.CopyFrom(parts[i][0])
                last = i
            rs.scope_spans[0].spans.append(span)
        path = out / "bodies" / f"traces-{b + 1:04d}.binpb"
        path.write_bytes(request.SerializeToString())
        paths.append(path)
    spans = len(items)
    single = out / "all.binpb"
    single.write_bytes(b"".join(p.read_bytes() for p in paths))
    return paths, single, spans


def as_json(paths: list[Path], out: Path) -> tuple[list[Path], Path]:
    """The bodies as OTLP/HTTP JSON bodies (protobuf-JSON with hex ids, one line each) under
    ``out/json``, and one JSON-lines file holding them all (``out/all.jsonl``)."""
    import base64

    from google.protobuf import json_format

    from forensics.loaders.traces.otlp.otlp_proto import parse_request

    def hex_ids(node: object) -> object:
        if isinstance(node, dict):
            return {k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                    else hex_ids(v) for k, v in node.items()}
        return [hex_ids(v) for v in node] if isinstance(node, list) else node

    (out / "json").mkdir()
    lines, written = [], []
    for path in paths:
        lines.append(json.dumps(hex_ids(json_format.MessageToDict(parse_request(path.read_bytes())))))
        written.append(out / "json" / f"{path.stem}.json")
        written[-1].write_text(lines[-1])
    (out / "all.jsonl").write_text("\n".join(lines) + "\n")
    return written, out / "all.jsonl"


def timed_load(target: Path, case_file: Path | None, **options: object) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the process, spans loaded) of one load of ``target`` into a
    fresh case."""
    if case_file is not None and case_file.exists():
        case_file.unlink()
    case = forensics.open_case(str(case_file)) if case_file is not None else forensics.open_case()
    t0, c0 = time.perf_counter(), time.process_time()
    report = case.load(target, progress=False, **options)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    case.close()
    return seconds, cpu, report.by_table().get("spans", 0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=100)
    parser.add_argument("--spans-per-body", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case-file", action="store_true", help="load into a case file instead of memory")
    parser.add_argument("--json", action="store_true", help="OTLP/HTTP JSON bodies (and one JSON-lines file) instead")
    parser.add_argument("--unbatched", action="store_true",
                        help="also load the bodies one conversion per file (batch_small_files=False), for comparison")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths, single, spans = write_bodies(root, args.bodies, args.spans_per_body)
        bodies = root / "bodies"
        if args.json:
            paths, single = as_json(paths, root)
            bodies = root / "json"
        case_file = root / "case.duckdb" if args.case_file else None
        timed_load(paths[0], case_file)  # warm-up: first-use costs (imports, DuckDB extensions, drain3)
        best: dict[str, float] = {}
        loaded: dict[str, int] = {}
        for _ in range(args.repeat):
            runs = [("one_file", single, {}), ("bodies", bodies, {})]
            runs += [("unbatched", bodies, {"batch_small_files": False})] if args.unbatched else []
            for name, target, options in runs:
                seconds, cpu, loaded[name] = timed_load(target, case_file, **options)
                best[name] = min(best.get(name, seconds), seconds)
                best[name + "_cpu"] = min(best.get(name + "_cpu", cpu), cpu)
    assert set(loaded.values()) == {spans}, (loaded, spans)
    result = {"bodies": len(paths), "spans": spans, "case_file": args.case_file, "json": args.json,
              "one_file_s": round(best["one_file"], 3), "bodies_s": round(best["bodies"], 3),
              "per_body_ms": round(1000 * (best["bodies"] - best["one_file"]) / len(paths), 2),
              "ratio": round(best["bodies"] / best["one_file"], 2),
              "one_file_cpu_s": round(best["one_file_cpu"], 3), "bodies_cpu_s": round(best["bodies_cpu"], 3),
              "cpu_ratio": round(best["bodies_cpu"] / best["one_file_cpu"], 2)}
    if args.unbatched:
        result.update(unbatched_s=round(best["unbatched"], 3), unbatched_cpu_s=round(best["unbatched_cpu"], 3),
                      unbatched_cpu_ratio=round(best["unbatched_cpu"] / best["one_file_cpu"], 2))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
