"""``forensics.verify``: check a case's chain of custody against its rows and its source files.

For every path in ``files``: the source file, if it still exists, is hashed again and must have
the recorded sha256 and size; the counts recorded when it was loaded must add up (read = loaded +
rejected, loaded = the sum over tables) and match the rows the case holds for it now, table by
table, rejects included. Rows whose ``source_file`` has no ``files`` entry are reported too. The
counts are computed with one ``GROUP BY`` per table, whatever the number of files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from . import _progress, schema
from ._db import run

if TYPE_CHECKING:
    from .case import Case


@dataclass
class FileCheck:
    """The verdict on one path of ``files``.

    ``status``: ``ok``; ``missing`` (the source file is gone: counts checked, not its bytes);
    ``changed`` (its bytes differ from what was loaded); ``counts`` (rows do not match the record);
    ``orphan`` (rows whose source file has no ``files`` entry).
    """

    path: str
    status: str
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("changed", "counts", "orphan")


@dataclass
class Verification:
    """What :func:`verify` found; ``str()`` is the CLI's table, :attr:`ok` the verdict."""

    case_path: str | None
    files: list[FileCheck]

    @property
    def failures(self) -> list[FileCheck]:
        return [f for f in self.files if f.failed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        from ._text import printable

        lines = []
        for f in self.files:
            lines.append(f"{f.status:<8} {printable(f.path)}")
            lines += [f"         {printable(p)}" for p in f.problems]
        counts = {s: sum(f.status == s for f in self.files) for s in ("ok", "missing", "changed", "counts", "orphan")}
        lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no files in the case")
        return "\n".join(lines)


def _recorded(case: "Case") -> dict[str, dict]:
    """Per path: size, sha256 and the counts ``files`` holds (summed over repeated loads of a path)."""
    columns = {r[0] for r in run(case.con, "SELECT column_name FROM information_schema.columns WHERE table_name = 'files'")}
    merged = "sum(rows_merged)" if "rows_merged" in columns else "0"  # a case from before merged records
    rows = run(case.con, "SELECT path, any_value(size_bytes ORDER BY loaded_at DESC), any_value(sha256 ORDER BY loaded_at DESC), "
                         f"sum(records_read), sum(rows_loaded), sum(rows_rejected), list(loaded_rows_by_table), {merged} "
                         "FROM files GROUP BY path ORDER BY path")
    out = {}
    for path, size, sha, read, loaded, rejected, by_table_json, merged_n in rows:
        by_table: dict[str, int] = {}
        for text in by_table_json:
            for table, n in (orjson.loads(text) if text else {}).items():
                by_table[table] = by_table.get(table, 0) + int(n)
        out[path] = {"size": size, "sha256": sha, "read": int(read or 0), "loaded": int(loaded or 0),
                     "rejected": int(rejected or 0), "merged": int(merged_n or 0), "by_table": by_table}
    return out


def _held(case: "Case") -> dict[str, dict[str, int]]:
    """Per source file: the rows each canonical table (and ``rejects``) holds now."""
    held: dict[str, dict[str, int]] = {}
    for table in (*schema.CANONICAL, "rejects"):
        for path, n in run(case.con, f'SELECT source_file, count(*) FROM "{table}" GROUP BY source_file'):
            held.setdefault(path, {})[table] = int(n)
    return held


def verify(case: "Case", *, rehash: bool = True, progress: bool | None = None) -> Verification:
    """Check every file's recorded counts against the case, and re-hash the source files still present.

    Parameters
    ----------
    rehash:
        Hash the source files that still exist (False: counts only, no file is read).
    progress:
        A bar per file hashed on stderr; None: only when stderr is a terminal.

    Returns
    -------
    Verification
        ``.ok`` is true when nothing failed; a source file that no longer exists is not a failure.
    """
    from .loaders.core.io import sha256_and_size

    recorded, held = _recorded(case), _held(case)
    checks = []
    for path in _progress.steps(list(recorded), desc="verify", unit="file", progress=progress, label=os.path.basename):
        rec, now = recorded[path], held.get(path, {})
        problems = []
        if rec["read"] != rec["loaded"] + rec["merged"] + rec["rejected"]:
            problems.append(f"files says read {rec['read']} but loaded {rec['loaded']} + merged {rec['merged']} + "
                            f"rejected {rec['rejected']}")
        if sum(rec["by_table"].values()) != rec["loaded"]:
            problems.append(f"files says loaded {rec['loaded']} but {sum(rec['by_table'].values())} by table")
        for table in schema.CANONICAL:
            want, have = rec["by_table"].get(table, 0), now.get(table, 0)
            if want != have:
                problems.append(f"{table}: {have} rows in the case, {want} recorded as loaded")
        if now.get("rejects", 0) != rec["rejected"]:
            problems.append(f"rejects: {now.get('rejects', 0)} rows in the case, {rec['rejected']} recorded")
        status = "counts" if problems else "ok"
        if not os.path.isfile(path):
            status = "missing" if not problems else status
        elif rehash:
            sha, size = sha256_and_size(path)
            if sha != rec["sha256"] or size != rec["size"]:
                problems.insert(0, f"source file changed since it was loaded: sha256 {sha[:16]}... size {size} "
                                   f"(recorded {str(rec['sha256'])[:16]}... size {rec['size']})")
                status = "changed"
        checks.append(FileCheck(path, status, problems))
    for path in sorted(set(held) - set(recorded), key=str):
        rows = ", ".join(f"{n} {t}" for t, n in held[path].items())
        where = "(rows without a source_file)" if path is None else str(path)
        checks.append(FileCheck(where, "orphan", [f"{rows} with no entry in files"]))
    return Verification(case.path, checks)
