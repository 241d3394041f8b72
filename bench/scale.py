"""`make bench-scale`: bounded memory at scale (issues #7, #8).

    python -m bench.scale [--sizes 50e6,200e6,800e6,5e9] [--case-spans 100e6] [--memory-limit 4GB]
                          [--threads 2] [--workdir DIR] [--case PATH] [--detectors a,b,all]
                          [--no-ingest] [--no-case] [--keep]

1. Ingest: OTLP/JSON files of growing size (:mod:`bench.bigdata`, copies of a synth export) are
   each loaded by ``forensics.load`` (its default settings) in a fresh process; recorded: wall
   and CPU seconds, peak RSS, and a sampled timeline of RSS and of the memory *held* by DuckDB
   (``duckdb_memory()``) and Arrow (its pool) — see :class:`MemorySampler` — and the slope of
   peak RSS against file size (MB of RSS per GB of file).
2. Case: a case of ``--case-spans`` spans is built by replicating a loaded synth incident
   (``n_plus_one``, ~766k spans) in SQL with rewritten trace ids; then every registered detector
   runs alone, and all together (``forensics.detect``), each in its own process with
   ``open_case(..., memory_limit=, threads=)``; per detector: seconds, CPU seconds, peak RSS,
   held memory, findings, or the error (e.g. out of memory).

Results go to ``bench/results/scale-<UTC time>.json``. Child processes are ``python -m
bench.scale child load|detect ...`` (one JSON line on stdout).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from forensics.case import Case

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "bench" / "data"
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


# -- child side: one measured task per process ------------------------------------------------
class MemorySampler:
    """Samples this process's resident set size (``rss``), and optionally memory that is *held*
    (``probe()`` returns MB by name, e.g. DuckDB's buffer manager and Arrow's pool), every
    ``every_s`` seconds in a thread.

    RSS is the ground truth but sticky (freed heap is not always given back to the system), so
    a long run looks bigger than a short one; held memory shows what is actually kept.
    """

    def __init__(self, every_s: float = 0.25, probe: Callable[[], dict[str, float]] | None = None) -> None:
        self.every_s = every_s
        self.probe = probe
        self.t0 = time.perf_counter()
        self.samples: list[tuple[float, dict[str, float]]] = []  # (seconds, {"rss": MB, probe names: MB})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE_MB

    @staticmethod
    def peak_rss_mb() -> float:
        """This process's peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries that over
        ``execve`` from the parent (a big bench driver would inflate every child's number)."""
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            values = {"rss": self.rss_mb()}
            if self.probe is not None:
                try:
                    values.update(self.probe())
                except Exception:  # the probe's connection may be busy closing: skip this reading
                    pass
            self.samples.append((time.perf_counter() - self.t0, values))
            self._stop.wait(self.every_s)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        """For each measure (``rss``, and the probe's): ``late_<name>_mb``, the median over the
        last third of the run (what memory has grown to, without one batch's short spikes), and
        ``peak_<name>_mb`` (for the probe's; RSS's is :meth:`peak_rss_mb`); a short timeline."""
        import statistics

        end = self.samples[-1][0] if self.samples else 0.0
        names = sorted({k for _, v in self.samples for k in v})
        out: dict = {}
        for name in names:
            every = [v[name] for _, v in self.samples if name in v]
            late = [v[name] for t, v in self.samples if name in v and t >= 2 / 3 * end] or every
            out[f"late_{name}_mb"] = round(statistics.median(late))
            if name != "rss":
                out[f"peak_{name}_mb"] = round(max(every))
        step = max(1, len(self.samples) // 12)
        out["timeline"] = [{"s": round(t, 1), **{k: round(x) for k, x in v.items()}}
                           for t, v in self.samples[::step] + self.samples[-1:]]
        return out


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measured(task: Callable[[], dict], probe: Callable[[], dict[str, float]] | None = None) -> dict:
    """Run ``task()`` (returns a dict) with wall/CPU seconds, peak RSS (``VmHWM``) and the
    :class:`MemorySampler` summary; an exception becomes ``{"error": ...}``."""
    t0, cpu0 = time.perf_counter(), _cpu_s()
    base_mb = MemorySampler.rss_mb()
    with MemorySampler(probe=probe) as sampler:
        try:
            out = task()
        except Exception as exc:  # reported, not raised: the parent records which task failed
            import traceback

            frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}: {f.line}"
                      for f in traceback.extract_tb(exc.__traceback__) if "forensics" in f.filename]
            out = {"error": f"{type(exc).__name__}: {str(exc)[:2000]}", "where": frames[-4:]}
    out.update(seconds=round(time.perf_counter() - t0, 2), cpu_seconds=round(_cpu_s() - cpu0, 2),
               start_rss_mb=round(base_mb), peak_rss_mb=round(MemorySampler.peak_rss_mb()),
               **sampler.summary())
    return out


def _duckdb_memory(case: "Case") -> dict:
    rows = case.sql("SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0").rows()
    return {tag: round(n / 2**20) for tag, n in rows}


def _held_probe(case: "Case") -> Callable[[], dict[str, float]]:
    """MB held by DuckDB's buffer manager (all tags; read on a second connection to the case's
    database) and by Arrow's memory pool."""
    import pyarrow as pa

    from forensics._db import scalar

    mon = case.con.cursor()
    return lambda: {"duckdb": scalar(mon, "SELECT sum(memory_usage_bytes) FROM duckdb_memory()") / 2**20,
                    "arrow": pa.total_allocated_bytes() / 2**20}


def child_load(path: str, case_path: str, memory_limit: str | None, threads: int | None,
               batch_bytes: int | None = None, load_memory_limit: str | None = None) -> dict:
    """Measure ``forensics.load`` of ``path`` into ``case_path`` in this process (see
    :func:`measure_load`)."""
    import forensics

    forensics.formats()  # imports every loader before the clock starts
    options: dict = {"batch_bytes": batch_bytes} if batch_bytes else {}
    if load_memory_limit:
        options["memory_limit"] = load_memory_limit
    case = forensics.open_case(case_path, memory_limit=memory_limit, threads=threads)

    def task() -> dict:
        report = forensics.load(case, path, progress=False, **options)
        return {"spans": report.by_table().get("spans", 0), "rejected": report.rows_rejected,
                "duckdb_memory_mb": _duckdb_memory(case)}

    try:
        return _measured(task, probe=_held_probe(case))
    finally:
        case.close()


def child_detect(case_path: str, name: str, memory_limit: str | None, threads: int | None) -> dict:
    """Measure detector ``name`` (or ``"all"``) over ``case_path`` in this process."""
    import forensics

    forensics.detectors()  # imports every detector before the clock starts
    case = forensics.open_case(case_path, read_only=True, memory_limit=memory_limit, threads=threads)

    def task() -> dict:
        findings = forensics.detect(case, only=None if name == "all" else [name])
        return {"findings": len(findings), "duckdb_memory_mb": _duckdb_memory(case)}

    try:
        return _measured(task, probe=_held_probe(case))
    finally:
        case.close()


# -- parent side ------------------------------------------------------------------------------
def run_child(*args: str, timeout: float = 6 * 3600) -> dict:
    """Run ``python -m bench.scale child ARGS`` and return its JSON (or ``{"error": ...}``)."""
    proc = subprocess.run([sys.executable, "-m", "bench.scale", "child", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    if proc.returncode != 0 or not last:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return json.loads(last[0])


def _limits(memory_limit: str | None, threads: int | None) -> list[str]:
    return (["--memory-limit", memory_limit] if memory_limit else []) + (["--threads", str(threads)] if threads else [])


def measure_load(path: str | os.PathLike, case_path: str | os.PathLike, *, memory_limit: str | None = None,
                 threads: int | None = None, batch_bytes: int | None = None,
                 load_memory_limit: str | None = None) -> dict:
    """Load ``path`` into a new case ``case_path`` in a fresh process; its measurements:
    ``seconds``, ``cpu_seconds``, ``peak_rss_mb`` (VmHWM), ``late_rss_mb``, ``peak_duckdb_mb``,
    ``late_duckdb_mb``, ``peak_arrow_mb``, ``late_arrow_mb`` (see :class:`MemorySampler`), a
    ``timeline``, ``spans``, ``rejected``,
    ``duckdb_memory_mb`` (by tag, after the load) — or ``error``.

    ``memory_limit``/``threads`` open the case; ``batch_bytes`` is the loaders' read block size;
    ``load_memory_limit`` is ``forensics.load``'s ``memory_limit`` option (DuckDB's limit while
    loading into a case opened without one)."""
    extra = ["--batch-bytes", str(batch_bytes)] if batch_bytes else []
    extra += ["--load-memory-limit", load_memory_limit] if load_memory_limit else []
    return run_child("load", str(path), str(case_path), *_limits(memory_limit, threads), *extra)


def measure_detect(case_path: str | os.PathLike, name: str, *, memory_limit: str | None = None,
                   threads: int | None = None) -> dict:
    """Run detector ``name`` (or ``"all"``) over ``case_path`` in a fresh process; its measurements."""
    return run_child("detect", str(case_path), name, *_limits(memory_limit, threads))


def rss_slope_mb_per_gb(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of peak RSS (MB) against file size (bytes), in MB per GB of file."""
    import numpy as np

    x = np.array([p[0] for p in points], dtype=float) / 1e9
    y = np.array([p[1] for p in points], dtype=float)
    return float(np.polyfit(x, y, 1)[0]) if len(points) > 1 else 0.0


def ingest_curve(sizes: list[int], workdir: Path, *, load_memory_limit: str | None = None) -> dict:
    """Peak RSS of loading OTLP files of ``sizes`` bytes (each generated, loaded, then deleted)."""
    from bench import bigdata

    template = bigdata.Template.from_file(bigdata.default_template())
    rows = []
    for size in sizes:
        free = shutil.disk_usage(workdir).free
        if free < 1.3 * size + 2e9:
            rows.append({"bytes": size, "skipped": f"{free / 1e9:.0f} GB free under {workdir}"})
            print(f"  skip {size / 1e6:,.0f} MB: {rows[-1]['skipped']}", file=sys.stderr)
            continue
        src, case_path = workdir / f"otlp-{size}.jsonl", workdir / f"ingest-{size}.duckdb"
        gen = bigdata.write(src, template, size_bytes=size)
        print(f"  generated {gen['bytes'] / 1e6:,.0f} MB ({gen['spans']:,} spans) in {gen['seconds']:.1f}s",
              file=sys.stderr)
        row = {"bytes": gen["bytes"], "spans": gen["spans"], "generate_seconds": round(gen["seconds"], 1),
               "load": measure_load(src, case_path, load_memory_limit=load_memory_limit)}
        row["case_bytes"] = case_path.stat().st_size if case_path.exists() else None
        print(f"  load {gen['bytes'] / 1e6:,.0f} MB: {_brief(row['load'])}", file=sys.stderr)
        rows.append(row)
        src.unlink(missing_ok=True)
        for p in workdir.glob(f"ingest-{size}.duckdb*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    ok = [(r["bytes"], r["load"]["peak_rss_mb"]) for r in rows if "load" in r and "error" not in r["load"]]
    return {"load_memory_limit": load_memory_limit or "forensics.load default", "files": rows,
            "rss_mb_per_gb_of_file": round(rss_slope_mb_per_gb(ok), 1)}


def _brief(m: dict) -> str:
    if "seconds" not in m:
        return f"FAILED {m.get('error')}"
    err = f" FAILED {m['error'][:300]}" if "error" in m else ""
    return (f"{m['seconds']:.1f}s wall, {m['cpu_seconds']:.1f}s cpu, peak RSS {m['peak_rss_mb']:,} MB "
            f"(late {m.get('late_rss_mb')}), held: DuckDB peak {m.get('peak_duckdb_mb')} MB, "
            f"Arrow peak {m.get('peak_arrow_mb')} MB{err}")


SOURCE_SCENARIO, SOURCE_TRACES = "n_plus_one", 20_000


def source_case() -> Path:
    """A loaded synth incident (``n_plus_one``, 20k traces, ~766k spans), cached under bench/data."""
    import forensics
    import forensics.synth as synth

    case_path = DATA / f"case-{SOURCE_SCENARIO}-{SOURCE_TRACES}.duckdb"
    if case_path.exists():
        return case_path
    out = DATA / f"{SOURCE_SCENARIO}-{SOURCE_TRACES}"
    if out.exists():
        shutil.rmtree(out)
    synth.generate(SOURCE_SCENARIO, str(out), traces=SOURCE_TRACES, seed=7, format="otlp")
    partial = case_path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with forensics.open_case(partial) as case:
        forensics.load(case, str(out), progress=False)
    partial.rename(case_path)
    shutil.rmtree(out)
    return case_path


def build_big_case(case_path: Path, spans: int, *, source: Path | None = None,
                   memory_limit: str | None = "4GB", threads: int | None = None) -> dict:
    """A case of about ``spans`` spans: ``source``'s spans copied with trace ids rewritten
    (``md5(trace_id || copy)``), plus its events, logs and metrics once. Returns timings."""
    import forensics
    from forensics._db import scalar

    source = source or source_case()
    if case_path.exists():
        raise FileExistsError(case_path)
    t0, cpu0 = time.perf_counter(), _cpu_s()
    with forensics.open_case(case_path, memory_limit=memory_limit, threads=threads) as case:
        case.execute("SET preserve_insertion_order = false")
        case.execute("ATTACH ? AS src (READ_ONLY)", [str(source)])
        per_copy = scalar(case.con, "SELECT count(*) FROM src.spans")
        copies = max(1, round(spans / per_copy))
        for start in range(0, copies, 16):  # bounded transactions
            case.execute("INSERT INTO spans SELECT s.* REPLACE (md5(s.trace_id || r::VARCHAR) AS trace_id) "
                         "FROM src.spans s, range(?, ?) t(r)", [start, min(copies, start + 16)])
        for table in ("events", "logs", "metrics", "files"):
            case.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
        case.execute("DETACH src")
        case.execute("CHECKPOINT")
        n = scalar(case.con, "SELECT count(*) FROM spans")
    return {"spans": n, "copies": copies, "source": str(source), "seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(_cpu_s() - cpu0, 1), "case_bytes": case_path.stat().st_size}


def case_run(case_path: Path, *, memory_limit: str, threads: int | None, names: list[str] | None = None,
             out: dict | None = None, saved: Callable[[], None] | None = None) -> dict:
    """Every detector alone, then all together (or just ``names``; ``"all"`` is ``forensics.detect``),
    each in a fresh process under ``memory_limit``; ``out`` is filled in place and ``saved()`` is
    called after each detector (a long run that is stopped keeps what it measured)."""
    from forensics.detectors import detectors

    out = {} if out is None else out
    out.update({"memory_limit": memory_limit, "threads": threads, "detectors": {}})
    for name in names or [*sorted(detectors()), "all"]:
        out["detectors"][name] = m = measure_detect(case_path, name, memory_limit=memory_limit, threads=threads)
        print(f"  detect {name:<20} {_brief(m)}", file=sys.stderr)
        if saved is not None:
            saved()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        return _child_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50e6,200e6,800e6,5e9", help="OTLP file sizes in bytes, comma-separated")
    ap.add_argument("--load-memory-limit", default=None, help="forensics.load memory_limit option (default: the loader's own)")
    ap.add_argument("--case-spans", type=float, default=100e6)
    ap.add_argument("--memory-limit", default="4GB", help="DuckDB memory_limit for the detectors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="where big files and cases go (default: a temp dir)")
    ap.add_argument("--case", default=None, help="use this existing case instead of building one")
    ap.add_argument("--detectors", default=None, help="comma-separated detectors to run over the case (default: "
                    "each one, then all together as 'all')")
    ap.add_argument("--no-ingest", action="store_true")
    ap.add_argument("--no-case", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the built case (and the temp workdir)")
    args = ap.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="forensics-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(workdir).free / 1e9
    print(f"workdir {workdir} ({free_gb:.0f} GB free)", file=sys.stderr)
    from bench.__main__ import machine

    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "workdir_free_gb": round(free_gb), "argv": argv}
    out = RESULTS / f"scale-{results['started'].replace(':', '')}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every stage: a long run that dies still leaves its numbers
        out.write_text(json.dumps(results, indent=2))

    built: Path | None = None
    try:
        if not args.no_ingest:
            sizes = [int(float(s)) for s in args.sizes.split(",")]
            results["ingest"] = ingest_curve(sizes, workdir, load_memory_limit=args.load_memory_limit)
            print(f"  peak RSS slope: {results['ingest']['rss_mb_per_gb_of_file']} MB per GB of file", file=sys.stderr)
            save()
        if not args.no_case:
            case_path = Path(args.case) if args.case else workdir / f"case-{int(args.case_spans)}.duckdb"
            need = args.case_spans * 120  # ~65 bytes per span in the case file, plus DuckDB's spill files
            if not args.case and shutil.disk_usage(workdir).free < need:
                results["case"] = {"skipped": f"needs ~{need / 1e9:.0f} GB free under {workdir}"}
                print(f"  skip the case: {results['case']['skipped']}", file=sys.stderr)
            elif not args.case:
                built = case_path
                results["case_build"] = build_big_case(case_path, int(args.case_spans), memory_limit=args.memory_limit,
                                                       threads=args.threads)
                print(f"  built {case_path}: {results['case_build']}", file=sys.stderr)
                save()
            if "case" not in results:
                results["case"] = {}
                case_run(case_path, memory_limit=args.memory_limit, threads=args.threads,
                         names=args.detectors.split(",") if args.detectors else None, out=results["case"], saved=save)
    finally:
        save()
        if not args.keep:
            if built is not None:
                for p in (built, built.with_name(built.name + ".wal")):
                    p.unlink(missing_ok=True)
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)
    print(f"results: {out}", file=sys.stderr)
    return 0


def _child_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale child")
    ap.add_argument("task", choices=("load", "detect"))
    ap.add_argument("args", nargs=2)
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-bytes", type=int, default=None)
    ap.add_argument("--load-memory-limit", default=None)
    a = ap.parse_args(argv)
    if a.task == "load":
        out = child_load(*a.args, a.memory_limit, a.threads, a.batch_bytes, a.load_memory_limit)
    else:
        out = child_detect(*a.args, a.memory_limit, a.threads)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
