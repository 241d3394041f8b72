"""Discovery of plugin modules (loaders, detectors, CLI commands): import every public module of a package once."""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def import_plugins(package: str, skip: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Import each module of ``package`` whose name does not start with ``_`` and is not in
    ``skip`` (their decorators register them); returns the imported module names, sorted."""
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name not in skip)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return tuple(names)
