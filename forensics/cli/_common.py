"""Helpers shared by CLI commands."""
from __future__ import annotations

import click

from ..case import Case, as_case


def open_case_or_paths(items: tuple[str, ...], *, write: bool = False, **load_options) -> Case:
    """CASE_OR_PATH...: a case file (opened read-only unless ``write``: it must exist and be a case),
    or export files/directories loaded into a case in memory."""
    if not items:
        raise click.UsageError("give a .duckdb case file or export files/directories")
    return as_case(list(items), read_only=not write, **load_options)
