"""forensics causes CASE_OR_PATH [--window START..END] [--baseline START..END] [--format table|json] [--explain]"""
from __future__ import annotations

import sys

import click

from .._text import printable
from ..causes import rank_causes
from ._common import open_case_or_paths

#: candidates the table shows without --explain
SHOWN = 5


@click.command("causes")
@click.argument("case_or_path", nargs=-1, required=True)
@click.option("--window", default=None, metavar="START..END",
              help="incident window (ISO 8601 UTC times, either side may be empty); default: from the onset found "
                   "in the entry points' latency or error rate")
@click.option("--baseline", default=None, metavar="START..END",
              help="period to compare with; default: from the start of the data to the window")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--explain", is_flag=True, help="show every candidate and why each ranks below the one above it")
def command(case_or_path: tuple[str, ...], window: str | None, baseline: str | None, fmt: str, explain: bool) -> None:
    """Rank the services whose own behaviour changed most when the incident began."""
    case = open_case_or_paths(case_or_path, progress=False)
    causes = rank_causes(case, window=window, baseline=baseline)
    if fmt == "json":
        sys.stdout.write(causes.to_json() + "\n")
        return
    if causes.periods:
        click.echo(printable(causes.periods.describe()))
    if causes.note:
        click.echo(printable(causes.note))
    records = causes.records()
    for r in records if explain else records[:SHOWN]:
        mark = "" if r["strong"] else "  (weak)"
        click.echo(f"{r['rank']:>3}. {printable(r['service'])}  score {r['score']:.1f}{mark}  [{r['signals'] or '-'}]")
        click.echo(f"     {printable(r['summary'])}")
        exemplars = r["evidence"].get("exemplar_trace_ids") or []
        if exemplars:
            click.echo(f"     exemplars: {printable(', '.join(map(str, exemplars[:3])))}")
        if explain:
            click.echo(f"     why: {printable(r['explain'])}")
    if not explain and len(records) > SHOWN:
        click.echo(f"... {len(records) - SHOWN} more (--explain shows all, with why each ranks lower)")
