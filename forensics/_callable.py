"""Make a module callable, so ``forensics.report(case, path)`` and ``forensics.report.render`` both work.

A function named like its own submodule is otherwise shadowed by the import system the moment the
submodule is imported (``import forensics.report`` rebinds ``forensics.report`` to the module).
"""
from __future__ import annotations

import sys
import types
from typing import Any, Callable


def make_module_callable(module_name: str, fn: Callable[..., Any]) -> None:
    """Calling module ``module_name`` calls ``fn`` (its docstring becomes the module's ``__call__`` doc)."""

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    _CallableModule.__call__.__doc__ = fn.__doc__
    sys.modules[module_name].__class__ = _CallableModule
