"""Helpers shared by CLI commands."""
from __future__ import annotations

import click

from ..case import Case, as_case


def open_case_or_paths(items: tuple[str, ...], **load_options) -> Case:
    """CASE_OR_PATH...: a .duckdb case file, or export files/directories loaded in memory."""
    if not items:
        raise click.UsageError("give a .duckdb case file or export files/directories")
    return as_case(list(items), **load_options)
