"""Numbers as a person reads them: durations, shares, counts and times, with units and sensible
rounding (three significant figures at most, never ``1544.3458845000005``). The incident
sentences, the terminal, the report's evidence tables and the markdown summary all format here.

>>> fmt_ms(358.68), fmt_ms(2501.6), fmt_ms(0.0421), fmt_ms(95_000)
('359 ms', '2.5 s', '0.042 ms', '1.6 min')
>>> fmt_pct(0.5117), fmt_count(44427), fmt_num(1.8242544)
('51%', '44,427', '1.82')
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any


def _sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures, without trailing zeros or exponent for usual sizes."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    text = f"{round(x, decimals):,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_ms(ms: float | None) -> str:
    """A duration given in milliseconds: ``µs`` below 0.01 ms... ``ms`` below 1 s, ``s`` below a
    minute, then ``min`` and ``h``."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "-"
    a = abs(ms)
    if a < 999.5:
        return f"{_sig(ms, 2 if a < 1 else 3)} ms"
    if a < 59_950:
        return f"{_sig(ms / 1000, 2)} s"
    if a < 3_597_000:
        return f"{_sig(ms / 60_000, 2)} min"
    return f"{_sig(ms / 3_600_000, 2)} h"


def fmt_pct(share: float | None, *, digits: int = 2) -> str:
    """A share in [0, 1] as a percentage (``0.5117`` -> ``51%``; small shares keep a decimal)."""
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "-"
    pct = 100.0 * share
    if pct != 0 and abs(pct) < 1:
        return f"{_sig(pct, 1)}%"
    return f"{_sig(pct, digits) if abs(pct) < 100 else round(pct):}%"


def fmt_count(n: Any) -> str:
    """An integer count with thousands separators."""
    if n is None:
        return "-"
    return f"{int(n):,}"


def fmt_num(x: Any, digits: int = 3) -> str:
    """A plain number to ``digits`` significant figures (ints keep every digit)."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return fmt_count(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        if abs(x) >= 10 ** digits:
            return f"{round(x):,}"
        if 0 < abs(x) < 1e-3:
            return f"{x:.1e}"
        return _sig(x, digits)
    return str(x)


def fmt_time(t: datetime | None, *, seconds: bool = False) -> str:
    """A UTC time as ``10:15`` (``10:15:05`` with ``seconds``)."""
    if t is None:
        return "-"
    return t.strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_datetime(t: datetime | None) -> str:
    """A UTC time as ``2026-02-18 10:15:05 UTC``."""
    if t is None:
        return "-"
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")
