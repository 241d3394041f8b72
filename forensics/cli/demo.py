"""forensics demo [--out DIR]"""
from __future__ import annotations

import click

from ..synth.demo import run_demo


@click.command("demo")
@click.option("--out", "out_dir", default="demo_out", show_default=True, type=click.Path(file_okay=False),
              help="directory for case.duckdb and report.html")
@click.option("--source", default=None, type=click.Path(exists=True, file_okay=False),
              help="incident directory to use instead of the committed flagship sample")
def command(out_dir: str, source: str | None) -> None:
    """Flagship incident (catalog-service N+1): load it, run every detector, write report.html."""
    result = run_demo(out_dir, source=source)
    click.echo(result.summary())
