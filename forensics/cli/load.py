"""forensics load PATH... --case CASE.duckdb [--strict]"""
from __future__ import annotations

import os

import click

from .._text import printable
from ..case import open_case
from ..errors import LoadError
from ..loaders import LoadReport, load
from ..loaders.core.options import check_options


@click.command("load")
@click.argument("paths", nargs=-1, required=True)
@click.option("--case", "case_path", required=True, type=click.Path(dir_okay=False), help="case file to create or add to")
@click.option("--strict", is_flag=True, help="stop at the first bad record with an error naming file and line")
@click.option("--format-in", "format_in", default=None, help="force an input format (see `forensics formats`)")
@click.option("--force", is_flag=True, help="load files again even if the same sha256 was loaded before")
@click.option("--tz", default=None, help="time zone of log timestamps written without an offset, e.g. Asia/Shanghai")
@click.option("--option", "-O", "extra", multiple=True, metavar="KEY=VALUE",
              help="loader option, e.g. scrape_time=2026-02-18T10:00:00Z, dialect=openmetrics, query=rate(x[5m])")
@click.option("--pattern", default=None,
              help="regex with named groups (time, level, msg, ...) for plain-text logs; use with --format-in plain_logs")
@click.option("--time-format", "time_format", default=None,
              help="strptime format of log times in a shape not read by default, e.g. '%d.%m.%Y %H:%M:%S'")
@click.option("--year", default=None, type=int,
              help="year of log times written without one (syslog 'Dec 10 06:55:46'); default: from the case's "
                   "other data, else the file's modification time (the load says which)")
@click.option("--mapping", multiple=True, metavar="FIELD=KEY",
              help="field mapping of logs (--mapping time=eventTime --mapping body=text) and of spans tables "
                   "(--mapping start_time=ts_begin --mapping trace_id=tid)")
@click.option("--no-templates", is_flag=True, help="do not mine log templates while loading")
def command(paths: tuple[str, ...], case_path: str, strict: bool, format_in: str | None, force: bool, tz: str | None,
            extra: tuple[str, ...], pattern: str | None, time_format: str | None, year: int | None,
            mapping: tuple[str, ...], no_templates: bool) -> None:
    """Load export files or directories into a case file; prints loaded/rejected per table."""
    options: dict[str, str] = {"tz": tz} if tz else {}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--option")
        options[key] = value
    if pattern:
        options["pattern"] = pattern
    if time_format:
        options["time_format"] = time_format
    if year is not None:
        options["year"] = year
    if mapping:
        pairs = [m.partition("=") for m in mapping]
        bad = [m for m, (_, sep, _v) in zip(mapping, pairs) if not sep]
        if bad:
            raise click.BadParameter(f"expected FIELD=KEY, got {bad[0]!r}", param_hint="--mapping")
        options["mapping"] = {k: v for k, _, v in pairs}
    if no_templates:
        options["templates"] = False
    options = check_options(options)  # a bad -O is a usage error before the case file is touched
    with open_case(case_path) as case:
        report = load(case, *paths, strict=strict, format=format_in, force=force, **options)
        case.checkpoint()  # every row in the case file itself before saying it is loaded
        if report.no_exports:
            raise LoadError(_nothing_loaded(report), path=", ".join(paths))
        click.echo("\n".join(printable(line) for line in str(report).splitlines()))  # file names are data too


def _nothing_loaded(report: LoadReport) -> str:
    """One line: no file was an export, with how many were unknown or ignored and the first of each."""
    parts = []
    for status, what in (("unknown", "not a format forensics reads"), ("ignored", "ignored")):
        names = [os.path.basename(f.path) for f in report.files if f.status == status]
        if names:
            parts.append(f"{len(names)} {what} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
    return (f"no export file among {len(report.files)} file{'s' if len(report.files) > 1 else ''}: "
            f"{'; '.join(parts)}; `forensics formats` lists the formats, --format-in NAME forces one")
