"""forensics export CASE DIR [--overwrite]"""
from __future__ import annotations

import click

from ..export import export
from ._common import open_case_or_paths


@click.command("export")
@click.argument("case_path")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="replace the contents of a non-empty DIR")
def command(case_path: str, out_dir: str, overwrite: bool) -> None:
    """Export a case as a Parquet lake, hive-partitioned by service and hour."""
    case = open_case_or_paths((case_path,), progress=False)
    for table, n in export(case, out_dir, overwrite=overwrite).items():
        click.echo(f"{table:<8} {n:>10}")
