"""Registry of detectors: ``@detector("name")`` on ``detect_<name>(case, *, thresholds) -> Findings``."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .._plugins import import_plugins
from ..errors import UsageError
from ..findings import Findings

if TYPE_CHECKING:
    from ..case import Case


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    fn: Callable[..., Findings]
    description: str

    def thresholds(self) -> dict[str, Any]:
        """Keyword-only parameters and their defaults (the documented thresholds)."""
        sig = inspect.signature(self.fn)
        return {p.name: p.default for p in sig.parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "explain"}


DETECTORS: dict[str, DetectorSpec] = {}


def detector(name: str) -> Callable[[Callable[..., Findings]], Callable[..., Findings]]:
    """Register ``fn`` as detector ``name``; its docstring's first line is its description."""

    def deco(fn: Callable[..., Findings]) -> Callable[..., Findings]:
        if name in DETECTORS and DETECTORS[name].fn is not fn:
            raise RuntimeError(f"detector {name!r} registered twice")
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        DETECTORS[name] = DetectorSpec(name, fn, doc[0] if doc else name)
        return fn

    return deco


def detectors() -> dict[str, DetectorSpec]:
    """All registered detectors (imports every module of forensics.detectors once)."""
    import_plugins("forensics.detectors", frozenset({"registry"}))
    return DETECTORS


def detect(case: "Case", only: list[str] | str | None = None, *, explain: bool = False,
           options: dict[str, dict[str, Any]] | None = None) -> Findings:
    """Run every registered detector (or those in ``only``) and return their findings, most severe first.

    ``options`` maps a detector name to threshold overrides, e.g.
    ``{"n_plus_one": {"min_calls": 10}}``. With ``explain=True`` detectors that support it add
    near misses (severity ``info``, ``evidence.near_miss = true``, and which threshold failed).
    """
    specs = detectors()
    names = list(specs) if only is None else ([only] if isinstance(only, str) else list(only))
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise UsageError(f"unknown detector(s) {unknown}; choose from: {', '.join(sorted(specs))}")
    options = options or {}
    parts = []
    for name in names:
        spec = specs[name]
        kwargs = dict(options.get(name, {}))
        bad = set(kwargs) - set(spec.thresholds())
        if bad:
            raise UsageError(f"detector {name!r} has no option(s) {sorted(bad)}; options: {sorted(spec.thresholds())}")
        if explain and "explain" in inspect.signature(spec.fn).parameters:
            kwargs["explain"] = True
        parts.append(spec.fn(case, **kwargs))
    return Findings.concat(parts)
