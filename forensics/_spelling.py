"""How a message names an option: ``--force`` to someone at the command line, ``force=True`` in Python.

Library errors and hints are read in both places; the CLI sets :data:`COMMAND_LINE` while it runs a
command, and messages spell options with :func:`option`, so each reader sees the spelling they type.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator

#: true while a CLI command runs (set by :func:`command_line`)
COMMAND_LINE: ContextVar[bool] = ContextVar("forensics_command_line", default=False)

#: (Python keyword, value) -> command-line spelling; a value of ``...`` stands for any value
_FLAGS: dict[tuple[str, object], str] = {
    ("force", True): "--force",
    ("strict", True): "--strict",
    ("strict", False): "without --strict",
    ("templates", False): "--no-templates",
    ("overwrite", True): "--overwrite",
    ("format", ...): "--format-in {value}",
    ("tz", ...): "--tz {value}",
    ("pattern", ...): "--pattern {value}",
    ("mapping", ...): "--mapping FIELD=KEY",
    ("write", True): "--write",
}


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Within this block, :func:`option` gives command-line spellings."""
    token = COMMAND_LINE.set(True)
    try:
        yield
    finally:
        COMMAND_LINE.reset(token)


def option(name: str, value: object = True, *, shown: str | None = None) -> str:
    """The option ``name`` set to ``value`` as the reader would type it.

    ``shown`` replaces ``repr(value)`` in the text (e.g. ``"NAME"`` for a placeholder). In Python:
    ``force=True``, ``tz='Asia/Shanghai'``; on the command line: ``--force``, ``--tz Asia/Shanghai``,
    and loader options without a flag of their own as ``-O key=value``.

    >>> option("force")
    'force=True'
    >>> with command_line():
    ...     option("force"), option("tz", "Asia/Shanghai"), option("batch_bytes", 1 << 20)
    ('--force', '--tz Asia/Shanghai', '-O batch_bytes=1048576')
    """
    if not COMMAND_LINE.get():
        return f"{name}={shown if shown is not None else repr(value)}"
    text = shown if shown is not None else (str(value).lower() if isinstance(value, bool) else str(value))
    flag = _FLAGS.get((name, value)) if isinstance(value, (bool, type(None))) else None
    flag = flag or _FLAGS.get((name, ...))
    return flag.format(value=text) if flag else f"-O {name}={text}"
