"""Progress of long work (load, detect, report, synth): a tqdm bar on stderr when it is a terminal,
nothing otherwise (scripts, pipes, CI and notebooks' captured stderr stay clean).

Every long-running public function takes ``progress: bool | None = None``: None means "a bar only
when stderr is a terminal", True forces one, False turns it off.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable, Iterator, TypeVar

from ._text import printable

T = TypeVar("T")


def enabled(progress: bool | None) -> bool:
    """Whether to draw: ``progress`` if given, else whether stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class _Silent:
    """What :func:`bar` returns when nothing is drawn: the same methods, doing nothing."""

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def bar(*, desc: str, total: float | None = None, unit: str = "it", progress: bool | None = None) -> Any:
    """A bar to ``update(n)`` by hand (``unit="B"`` scales bytes to kB/MB/GB); a silent one when off."""
    if not enabled(progress):
        return _Silent()
    from tqdm import tqdm

    scale = unit == "B"
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
                file=sys.stderr, leave=False, dynamic_ncols=True)


def steps(items: Iterable[T], *, desc: str, unit: str = "it", total: int | None = None,
          progress: bool | None = None, label: Any = None) -> Iterator[T]:
    """Iterate ``items`` with a bar; ``label(item)`` (if given) is shown beside it for the current item."""
    items = list(items) if total is None and not hasattr(items, "__len__") else items
    with bar(desc=desc, total=total if total is not None else len(items), unit=unit, progress=progress) as b:  # type: ignore[arg-type]
        for item in items:
            if label is not None:
                b.set_postfix_str(printable(label(item)))
            yield item
            b.update(1)
