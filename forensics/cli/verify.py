"""forensics verify CASE [--no-rehash]"""
from __future__ import annotations

import click

from ..case import Case
from ..custody import verify
from ..errors import CaseError


@click.command("verify")
@click.argument("case_path")
@click.option("--no-rehash", is_flag=True, help="check the counts only; do not read the source files again")
def command(case_path: str, no_rehash: bool) -> None:
    """Check the chain of custody: re-hash the source files still present and every file's row counts."""
    with Case(case_path, read_only=True, create=False) as case:
        result = verify(case, rehash=not no_rehash)
    click.echo(str(result))
    if not result.ok:
        failed = result.failures
        raise CaseError(f"{case_path}: verification failed for {len(failed)} of {len(result.files)} entries "
                        f"(first: {failed[0].status} {failed[0].path})")
