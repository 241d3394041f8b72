"""Load progress by bytes (#17): the bar's total is the bytes on disk of the files a load reads,
and it moves *within* a large file as reading goes (compressed files by their compressed bytes),
each file counted once however often it is read (sniffing, read-ahead, replays). With progress
off nothing is wrapped."""
from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import forensics
from forensics import _progress
from forensics.loaders.core import io as fio


class _Recorder:
    """Stands in for the tqdm bar: what it was told, and how far the load had got each time."""

    def __init__(self, total: float | None) -> None:
        self.total, self.updates, self.postfixes = total, [], []
        self.threads: set[str] = set()

    def update(self, n: float = 1) -> None:
        self.updates.append(n)
        self.threads.add(threading.current_thread().name)

    def set_postfix_str(self, text: str) -> None:
        self.postfixes.append(text)

    def close(self) -> None:
        pass


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[_Recorder]:
    bars: list[_Recorder] = []

    def bar(*, desc: str, total: float | None = None, unit: str = "it", progress: bool | None = None) -> Any:
        assert desc == "load" and unit == "B"
        bars.append(_Recorder(total))
        return bars[-1]

    monkeypatch.setattr(_progress, "bar", bar)
    return bars


def _log_lines(n: int) -> bytes:
    return b"".join(json.dumps({"ts": 1771409553 + i, "level": "info", "service": "api",
                                "msg": f"request {i} served in {i % 97} ms"}).encode() + b"\n" for i in range(n))


def test_a_large_file_moves_the_bar_while_it_is_read(tmp_path: Path, recorded: list[_Recorder]) -> None:
    big = tmp_path / "big.jsonl"
    big.write_bytes(_log_lines(40_000))
    size = big.stat().st_size
    report = forensics.load(forensics.open_case(), big, progress=True, batch_bytes="256KiB", templates="no")
    assert report.files[0].rows_loaded == 40_000
    (shown,) = recorded
    assert shown.total == size
    assert sum(shown.updates) == size  # every byte once, none twice
    assert len(shown.updates) >= size // (256 << 10) // 2  # block by block, not at the end
    assert max(shown.updates) < size / 2
    assert shown.postfixes and "big.jsonl" in shown.postfixes[0] and "1/1" in shown.postfixes[0]


def test_compressed_files_count_their_bytes_on_disk_and_every_file_once(tmp_path: Path,
                                                                        recorded: list[_Recorder]) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(_log_lines(30_000)))
    (tmp_path / "b.jsonl").write_bytes(_log_lines(500))
    (tmp_path / "c.jsonl").write_bytes(b"not json at all\n" + _log_lines(10))  # a reject: still read
    (tmp_path / "LICENSE").write_text("MIT\n")  # ignored: not read, not in the total
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name != "LICENSE")
    forensics.load(forensics.open_case(), tmp_path, progress=True, batch_bytes="64KiB", templates="no")
    (shown,) = recorded
    assert shown.total == on_disk
    assert sum(shown.updates) == on_disk
    assert len(shown.updates) > 3
    assert [p.split()[0] for p in shown.postfixes] == ["1/4", "2/4", "3/4", "4/4"]
    assert fio._METERS == []  # the meter is gone after the load


def test_a_failed_load_leaves_no_meter_behind(tmp_path: Path, recorded: list[_Recorder]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(_log_lines(5) + b"{broken\n")
    with pytest.raises(forensics.errors.StrictModeError):
        forensics.load(forensics.open_case(), bad, progress=True, strict=True, format="json_logs", templates="no")
    assert fio._METERS == []


def test_without_progress_reads_are_not_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = fio._open_raw

    def spy(path: str):
        fh = real(path)
        seen.append(type(getattr(fh, "raw", fh)).__name__)
        return fh

    monkeypatch.setattr(fio, "_open_raw", spy)
    log = tmp_path / "a.jsonl"
    log.write_bytes(_log_lines(100))
    forensics.load(forensics.open_case(), log, progress=False, templates="no")
    assert seen and set(seen) == {"FileIO"}


def test_meter_counts_the_furthest_position_only() -> None:
    told: list[int] = []
    meter = fio.ByteMeter(told.append, ["x"])
    meter.seen("x", 10)
    meter.seen("x", 4)  # read again from the start (sniffing, a replay)
    meter.seen("x", 25)
    meter.seen("y", 99)  # not expected: not counted
    assert told == [10, 15]
