"""forensics formats: list the input formats that can be loaded."""
from __future__ import annotations

import click

from ..loaders import formats


@click.command("formats")
def command() -> None:
    """List the input formats forensics can load (and sniff)."""
    specs = formats()
    width = max((len(n) for n in specs), default=10)
    for name in sorted(specs):
        spec = specs[name]
        click.echo(f"{name:<{width}}  {spec.signal:<8}  {spec.description}")
