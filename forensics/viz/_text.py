"""Telemetry text inside figures: where plotly renders strings as markup, and their escaping.

plotly.js renders every *text* it draws (trace names in the legend, hover labels, values
substituted into a ``hovertemplate``, category tick labels, ``text`` on markers, titles,
annotations) through its pseudo-HTML: ``<a href>``, ``<span style>``, ``<b>``, ``<br>``... become
SVG elements. A service called ``<a href="https://evil">checkout</a>`` would be a live link.
So every string a figure draws is HTML-escaped once, here, when the figure is finished
(:func:`escape_figure`, called by :func:`forensics.viz._theme.style`); plotly shows ``&lt;``
as a literal ``<``. Markup is allowed only in ``hovertemplate``/``texttemplate`` strings, which
figures write themselves and which hold no telemetry (only ``%{...}`` references).

:data:`TEXT_KEYS` names the properties holding drawn text; :func:`map_spec_text` walks a
figure's JSON form with the same definition (the report redacts through it).
"""
from __future__ import annotations

import html
from typing import Any, Callable

import numpy as np

#: properties (at any depth of a figure's JSON) whose strings plotly draws as pseudo-HTML; ``x``
#: and ``y`` hold category names on category axes, ``customdata`` is substituted into hover text
TEXT_KEYS = frozenset({
    "text", "hovertext", "name", "customdata", "ticktext", "x", "y", "labels", "categoryarray",
    "values", "ids", "meta",
})
#: trace properties (dotted paths) escaped by :func:`escape_figure`
_TRACE_PROPS = ("name", "text", "hovertext", "customdata", "x", "y", "labels", "ids", "meta",
                "legendgrouptitle.text", "marker.colorbar.title.text", "header.values", "cells.values")


def escape_text(value: Any) -> Any:
    """``value`` with every string in it escaped (``<``, ``>``, ``&``); lists, tuples and numpy
    object arrays are walked; numbers, dates and ``None`` pass unchanged."""
    if isinstance(value, str):
        return html.escape(value, quote=False)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUS":
            out = np.empty(value.shape, dtype=object)
            flat_in, flat_out = value.reshape(-1), out.reshape(-1)
            for i, v in enumerate(flat_in):
                flat_out[i] = escape_text(v)
            return out
        return value
    if isinstance(value, (list, tuple)):
        return [escape_text(v) for v in value]
    return value


def _changed(new: Any, old: Any) -> bool:
    if isinstance(old, np.ndarray):
        return old.dtype.kind in "OUS"
    return new is not old and new != old


def escape_figure(fig: Any) -> Any:
    """Escape every string ``fig`` draws (traces, titles, annotations, axis and legend titles,
    tick labels), in place; returns ``fig``. Call exactly once per figure."""
    for trace in fig.data:
        for prop in _TRACE_PROPS:
            # ``in`` first: reading a property a trace type lacks makes plotly rank every valid
            # name by edit distance for its error message (~0.1 s per figure)
            if prop not in trace:
                continue
            old = trace[prop]
            if old is None:
                continue
            new = escape_text(old)
            if _changed(new, old):
                trace[prop] = new
    layout = fig.layout
    if layout.title.text:
        layout.title.text = escape_text(layout.title.text)
    if layout.legend.title.text:
        layout.legend.title.text = escape_text(layout.legend.title.text)
    for ann in layout.annotations or ():
        if ann.text:
            ann.text = escape_text(ann.text)
    for shape in layout.shapes or ():
        if shape.label and shape.label.text:
            shape.label.text = escape_text(shape.label.text)
        if shape.name:  # shown in the legend when showlegend is set
            shape.name = escape_text(shape.name)

    def axis(ax: Any) -> None:
        if ax.title.text:
            ax.title.text = escape_text(ax.title.text)
        for prop in ("ticktext", "categoryarray"):
            if ax[prop] is not None:
                ax[prop] = escape_text(ax[prop])

    fig.for_each_xaxis(axis)
    fig.for_each_yaxis(axis)
    return fig


def map_spec_text(spec: Any, on_text: Callable[[str], str], on_other: Callable[[str], str],
                  skip_keys: frozenset[str] = frozenset(), _in_text: bool = False) -> Any:
    """A copy of a figure's JSON form (``fig.to_plotly_json()`` / parsed ``fig.to_json()``) with
    ``on_text`` applied to the strings plotly draws (those under :data:`TEXT_KEYS` and titles'
    ``text``) and ``on_other`` to every other string (keys too); values of ``skip_keys`` (e.g.
    plotly's base64 ``bdata``) are kept as they are."""
    if isinstance(spec, str):
        return on_text(spec) if _in_text else on_other(spec)
    if isinstance(spec, dict):
        return {(on_other(k) if isinstance(k, str) else k):
                (v if k in skip_keys else map_spec_text(v, on_text, on_other, skip_keys, _in_text or k in TEXT_KEYS))
                for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [map_spec_text(v, on_text, on_other, skip_keys, _in_text) for v in spec]
    return spec
