"""Telemetry text on its way to a terminal or a spreadsheet, made inert.

Service names, span names, log bodies and file names are attacker-controllable. On a terminal an
ESC sequence in them can clear the screen, set the window title or plant an OSC-8 hyperlink; in a
spreadsheet a cell that starts with ``=``, ``+``, ``-`` or ``@`` is a formula (``=HYPERLINK(...)``).
:func:`printable` shows control characters as escapes instead of sending them; :func:`csv_formulas_inert`
prefixes such CSV cells with ``'`` (OWASP's advice), which spreadsheets display but do not run.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

#: C0 and C1 controls, DEL, and the Unicode bidirectional overrides/isolates that reorder what a
#: terminal shows (CVE-2021-42574, "Trojan Source"); each becomes a visible escape
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A),
           0x200E, 0x200F, 0x061C]
_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_TABLE = {c: _ESCAPES.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}

#: a cell a spreadsheet reads as a formula: starts with = + - @ (or tab/CR, which some strip first)
_FORMULA = r"^[=+\-@\t\r]"


def printable(value: object) -> str:
    """``str(value)`` with every control character shown as an escape (``\\x1b``, ``\\n``, ``\\u202e``).

    >>> printable("api\\x1b]8;;http://evil\\x07gw")
    'api\\\\x1b]8;;http://evil\\\\x07gw'
    """
    return str(value).translate(_TABLE)


def csv_formulas_inert(table: pa.Table) -> pa.Table:
    """Prefix ``'`` to every string cell that a spreadsheet would run as a formula (see module doc)."""
    cols = []
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            risky = pc.fill_null(pc.match_substring_regex(col, _FORMULA), False)
            col = pc.if_else(risky, pc.binary_join_element_wise("'", col, ""), col)
        cols.append(col)
    return pa.table(cols, names=table.column_names)
