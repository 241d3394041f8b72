"""Command-line interface: ``forensics COMMAND``. Each command is a module of this package
exposing ``command`` (a click command) that adapts one public library function."""
from __future__ import annotations

import sys

import click

from .._version import __version__
from .._plugins import import_plugins
from .._spelling import command_line
from .._text import printable
from ..errors import ForensicsError


class _Commands(click.Group):
    """The command group; its help lists each command's whole first sentence (click cuts them at
    the terminal width with "...", which hid what half of the commands do)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(limit=300)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forensics")
def cli() -> None:
    """Post-incident forensics for distributed systems."""


def _register_commands() -> None:
    for name in import_plugins(__name__):
        cmd = getattr(sys.modules[f"{__name__}.{name}"], "command", None)
        if isinstance(cmd, click.Command):
            cli.add_command(cmd)


_register_commands()


def _error(message: str) -> int:
    """Print the one-line ``forensics: error: ...`` form (control characters from data escaped,
    so the message stays one line and cannot drive the terminal); return exit code 2."""
    click.echo(f"forensics: error: {printable(message)}", err=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit codes: 0 ok, 2 bad usage or bad input, 1 internal error."""
    try:
        with command_line():  # messages name --flags, not Python keywords
            code = cli.main(args=argv, prog_name="forensics", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):  # click returns Exit(n)'s code here
            return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        return _error("interrupted")
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "forensics"
        return _error(f"{exc.format_message().rstrip('.')} (see `{where} --help`)")
    except click.ClickException as exc:
        return _error(exc.format_message())
    except ForensicsError as exc:
        return _error(str(exc))
    except BrokenPipeError:
        return 0
    except Exception as exc:  # pragma: no cover - a bug
        click.echo(f"forensics: internal error: {printable(f'{type(exc).__name__}: {exc}')}", err=True)
        if "--debug" in (argv or sys.argv):
            raise
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
