"""Times as exports and logs write them, read in DuckDB SQL: the shapes beyond ISO 8601 and epoch
numbers, years that a format leaves out, and the years a time may plausibly have.

Every function returns a SQL expression; values (formats, years) travel as bind parameters
collected by a ``bind`` callable (``bind(value) -> "$pN"``, see
:class:`forensics.loaders.logs.common.Binder`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import duckdb

from forensics.errors import UsageError

Bind = Callable[[Any], str]

#: strptime formats (DuckDB's codes, which are Python's) of times that carry their date, tried in
#: order when a text is neither ISO 8601 nor an epoch number; each with an example of its source
DATED_FORMATS: dict[str, str] = {
    "%y%m%d %H%M%S": "HDFS: 081109 203615",
    "%y/%m/%d %H:%M:%S": "Spark, log4j %d{yy/MM/dd HH:mm:ss}: 17/06/09 20:10:40",
    "%a %b %d %H:%M:%S %Y": "Apache error log, C ctime(): Sun Dec 04 04:47:44 2005",
    "%a %b %d %H:%M:%S.%f %Y": "Apache 2.4 error log: Sun Dec 04 04:47:44.123456 2005",
    "%Y-%m-%d-%H.%M.%S.%f": "Blue Gene/L RAS: 2005-06-03-15.42.50.675872",
    "%Y/%m/%d %H:%M:%S": "nginx error log: 2017/06/09 20:10:40",
    "%d/%b/%Y:%H:%M:%S": "Common Log Format without its offset: 10/Oct/2000:13:55:36",
    "%d-%b-%Y %H:%M:%S.%f": "Tomcat catalina.out: 09-Jun-2017 20:10:40.123",
    "%d-%b-%Y %H:%M:%S": "09-Jun-2017 20:10:40",
}
#: formats with an offset (``%z``): the time is absolute, ``tz=`` does not apply
ZONED_FORMATS: dict[str, str] = {
    "%d/%b/%Y:%H:%M:%S %z": "Common Log Format (Apache/nginx access logs): 10/Oct/2000:13:55:36 -0700",
}
#: formats without a year: the year comes from :class:`YearAnchor`
YEARLESS_FORMATS: dict[str, str] = {
    "%b %d %H:%M:%S": "BSD syslog (RFC 3164), OpenSSH: Dec 10 06:55:46",
    "%b %d %H:%M:%S.%f": "rsyslog high-precision without year: Dec 10 06:55:46.123456",
}
#: years a log or span time may have; a time outside is a reject (a two-digit year read as four
#: digits gives year 17; an epoch in the wrong unit gives 1970 or year 50000)
PLAUSIBLE_YEARS = (1980, 2100)

_YEAR_CODES = re.compile(r"%[YyGCs]")


@dataclass(frozen=True)
class YearAnchor:
    """Where the year of a year-less time comes from: a time is in ``day.year``, or in the year
    before when its month and day come after ``day``'s (a file that crosses New Year)."""

    day: date
    source: str  # said in the load warning, e.g. "the file's modification time"

    @property
    def mmdd(self) -> str:
        return self.day.strftime("%m%d")


def year_anchor(path: str, year: Any = None, neighbours: datetime | None = None) -> YearAnchor:
    """The :class:`YearAnchor` of a file: the ``year=`` option, else the latest time of the
    case's other signals (the logs of an incident sit beside its traces and metrics: each time
    takes the year that puts it nearest, i.e. at most half a year after that time), else the
    file's modification time (a log is written before its file's last change).

    ``year=Y`` puts every year-less time in ``Y``. ``neighbours`` is the latest time already in
    the case (None when the case has no other data).
    """
    if year is not None:
        try:
            value = int(year)
        except (TypeError, ValueError):
            raise UsageError(f"year={year!r} is not a year; pass e.g. year=2005") from None
        if not PLAUSIBLE_YEARS[0] <= value < PLAUSIBLE_YEARS[1]:
            raise UsageError(f"year={value} is outside {PLAUSIBLE_YEARS[0]}..{PLAUSIBLE_YEARS[1] - 1}")
        return YearAnchor(date(value, 12, 31), f"the year={value} option")
    if neighbours is not None:  # the year that puts a time nearest the other data: up to half a year after it
        return YearAnchor((neighbours.astimezone(timezone.utc) + timedelta(days=182)).date(),
                          f"the case's other data (latest time {neighbours:%Y-%m-%d})")
    mtime = datetime.fromtimestamp(os.path.getmtime(path), tz=timezone.utc)
    return YearAnchor(mtime.date(), f"the file's modification time ({mtime:%Y-%m-%d})")


def latest_case_time(con: duckdb.DuckDBPyConnection, exclude_file: str) -> datetime | None:
    """The latest time of the case's spans, metrics, events and other files' logs (None if none)."""
    from forensics._db import one

    row = one(con, """SELECT greatest((SELECT max(end_time) FROM spans), (SELECT max(time) FROM metrics),
                                      (SELECT max(time) FROM events),
                                      (SELECT max(time) FROM logs WHERE source_file <> ?))""", [exclude_file])
    return row[0] if row else None


def has_year(time_format: str) -> bool:
    """Whether a strptime format names the year."""
    return _YEAR_CODES.search(time_format) is not None


def is_zoned(time_format: str) -> bool:
    """Whether a strptime format reads an offset or zone (the time is then absolute)."""
    return "%z" in time_format or "%Z" in time_format


def check_time_format(con: duckdb.DuckDBPyConnection, time_format: Any) -> str:
    """Validate the ``time_format=`` option (a strptime format) with DuckDB; returns it."""
    if not isinstance(time_format, str) or "%" not in time_format:
        raise UsageError(f"time_format={time_format!r} is not a strptime format; pass e.g. "
                         "time_format='%d.%m.%Y %H:%M:%S' (codes as Python's datetime.strptime)")
    try:
        con.execute("SELECT try_strptime('', ?)", [time_format]).fetchall()
    except duckdb.Error as exc:
        raise UsageError(f"time_format={time_format!r} is not a format DuckDB's strptime reads: "
                         f"{str(exc).splitlines()[0]}") from None
    return time_format


def normalized_sql(text: str) -> str:
    """The text trimmed, runs of blanks made one space (syslog pads days: ``Dec  4``)."""
    return f"regexp_replace(trim({text}), '\\s+', ' ', 'g')"


def dated_sql(text: str, bind: Bind) -> str:
    """TIMESTAMP (naive) of a text in one of :data:`DATED_FORMATS` (NULL otherwise)."""
    return f"try_strptime({normalized_sql(text)}, {bind(list(DATED_FORMATS))}::VARCHAR[])"


def zoned_sql(text: str, bind: Bind) -> str:
    """TIMESTAMPTZ of a text in one of :data:`ZONED_FORMATS` (NULL otherwise)."""
    return f"try_strptime({normalized_sql(text)}, {bind(list(ZONED_FORMATS))}::VARCHAR[])"


def yearless_sql(text: str, formats: list[str], anchor: YearAnchor, bind: Bind) -> str:
    """TIMESTAMP (naive) of a year-less text: in the anchor's year, or the year before when its
    month and day come after the anchor's. February 29th in a year without one is NULL."""
    norm = normalized_sql(text)
    with_year = bind(["%Y " + f for f in formats])
    probe = f"try_strptime('2000 ' || {norm}, {with_year}::VARCHAR[])"  # 2000: a leap year
    year = f"(CASE WHEN strftime({probe}, '%m%d') > {bind(anchor.mmdd)} THEN {bind(anchor.day.year - 1)} ELSE {bind(anchor.day.year)} END)"
    return f"try_strptime(CAST({year} AS VARCHAR) || ' ' || {norm}, {with_year}::VARCHAR[])"


def plausible_sql(time: str) -> str:
    """Whether a TIMESTAMP(TZ) lies in :data:`PLAUSIBLE_YEARS` (NULL for NULL)."""
    return f"(year({time}) >= {PLAUSIBLE_YEARS[0]} AND year({time}) < {PLAUSIBLE_YEARS[1]})"
