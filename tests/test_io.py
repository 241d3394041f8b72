"""Byte-level input: decompression, line splitting with exact line numbers, bad UTF-8, truncation."""
from __future__ import annotations

import gzip

import pytest
import zstandard

from forensics.loaders.core import io as fio


def _lines(path, **kw):
    out, bad = [], []
    for batch in fio.iter_line_batches(str(path), **kw):
        out += batch.table.to_pylist()
        bad += batch.bad_utf8
    return out, bad


def test_lines_keep_file_line_numbers_across_blank_lines_crlf_and_small_batches(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"a":1}\r\n\n  \n{"a":2}\n' + b'{"long":"' + b"x" * 100 + b'"}\n{"a":3}')
    for batch_bytes in (7, 64, 1 << 20):
        rows, bad = _lines(p, batch_bytes=batch_bytes)
        assert [r["line"] for r in rows] == [1, 4, 5, 6]
        assert rows[0]["raw"] == '{"a":1}'
        assert rows[-1]["raw"] == '{"a":3}'
        assert bad == []


def test_invalid_utf8_lines_are_reported_not_dropped(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(b"ok 1\n\xff\xfe bad\nok 3\n")
    rows, bad = _lines(p)
    assert [r["line"] for r in rows] == [1, 3]
    assert bad == [(2, b"\xff\xfe bad")]


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_files_read_transparently(tmp_path, compress):
    data = b"".join(b'{"n":%d}\n' % i for i in range(1000))
    p = tmp_path / "x.jsonl.bin"  # detection is by magic bytes, not by name
    p.write_bytes(gzip.compress(data) if compress == "gzip" else zstandard.ZstdCompressor().compress(data))
    assert fio.compression_of(str(p)) == compress
    rows, _ = _lines(p, batch_bytes=1000)
    assert len(rows) == 1000 and rows[999] == {"line": 1000, "raw": '{"n":999}'}


def test_truncated_gzip_yields_what_was_read_then_raises(tmp_path):
    data = b"".join(b'{"n":%d}\n' % i for i in range(20000))
    p = tmp_path / "x.jsonl.gz"
    blob = gzip.compress(data)
    p.write_bytes(blob[: len(blob) // 2])
    got = []
    with pytest.raises(fio.StreamTruncated):
        for batch in fio.iter_line_batches(str(p), batch_bytes=4096):
            got += batch.table.column("line").to_pylist()
    assert got and got == list(range(1, len(got) + 1))


def test_overlong_lines_are_cut_out_and_reading_goes_on(tmp_path):
    """Issue #19.5: a line over the limit, whether it spans reads (carry) or sits inside one
    block, is left out with its number, length and first bytes; the lines after it keep their
    numbers and are read; memory stays that of a read."""
    p = tmp_path / "x.jsonl"
    p.write_bytes(b"a\n" + b"y" * 5000 + b"\nb\n" + b"z" * 2500 + b"\nc\n" + b"w" * 3000)
    blocks = list(fio.iter_blocks(str(p), batch_bytes=1000, max_line_bytes=2000))
    assert [t[:2] for b in blocks for t in b.too_long] == [(2, 5000), (4, 2500), (6, 3000)]
    assert all(t[2] == t[2][:1] * len(t[2]) and len(t[2]) == 1000 for b in blocks for t in b.too_long)
    lines = [r for b in blocks for r in fio.split_lines(b.data, b.first_line).table.to_pylist()]
    assert lines == [{"line": 1, "raw": "a"}, {"line": 3, "raw": "b"}, {"line": 5, "raw": "c"}]
    inside = list(fio.iter_blocks(str(p), batch_bytes=1 << 20, max_line_bytes=2000))  # one block holds them all
    assert [t[:2] for b in inside for t in b.too_long] == [(2, 5000), (4, 2500), (6, 3000)]


def test_sha256_and_size(tmp_path):
    p = tmp_path / "a"
    p.write_bytes(b"abc")
    sha, size = fio.sha256_and_size(str(p))
    assert size == 3 and sha == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_head_of_a_gzip_cut_early_still_has_the_bytes_before_the_cut(tmp_path):
    data = b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * 50) for i in range(3000))
    blob = gzip.compress(data)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(blob[: len(blob) // 3])
    head = fio.read_head(str(p), 65536)
    assert len(head) > 4096 and data.startswith(head)


def test_read_in_background_gives_the_items_in_order_then_their_error_in_the_callers_thread():
    import threading

    produced_on = []

    def items():
        for i in range(5):
            produced_on.append(threading.current_thread().name)
            yield i
        raise fio.StreamTruncated(123, EOFError("cut"))

    got = []
    with pytest.raises(fio.StreamTruncated) as err:
        for item in fio.read_in_background(items(), "test-reader"):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
    assert err.value.offset == 123
    assert set(produced_on) == {"test-reader"}  # read on its own thread, raised in ours


def test_closing_read_in_background_early_stops_its_thread_and_closes_the_source():
    import threading

    closed = []

    def items():
        try:
            for i in range(1000):
                yield i
        finally:
            closed.append(True)

    reader = fio.read_in_background(items(), "test-early-close", ahead=2)
    assert [next(reader), next(reader)] == [0, 1]
    reader.close()
    assert closed == [True]
    assert "test-early-close" not in {t.name for t in threading.enumerate()}


def test_blocks_read_in_background_keep_their_lines_and_a_truncated_stream_is_a_reject(tmp_path):
    import forensics
    from forensics.loaders.core.context import LoadContext

    data = b"".join(b'{"n":%d}\n' % i for i in range(20000))
    p = tmp_path / "x.jsonl.gz"
    blob = gzip.compress(data)
    p.write_bytes(blob[: len(blob) // 2])
    case = forensics.open_case()
    ctx = LoadContext(str(p), "json_logs", case.con)
    lines = [ln for block in ctx.blocks(4096) for ln in ctx.lines_of(block).column("line").to_pylist()]
    assert lines and lines == list(range(1, len(lines) + 1))
    assert ctx.rejected == 1
    assert case.sql("SELECT reason_code FROM rejects").fetchall() == [("truncated",)]


def test_read_in_background_reads_one_item_ahead_of_the_caller_not_more():
    import time

    read = []

    def items():
        for i in range(10):
            read.append(i)
            yield i

    reader = fio.read_in_background(items(), "test-ahead", ahead=1)
    assert next(reader) == 0
    deadline = time.monotonic() + 5
    while len(read) < 2 and time.monotonic() < deadline:  # item 1 is read while we hold item 0
        time.sleep(0.01)
    time.sleep(0.2)
    assert read == [0, 1]  # and not item 2: memory holds the caller's item plus one
    assert next(reader) == 1
    reader.close()
    assert read[-1] <= 2
