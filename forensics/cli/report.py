"""forensics report CASE_OR_PATH -o report.html [--redact] [--format html|markdown]"""
from __future__ import annotations

import click

from ..report import markdown_report, report
from ._common import open_case_or_paths


@click.command("report")
@click.argument("case_or_path", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="HTML file to write")
@click.option("--redact", is_flag=True, help="mask secrets and PII (tokens, keys, passwords in URLs, e-mails, IPs)")
@click.option("--redact-pattern", "patterns", multiple=True, metavar="REGEX", help="extra pattern to mask (repeatable)")
@click.option("--title", default=None, help="report title")
@click.option("--format", "fmt", type=click.Choice(["html", "markdown"]), default="html", show_default=True,
              help="markdown: the incidents and findings as a summary for a ticket or a post-mortem")
def command(case_or_path: tuple[str, ...], output: str, redact: bool, patterns: tuple[str, ...], title: str | None,
            fmt: str) -> None:
    """Write a self-contained HTML report (opens offline; plotly embedded once), or a Markdown summary."""
    case = open_case_or_paths(case_or_path, progress=False)
    extra = [("custom", p) for p in patterns]
    if fmt == "markdown":
        path = markdown_report(case, output, redact=redact, redact_patterns=extra, title=title)
    else:
        path = report(case, output, redact=redact, redact_patterns=extra, title=title)
    click.echo(str(path))
