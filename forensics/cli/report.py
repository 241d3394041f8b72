"""forensics report CASE_OR_PATH -o report.html [--redact]"""
from __future__ import annotations

import click

from ..report import report
from ._common import open_case_or_paths


@click.command("report")
@click.argument("case_or_path", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="HTML file to write")
@click.option("--redact", is_flag=True, help="mask secrets and PII (tokens, keys, passwords in URLs, e-mails, IPs)")
@click.option("--redact-pattern", "patterns", multiple=True, metavar="REGEX", help="extra pattern to mask (repeatable)")
@click.option("--title", default=None, help="report title")
def command(case_or_path: tuple[str, ...], output: str, redact: bool, patterns: tuple[str, ...], title: str | None) -> None:
    """Write a self-contained HTML report (opens offline; plotly embedded once)."""
    case = open_case_or_paths(case_or_path, progress=False)
    path = report(case, output, redact=redact, redact_patterns=[("custom", p) for p in patterns], title=title)
    click.echo(str(path))
