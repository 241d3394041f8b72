"""Export a case as a Parquet lake, hive-partitioned by service and hour.

Layout: ``DIR/<table>/service=<name>/hour=<YYYY-MM-DDTHH>/data_*.parquet`` for spans, logs and
metrics (metrics without a service go to ``service=_unknown``), ``DIR/events/hour=.../`` and single
files ``DIR/rejects.parquet`` and ``DIR/files.parquet``. Partition values are sanitized
(characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``) so a hostile service
name cannot escape ``DIR``; the original value stays in the ``service`` column.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ._spelling import option
from .errors import UsageError

if TYPE_CHECKING:
    from .case import Case

_PARTITIONED = {"spans": "start_time", "logs": "time", "metrics": "time"}
_SANITIZE = "regexp_replace(coalesce(service, '_unknown'), '[^A-Za-z0-9._-]', '_', 'g')"


def _sql_string(path: Path) -> str:
    text = str(path)
    if "'" in text:
        raise UsageError(f"export directory must not contain a quote character: {text!r}")
    return f"'{text}'"


def export(case: "Case", out_dir: str | os.PathLike, *, overwrite: bool = False) -> dict[str, int]:
    """Write the case's tables to ``out_dir`` as Parquet; returns rows written per table."""
    out = Path(out_dir).resolve()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out} is not empty; pass {option('overwrite')} to replace its contents")
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    counts = case.tables()
    for table, time_col in _PARTITIONED.items():
        written[table] = counts.get(table, 0)
        if not written[table]:
            continue
        case.execute(
            f"COPY (SELECT *, {_SANITIZE} AS service_part, strftime({time_col}, '%Y-%m-%dT%H') AS hour FROM {table}) "
            f"TO {_sql_string(out / table)} (FORMAT parquet, PARTITION_BY (service_part, hour), OVERWRITE_OR_IGNORE true)")
    written["events"] = counts.get("events", 0)
    if written["events"]:
        case.execute(f"COPY (SELECT *, strftime(time, '%Y-%m-%dT%H') AS hour FROM events) "
                     f"TO {_sql_string(out / 'events')} (FORMAT parquet, PARTITION_BY (hour), OVERWRITE_OR_IGNORE true)")
    for table in ("rejects", "files"):
        written[table] = counts.get(table, 0)
        case.execute(f"COPY {table} TO {_sql_string(out / (table + '.parquet'))} (FORMAT parquet)")
    # rename service_part=... directories to service=... (hive key the readers expect)
    for table in _PARTITIONED:
        base = out / table
        if base.exists():
            for d in base.iterdir():
                if d.name.startswith("service_part="):
                    d.rename(base / ("service=" + d.name.split("=", 1)[1]))
    return written


def read_lake(case: "Case", lake_dir: str | os.PathLike) -> "Case":
    """Create views over an exported lake in ``case`` (spans, logs, metrics, events, rejects, files)."""
    lake = Path(lake_dir).resolve()
    for table in ("spans", "logs", "metrics", "events"):
        if (lake / table).exists():
            case.execute(f"CREATE OR REPLACE VIEW lake_{table} AS SELECT * FROM read_parquet("
                         f"{_sql_string(lake / table / '**' / '*.parquet')}, hive_partitioning = true)")
    return case


from ._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, export)
