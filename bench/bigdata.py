"""Big, realistic trace exports, fast: copies of a synth template with new ids and times.

    python -m bench.bigdata OUT.jsonl[.gz|.zst] (--bytes 5e9 | --spans 6e6) [--template FILE]
    python -m bench.bigdata OUTDIR --layout jaeger|zipkin --spans 1e7 --template SYNTH_DIR/jaeger

OTLP/JSON lines go to one file (cut at a line); Jaeger and Zipkin JSON, whose files are whole
documents, go to a directory: copy ``k`` of every template file is a file of its own
(:func:`write_dir`, cut at a file).

A *template* is a real collector ``file``-exporter export written by :mod:`forensics.synth` (one
``ExportTraceServiceRequest`` per line, realistic resources, attributes, errors and span events).
The template's bytes are parsed once, vectorized: the offsets of every trace id (32 hex), span /
parent span id (16 hex) and ``*UnixNano`` time (19 digits). Copy ``k`` of the template is the
same bytes with, stamped in place by numpy fancy indexing (no Python loop per span):

* trace ids: the low 64 bits XOR a per-copy mask (``splitmix64(k)``): distinct across copies,
  still random-looking hex;
* span and parent span ids: XOR another per-copy mask, so parent links stay consistent;
* times (``*UnixNano`` ns strings in OTLP, ``startTime``/``timestamp`` microsecond numbers in
  Jaeger and Zipkin): shifted by ``k`` template windows (the copies follow one another in time,
  as a long export would).

Memory is bounded by the template (a few times its size), whatever the output size; output is
streamed, optionally gzip (level 1) or zstd (multithreaded) compressed.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)
_HEX_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)  # 16 nibbles, most significant first
_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)  # 19 decimal digits, most significant first
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
TIME_DIGITS = 19  # nanoseconds since the epoch between 2001 and 2286 (16 for microseconds)
CHUNK = 1 << 16  # fields stamped per numpy operation


@dataclass(frozen=True)
class Layout:
    """Where a trace export format keeps what a copy rewrites."""

    trace_keys: tuple[bytes, ...]  # keys of 32-hex trace ids
    span_keys: tuple[bytes, ...]  # keys of 16-hex span ids (own and parent / referenced)
    time_keys: tuple[bytes, ...]  # what precedes the digits of an epoch time
    time_digits: int  # 19: nanoseconds, 16: microseconds
    span_marker: bytes  # occurs once per span
    second: int  # one second in the time unit


LAYOUTS = {
    "otlp": Layout((b"traceId",), (b"spanId", b"parentSpanId"), (b'UnixNano":"',), 19, b'"spanId":"', 10**9),
    "jaeger": Layout((b"traceID",), (b"spanID",), (b'"startTime":', b'"timestamp":'), 16, b'"operationName":',
                     10**6),
    "zipkin": Layout((b"traceId",), (b"id", b"parentId"), (b'"timestamp":',), 16, b'"traceId":"', 10**6),
}


def find_all(data: np.ndarray, pattern: bytes, window: int = 1 << 24) -> np.ndarray:
    """Start offsets of every occurrence of ``pattern`` in ``data`` (uint8 array), vectorized:
    candidates at the first byte, narrowed one pattern byte at a time (``window`` bytes at a
    time, so the candidates stay small)."""
    pat = np.frombuffer(pattern, dtype=np.uint8)
    last = len(data) - len(pat) + 1
    found = []
    for lo in range(0, max(last, 0), window):
        cand = np.flatnonzero(data[lo: min(lo + window, last)] == pat[0]) + lo
        for j in range(1, len(pat)):
            cand = cand[data[cand + j] == pat[j]]
        found.append(cand)
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def _fields(data: np.ndarray, key: bytes, width: int, alphabet: np.ndarray) -> np.ndarray:
    """Offsets of the values of ``"key":"<width chars of alphabet>"`` (other widths, e.g. an
    empty ``parentSpanId``, are left alone)."""
    starts = find_all(data, b'"' + key + b'":"') + len(key) + 4
    starts = starts[starts + width < len(data)]
    starts = starts[data[starts + width] == ord('"')]
    ok = np.ones(len(starts), dtype=bool)
    for i in range(0, len(starts), CHUNK):
        ok[i:i + CHUNK] = np.isin(data[starts[i:i + CHUNK, None] + np.arange(width)], alphabet).all(axis=1)
    return starts[ok]


def parse_hex64(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The 16 hex digits at each of ``starts`` as uint64."""
    out = np.zeros(len(starts), np.uint64)
    for i in range(0, len(starts), CHUNK):
        nib = _NIBBLE[data[starts[i:i + CHUNK, None] + np.arange(16)]].astype(np.uint64)
        out[i:i + CHUNK] = np.bitwise_or.reduce(nib << _HEX_SHIFTS, axis=1)
    return out


def hex64(values: np.ndarray) -> np.ndarray:
    """(n, 16) lowercase hex digits (uint8) of uint64 ``values``."""
    return HEX[((values[:, None] >> _HEX_SHIFTS) & np.uint64(15)).astype(np.intp)]


def parse_dec(data: np.ndarray, starts: np.ndarray, width: int = TIME_DIGITS) -> np.ndarray:
    """The ``width`` (<= 19) decimal digits at each of ``starts`` as int64."""
    out = np.zeros(len(starts), np.int64)
    for i in range(0, len(starts), CHUNK):
        digits = data[starts[i:i + CHUNK, None] + np.arange(width)].astype(np.int64) - 48
        out[i:i + CHUNK] = (digits * _POW10[TIME_DIGITS - width:]).sum(axis=1)
    return out


def dec(values: np.ndarray, width: int = TIME_DIGITS) -> np.ndarray:
    """(n, width) decimal digits (uint8) of int64 ``values`` (10**(width-1) <= value < 10**width,
    and < 2**63)."""
    return ((values[:, None] // _POW10[TIME_DIGITS - width:]) % 10 + 48).astype(np.uint8)


def splitmix64(k: int) -> np.uint64:
    """A well-mixed 64-bit mask for copy ``k`` (a bijection of k, so masks never repeat)."""
    with np.errstate(over="ignore"):
        z = np.uint64(k) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _time_offsets(data: np.ndarray, lay: Layout) -> np.ndarray:
    """Offsets of the digits of every epoch time of ``lay`` in ``data`` (exactly ``time_digits``
    digits, not followed by another)."""
    width = lay.time_digits
    time_at = np.sort(np.concatenate([find_all(data, key) + len(key) for key in lay.time_keys]))
    time_at = time_at[time_at + width < len(data)]
    time_at = time_at[(data[time_at + width] < ord("0")) | (data[time_at + width] > ord("9"))]
    return time_at[np.isin(data[time_at[:, None] + np.arange(width)], _DIGITS).all(axis=1)]


@dataclass
class Template:
    """A parsed trace export: bytes plus the offsets of the fields a copy rewrites."""

    data: np.ndarray  # uint8; OTLP: whole lines ending with a newline
    trace_at: np.ndarray  # offsets of the low 16 hex digits of each trace id
    trace_lo: np.ndarray  # their values (uint64)
    span_at: np.ndarray  # offsets of span ids and parent span ids (16 hex)
    span_ids: np.ndarray
    time_at: np.ndarray  # offsets of the digits of every epoch time
    times: np.ndarray  # their values, in the layout's unit (ns for OTLP, us for Jaeger/Zipkin)
    window: int  # copy k is shifted by k * window (same unit)
    line_ends: np.ndarray  # offset after each newline
    spans_before: np.ndarray  # spans in lines [0, i) for i in 0..lines
    layout: Layout = LAYOUTS["otlp"]

    @property
    def spans(self) -> int:
        return int(self.spans_before[-1])

    @classmethod
    def from_file(cls, path: str | os.PathLike, layout: str = "otlp", window: int | None = None) -> "Template":
        """Parse ``path`` as a ``layout`` export (a :data:`LAYOUTS` key); ``window`` (in the
        layout's time unit) overrides the file's own time span + 1 s, so that the files of a
        directory can share one."""
        lay = LAYOUTS[layout]
        raw = Path(path).read_bytes()
        if layout == "otlp" and not raw.endswith(b"\n"):
            raw += b"\n"
        data = np.frombuffer(raw, dtype=np.uint8)
        hexdigits = np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)
        trace_at = np.sort(np.concatenate([_fields(data, key, 32, hexdigits) for key in lay.trace_keys])) + 16
        span_at = np.sort(np.concatenate([_fields(data, key, 16, hexdigits) for key in lay.span_keys]))
        width = lay.time_digits
        time_at = _time_offsets(data, lay)
        if not len(trace_at) or not len(time_at):
            raise ValueError(f"{path}: no {layout} spans with hex trace ids and {width}-digit times")
        times = parse_dec(data, time_at, width)
        line_ends = np.flatnonzero(data == 10) + 1
        if not len(line_ends) or line_ends[-1] != len(data):
            line_ends = np.append(line_ends, len(data))
        span_starts = find_all(data, lay.span_marker)
        per_line = np.bincount(np.searchsorted(line_ends, span_starts, side="right"), minlength=len(line_ends))
        spans_before = np.concatenate(([0], np.cumsum(per_line[: len(line_ends)])))
        if window is None:
            window = int(times.max() - times.min()) + lay.second
        return cls(data, trace_at, parse_hex64(data, trace_at), span_at, parse_hex64(data, span_at), time_at, times,
                   window, line_ends, spans_before, lay)

    def copy(self, k: int, out: np.ndarray | None = None) -> np.ndarray:
        """Copy ``k`` of the template bytes (into ``out`` when given: no allocation)."""
        if out is None:
            buf = self.data.copy()
        else:
            buf = out
            np.copyto(buf, self.data)
        trace_mask, span_mask = splitmix64(2 * k), splitmix64(2 * k + 1)
        for i in range(0, max(len(self.trace_at), len(self.span_at), len(self.time_at)), CHUNK):
            # chunks bound the (n, width) temporaries
            j = slice(i, i + CHUNK)
            buf[self.trace_at[j, None] + np.arange(16)] = hex64(self.trace_lo[j] ^ trace_mask)
            buf[self.span_at[j, None] + np.arange(16)] = hex64(self.span_ids[j] ^ span_mask)
            width = self.layout.time_digits
            buf[self.time_at[j, None] + np.arange(width)] = dec(self.times[j] + k * self.window, width)
        return buf


def _open_out(path: str, compress: str | None) -> BinaryIO:
    if compress == "gzip":
        return gzip.open(path, "wb", compresslevel=1)  # type: ignore[return-value]
    if compress == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=1, threads=-1).stream_writer(open(path, "wb"), closefd=True)  # type: ignore[return-value]
    return open(path, "wb")


def write(out: str | os.PathLike, template: Template | str | os.PathLike, *, size_bytes: int | None = None,
          spans: int | None = None, compress: str | None = None) -> dict:
    """Write copies of ``template`` to ``out`` until ``size_bytes`` (uncompressed) or ``spans`` is
    reached, cut at a line boundary (at least one line). Returns ``{"path", "bytes" (on disk),
    "uncompressed_bytes", "spans", "traces", "copies", "compress", "seconds"}``.

    ``compress``: None, ``"gzip"`` (level 1) or ``"zstd"`` (level 1, all cores); inferred from
    the ``.gz``/``.zst`` suffix when None.
    """
    if (size_bytes is None) == (spans is None):
        raise ValueError("give exactly one of size_bytes and spans")
    t0 = time.perf_counter()
    tpl = template if isinstance(template, Template) else Template.from_file(template)
    out = str(out)
    if compress is None:
        compress = {".gz": "gzip", ".zst": "zstd"}.get(Path(out).suffix)
    # per copy: cumulative bytes / spans at each line end, to cut the last copy at a line
    per_copy = int(tpl.line_ends[-1]) if size_bytes is not None else tpl.spans
    want = int(size_bytes if size_bytes is not None else spans)  # type: ignore[arg-type]
    full, rest = divmod(want, per_copy)
    marks = tpl.line_ends if size_bytes is not None else tpl.spans_before[1:]
    tail_lines = int(np.searchsorted(marks, rest, side="left")) + 1 if rest else 0
    if full == 0 and tail_lines == 0:
        tail_lines = 1
    buf = np.empty_like(tpl.data)
    written = n_spans = n_traces = 0
    traces_per_copy = len(np.unique(tpl.trace_lo))
    with _open_out(out, compress) as fh:
        for k in range(full + (1 if tail_lines else 0)):
            tpl.copy(k, out=buf)
            end = len(buf) if k < full else int(tpl.line_ends[tail_lines - 1])
            fh.write(memoryview(buf)[:end])
            written += end
            n_spans += tpl.spans if k < full else int(tpl.spans_before[tail_lines])
            n_traces += traces_per_copy if k < full else len(np.unique(tpl.trace_lo[tpl.trace_at < end]))
    return {"path": out, "bytes": os.path.getsize(out), "uncompressed_bytes": written, "spans": n_spans,
            "traces": n_traces, "copies": full + (1 if tail_lines else 0), "compress": compress,
            "seconds": time.perf_counter() - t0}


def write_dir(out: str | os.PathLike, templates: list[str] | list[Path], *, spans: int, layout: str) -> dict:
    """Copies of a directory export (``layout`` "jaeger" or "zipkin": one JSON document per file)
    into the directory ``out``: copy ``k`` of template file ``name`` is ``out/c{k:04d}-{name}``.
    Whole copies of the directory, then the first files of one more copy, until ``spans`` spans
    are reached (cut at a file, at least one). All files share one time window (the whole
    template's time span + 1 s) and, per copy, the id masks, so links between files stay
    consistent. Each template file is read twice (first only for its times and span count) and its
    ids parsed once; memory is bounded by one file. Returns ``{"path", "bytes", "spans", "files",
    "copies", "seconds"}``."""
    t0 = time.perf_counter()
    paths = sorted(str(p) for p in templates)
    if not paths:
        raise ValueError("no template files")
    lay = LAYOUTS[layout]
    lows, highs, counts = [], [], []
    for path in paths:  # pass 1: the shared window and the cut
        data = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
        times = parse_dec(data, _time_offsets(data, lay), lay.time_digits)
        if not len(times):
            raise ValueError(f"{path}: no {layout} spans with {lay.time_digits}-digit times")
        lows.append(int(times.min()))
        highs.append(int(times.max()))
        counts.append(len(find_all(data, lay.span_marker)))
    window = max(highs) - min(lows) + lay.second
    full, rest = divmod(int(spans), sum(counts))
    before = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # the partial copy takes file i while the spans before it fall short of ``rest``
    extra = (before < rest) if rest else np.zeros(len(paths), dtype=bool)
    if full == 0 and not extra.any():
        extra[0] = True
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = n_spans = files = 0
    for i, path in enumerate(paths):
        copies = full + int(extra[i])
        if not copies:
            continue
        tpl = Template.from_file(path, layout, window=window)
        buf = np.empty_like(tpl.data)
        for k in range(copies):
            tpl.copy(k, out=buf)
            (out_dir / f"c{k:04d}-{Path(path).name}").write_bytes(memoryview(buf))
        written += copies * len(tpl.data)
        n_spans += copies * tpl.spans
        files += copies
    return {"path": str(out_dir), "bytes": written, "spans": n_spans, "files": files,
            "copies": full + int(bool(extra.any())), "seconds": time.perf_counter() - t0}


def default_template(spans: int = 100_000) -> str:
    """The cached synth `clean` OTLP export of ~``spans`` spans under bench/data (generated once)."""
    from bench.__main__ import dataset

    pattern, _, _ = dataset("otlp", spans)
    return pattern


def main(argv: list[str] | None = None) -> int:
    import json

    ap = argparse.ArgumentParser(prog="python -m bench.bigdata", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--bytes", type=float, help="uncompressed size, e.g. 5e9")
    size.add_argument("--spans", type=float, help="number of spans, e.g. 6e6")
    ap.add_argument("--template", help="an OTLP/JSON lines export (default: synth clean, 100k spans, cached); "
                                       "with --layout jaeger|zipkin, a directory of JSON files")
    ap.add_argument("--compress", choices=("gzip", "zstd"), default=None)
    ap.add_argument("--layout", choices=sorted(LAYOUTS), default="otlp")
    args = ap.parse_args(argv)
    if args.layout != "otlp":
        if not (args.template and args.spans) or args.compress:
            ap.error("--layout jaeger|zipkin needs --template DIR and --spans (and writes uncompressed files)")
        info = write_dir(args.out, sorted(Path(args.template).glob("*.json")), spans=int(args.spans),
                         layout=args.layout)
        print(json.dumps(info))
        return 0
    info = write(args.out, args.template or default_template(), compress=args.compress,
                 size_bytes=int(args.bytes) if args.bytes else None, spans=int(args.spans) if args.spans else None)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
