"""Registry of input formats: each format's module registers a sniff function and a load function."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from forensics._plugins import import_plugins

if TYPE_CHECKING:
    from .context import LoadContext
    from .head import Head
    from .options import LoadOption


@dataclass(frozen=True)
class FormatSpec:
    """One input format.

    ``sniff(head)`` returns a confidence in [0, 1] that the file is in this format (0: no).
    ``load(ctx)`` reads ``ctx.path`` and emits rows through ``ctx``.
    ``read_ahead(path, format, strict, options, scratch)``, optional, reads and converts a file
    before its turn without touching the case (see :mod:`.read_ahead`); ``load`` finds the
    result in ``ctx.ahead``. ``options`` declares options of the format's own beyond forensics'
    (:data:`.options.OPTIONS`).
    ``load_batch(ctxs)``, optional, loads several small files at once, one context each, with
    the rows, rejects and counts ``load`` would give each (a load of many small files then pays
    the fixed cost of a conversion once, see ``forensics.loaders.core.api._Batch``);
    ``batchable(path)``, optional, says which small files go to ``load_batch`` (default: all).
    """

    name: str
    signal: str  # traces | logs | metrics | events | mixed
    description: str
    sniff: Callable[["Head"], float]
    load: Callable[["LoadContext"], None]
    extensions: tuple[str, ...] = field(default_factory=tuple)
    read_ahead: Callable[..., Any] | None = None
    options: tuple["LoadOption", ...] = ()
    load_batch: Callable[[list["LoadContext"]], None] | None = None
    batchable: Callable[[str], bool] | None = None


FORMATS: dict[str, FormatSpec] = {}


def register_format(name: str, *, signal: str, description: str, sniff: Callable[["Head"], float],
                    extensions: tuple[str, ...] = (), read_ahead: Callable[..., Any] | None = None,
                    options: tuple["LoadOption", ...] = (),
                    load_batch: Callable[[list["LoadContext"]], None] | None = None,
                    batchable: Callable[[str], bool] | None = None) -> Callable:
    """Decorator for a loader function: ``@register_format("otlp_json", signal=..., sniff=...)``."""

    def deco(fn: Callable[["LoadContext"], None]) -> Callable[["LoadContext"], None]:
        if name in FORMATS and FORMATS[name].load is not fn:
            raise RuntimeError(f"format {name!r} registered twice")
        FORMATS[name] = FormatSpec(name, signal, description, sniff, fn, extensions, read_ahead, tuple(options),
                                   load_batch, batchable)
        return fn

    return deco


def formats() -> dict[str, FormatSpec]:
    """All registered formats (imports every module of the signal folders, ``loaders/<signal>/``, once:
    a format registers itself when its module is imported)."""
    import_plugins("forensics.loaders", frozenset({"core"}), recursive=True)
    return FORMATS
