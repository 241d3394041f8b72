"""Registry of detectors: ``@detector("name")`` on ``detect_<name>(case, *, thresholds) -> Findings``."""
from __future__ import annotations

import functools
import inspect
import traceback
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import _progress
from .._duplicates import unique_spans
from .._plugins import import_plugins
from ..errors import DetectorFailedWarning, UsageError
from ..findings import DetectorFailure, Findings
from .options import coerce, spec_of

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
    """Register ``fn`` as detector ``name``; its docstring's first line is its description.

    The registered function (also what the decorator returns) runs ``fn`` over the case's
    spans with repeated rows hidden (:func:`forensics._duplicates.unique_spans`), so a span
    loaded twice from overlapping exports counts once in every detector.
    """

    def deco(fn: Callable[..., Findings]) -> Callable[..., Findings]:
        if name in DETECTORS and getattr(DETECTORS[name].fn, "__wrapped__", None) is not fn:
            raise RuntimeError(f"detector {name!r} registered twice")

        @functools.wraps(fn)
        def over_unique_spans(case: "Case", *args: Any, **kwargs: Any) -> Findings:
            with unique_spans(case):
                return fn(case, *args, **kwargs)

        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        DETECTORS[name] = DetectorSpec(name, over_unique_spans, doc[0] if doc else name)
        return over_unique_spans

    return deco


def detectors() -> dict[str, DetectorSpec]:
    """All registered detectors (imports every module of forensics.detectors once)."""
    import_plugins("forensics.detectors", frozenset({"registry"}))
    return DETECTORS


def detect(case: "Case", only: list[str] | str | None = None, *, explain: bool = False,
           options: dict[str, dict[str, Any]] | None = None,
           option_origins: dict[str, dict[str, str]] | None = None, progress: bool | None = None) -> Findings:
    """Run every registered detector (or those in ``only``) and return their findings, most severe first.

    ``options`` maps a detector name to threshold overrides, e.g.
    ``{"n_plus_one": {"min_calls": 10}}`` (values are checked against the types of the
    detector's defaults; strings are parsed, see :mod:`forensics.detectors.options`). Each
    finding of a detector with overrides lists them in ``evidence.overrides`` (and where they
    came from in ``evidence.overrides_from``: ``option_origins``, default ``"options"``). With
    ``explain=True`` detectors that support it add near misses (severity ``info``,
    ``evidence.near_miss = true``, and which threshold failed).

    A detector that raises does not stop the others: its failure is recorded in the result's
    ``failures`` (:class:`forensics.findings.DetectorFailure`: name, error, traceback) and a
    :class:`forensics.errors.DetectorFailedWarning` names it. Bad usage (an unknown detector or
    option, a value of the wrong type) raises :class:`forensics.errors.UsageError` before any
    detector runs. ``progress`` shows a bar per detector on stderr (None: only when stderr is a
    terminal).
    """
    specs = detectors()
    names = list(specs) if only is None else ([only] if isinstance(only, str) else list(only))
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise UsageError(f"unknown detector(s) {unknown}; choose from: {', '.join(sorted(specs))}")
    checked = {name: {k: coerce(spec_of(specs, name), k, v) for k, v in values.items()}
               for name, values in (options or {}).items()}
    with unique_spans(case):  # one check for duplicate span rows for all detectors
        return Findings.concat(_run(case, [specs[n] for n in names], checked, explain, option_origins or {}, progress))


def _run(case: "Case", specs: list[DetectorSpec], checked: dict[str, dict[str, Any]], explain: bool,
         option_origins: dict[str, dict[str, str]], progress: bool | None) -> list[Findings]:
    """Each detector's findings, or an empty Findings holding its failure."""
    parts = []
    for spec in _progress.steps(specs, desc="detect", unit="detector", progress=progress, label=lambda s: s.name):
        name = spec.name
        kwargs = dict(checked.get(name, {}))
        overrides = dict(kwargs)
        if explain and "explain" in inspect.signature(spec.fn).parameters:
            kwargs["explain"] = True
        try:
            found = spec.fn(case, **kwargs)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - one detector's crash must not hide the others' findings
            failure = DetectorFailure(name, type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                                      traceback.format_exc())
            warnings.warn(f"{failure}; the other detectors' findings are returned (Findings.failures)",
                          DetectorFailedWarning, stacklevel=3)
            parts.append(Findings(None, [failure]))
            continue
        if overrides:
            found = _with_overrides(found, overrides, option_origins.get(name, {}))
        parts.append(found)
    return parts


def _with_overrides(found: Findings, overrides: dict[str, Any], origins: dict[str, str]) -> Findings:
    """``found`` with ``evidence.overrides`` (key -> value) and ``evidence.overrides_from``."""
    if not len(found):
        return found
    records = found.records()
    for r in records:
        r["evidence"] = {**r["evidence"], "overrides": overrides,
                         "overrides_from": {k: origins.get(k, "options") for k in overrides}}
    return Findings.from_records(records).sorted()
