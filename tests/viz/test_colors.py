"""Colours mean the same in every figure: red is errors (and orange the critical path), nothing
else is drawn in them, whether a trace's colour is set or comes from the template's colour order
(plotly's default order starts blue, red: a p50 line or a second version drew "in error")."""
from __future__ import annotations

import colorsys

import plotly.io as pio
import pytest

import forensics.viz as viz
from forensics.viz._theme import CRITICAL_COLOR, ERROR_COLOR, NEUTRAL_COLORWAY, SERVICE_PALETTE, TEMPLATE

from .conftest import BASE


def _warm(color: object) -> bool:
    """A bright red or orange: what a reader takes for an error or a warning (browns are not)."""
    if not isinstance(color, str) or not color.startswith("#") or len(color) != 7:
        return False
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    return s > 0.45 and v > 0.6 and (h < 0.11 or h > 0.94)


def test_palettes_leave_red_and_orange_to_errors_and_the_critical_path():
    assert _warm(ERROR_COLOR) and _warm(CRITICAL_COLOR)
    assert not [c for c in (*SERVICE_PALETTE, *NEUTRAL_COLORWAY) if _warm(c)]
    assert pio.templates[TEMPLATE].layout.colorway == NEUTRAL_COLORWAY
    assert pio.templates[TEMPLATE].layout.plot_bgcolor == "white"  # plotly_white otherwise


def _figures(case):
    yield "red_panel", viz.red_panel(case, service="catalog-service")
    yield "timeline", viz.timeline(case)
    yield "latency_heatmap", viz.latency_heatmap(case)
    yield "version_compare", viz.version_compare(case, service="catalog-service")
    yield "service_graph", viz.service_graph(case)


@pytest.mark.parametrize("index", range(5))
def test_only_error_marks_are_red(incident, index):
    case, _ = incident
    name, fig = list(_figures(case))[index]
    assert fig.layout.template.layout.colorway == NEUTRAL_COLORWAY, name
    for t in fig.data:
        marker = getattr(t, "marker", None)
        line = getattr(t, "line", None)
        colors = [getattr(marker, "color", None), getattr(line, "color", None)]
        colors = [c for v in colors for c in (v if isinstance(v, (list, tuple)) else [v])]
        label = f"{t.name or ''} {t.hovertemplate or ''}".lower()
        warm = [c for c in colors if _warm(c) and c != CRITICAL_COLOR]
        assert not warm or "error" in label or "fail" in label, (name, t.name, warm)
    assert BASE  # the case spans BASE..BASE+10 min
