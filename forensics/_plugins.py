"""Discovery of plugin modules (loaders, detectors, CLI commands): import every public module of a package once."""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def import_plugins(package: str, skip: frozenset[str] = frozenset(), *, recursive: bool = False) -> tuple[str, ...]:
    """Import each module of ``package`` whose name does not start with ``_`` and is not in
    ``skip`` (their decorators register them); returns the imported module names, sorted.

    ``recursive=True`` also walks the subpackages (``skip`` then names whole subpackages, e.g.
    ``"core"``), returning dotted names relative to ``package`` (``"traces.zipkin.zipkin"``).
    """
    pkg = importlib.import_module(package)
    if not recursive:
        names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name not in skip)
        for name in names:
            importlib.import_module(f"{package}.{name}")
        return tuple(names)
    found = []
    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name.startswith("_") or m.name in skip:
            continue
        importlib.import_module(f"{package}.{m.name}")
        found.append(m.name)
        if m.ispkg:
            found += [f"{m.name}.{sub}" for sub in import_plugins(f"{package}.{m.name}", recursive=True)]
    return tuple(sorted(found))
