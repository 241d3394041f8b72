"""Command-line interface: ``forensics COMMAND``. Each command is a module of this package
exposing ``command`` (a click command) that adapts one public library function."""
from __future__ import annotations

import sys

import click

from .._version import __version__
from .._plugins import import_plugins
from ..errors import ForensicsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forensics")
def cli() -> None:
    """Post-incident forensics for distributed systems."""


def _register_commands() -> None:
    for name in import_plugins(__name__):
        cmd = getattr(sys.modules[f"{__name__}.{name}"], "command", None)
        if isinstance(cmd, click.Command):
            cli.add_command(cmd)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit codes: 0 ok, 2 bad usage or bad input, 1 internal error."""
    try:
        code = cli.main(args=argv, prog_name="forensics", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):  # click returns Exit(n)'s code here
            return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return 2
    except ForensicsError as exc:
        click.echo(f"forensics: error: {exc}", err=True)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # pragma: no cover - a bug
        click.echo(f"forensics: internal error: {type(exc).__name__}: {exc}", err=True)
        if "--debug" in (argv or sys.argv):
            raise
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
