"""Detector options (threshold overrides) from ``--set DET.KEY=VALUE``, a TOML file or Python.

Every value is typed by the detector's signature: the type of the keyword's default (``int``,
``float``, ``bool``, ``str``), so ``--set n_plus_one.min_calls=3`` gives the int 3 and
``--set n_plus_one.min_calls=3.5`` is a usage error naming the option, what was given and
what is allowed. A TOML file holds one table per detector::

    [n_plus_one]
    min_calls = 3

    [bimodal_latency]
    max_dip_p = 0.001

:func:`merge` combines sources (later ones win) and remembers where each value came from, so
every finding can echo the overrides it was judged with (``evidence.overrides``).
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..errors import UsageError

if TYPE_CHECKING:
    from .registry import DetectorSpec

#: ``{detector: {key: value}}``
Options = dict[str, dict[str, Any]]
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def spec_of(specs: Mapping[str, "DetectorSpec"], name: str, where: str = "options") -> "DetectorSpec":
    """The detector ``name`` of ``specs``; an unknown name is a usage error naming ``where``."""
    if name not in specs:
        raise UsageError(f"{where}: unknown detector {name!r}; choose from: {', '.join(sorted(specs))}")
    return specs[name]


def coerce(spec: "DetectorSpec", key: str, value: Any, where: str = "options") -> Any:
    """``value`` as the type of threshold ``key`` of detector ``spec`` (a string is parsed).

    Raises
    ------
    UsageError
        Unknown key (the message lists the detector's thresholds), or a value of the wrong type.
    """
    defaults = spec.thresholds()
    if key not in defaults:
        raise UsageError(f"{where}: detector {spec.name!r} has no option {key!r}; options: "
                         f"{', '.join(sorted(defaults))}")
    default = defaults[key]
    want = type(default) if default is not None else str
    label = f"{where}: {spec.name}.{key} expects {want.__name__} (default {default!r})"
    if want is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise UsageError(f"{label}, got {value!r}; use true or false")
    if want is int:
        if isinstance(value, bool):
            raise UsageError(f"{label}, got {value!r}")
        try:
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, float) and (not math.isfinite(number) or not number.is_integer()):
                raise ValueError
            return int(number)
        except (TypeError, ValueError):
            raise UsageError(f"{label}, got {value!r}; give a whole number") from None
    if want is float:
        if isinstance(value, bool):
            raise UsageError(f"{label}, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{label}, got {value!r}; give a number") from None
        if math.isnan(number):
            raise UsageError(f"{label}, got {value!r}; give a number")
        return number
    if not isinstance(value, str):
        raise UsageError(f"{label}, got {value!r}")
    return value


def from_assignments(specs: Mapping[str, "DetectorSpec"], assignments: Iterable[str]) -> Options:
    """Options from ``DET.KEY=VALUE`` strings (``--set``), typed by each detector's signature."""
    out: Options = {}
    for text in assignments:
        name_key, sep, value = text.partition("=")
        name, dot, key = name_key.strip().partition(".")
        if not sep or not dot or not name or not key.strip():
            raise UsageError(f"--set {text!r}: expected DETECTOR.KEY=VALUE, e.g. n_plus_one.min_calls=3")
        spec = spec_of(specs, name, f"--set {text!r}")
        out.setdefault(name, {})[key.strip()] = coerce(spec, key.strip(), value.strip(), f"--set {text!r}")
    return out


def from_toml(specs: Mapping[str, "DetectorSpec"], path: str | Path) -> Options:
    """Options from a TOML file of one table per detector (``[n_plus_one] min_calls = 3``)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{p}: cannot read the config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{p}: not UTF-8 text at byte {exc.start}; expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: not valid TOML ({exc}); expected [detector] tables of key = value") from None
    out: Options = {}
    for name, table in data.items():
        spec = spec_of(specs, name, str(p))
        if not isinstance(table, dict):
            raise UsageError(f"{p}: {name!r} must be a table ([{name}] followed by key = value lines), "
                             f"got {type(table).__name__} {table!r}")
        out[name] = {k: coerce(spec, k, v, f"{p} [{name}]") for k, v in table.items()}
    return out


def merge(*sources: tuple[str, Options]) -> tuple[Options, dict[str, dict[str, str]]]:
    """Combine ``(origin, options)`` pairs, later ones winning: the options and, per detector
    and key, the origin of the value kept (e.g. ``"--set"`` or the TOML file's path)."""
    options: Options = {}
    origins: dict[str, dict[str, str]] = {}
    for origin, opts in sources:
        for name, values in opts.items():
            options.setdefault(name, {}).update(values)
            origins.setdefault(name, {}).update({k: origin for k in values})
    return options, origins
