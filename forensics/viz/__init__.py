"""Figures over a case (plotly) and the service graph (networkx).

Each figure is ``fn(case, *, options...) -> plotly.graph_objects.Figure``; options are
keyword-only and a bad option raises :class:`forensics.UsageError` naming it. A case with no
matching data gives an empty figure with an explanatory annotation, never an exception.
Telemetry strings only enter figures as data (plotly serialises them escaped).
"""
from .compare import compare_bars
from .graph import service_graph, service_graph_nx
from .heatmap import latency_heatmap
from .red import red_panel
from .timeline import timeline
from .versions import version_compare
from .waterfall import waterfall

__all__ = [
    "compare_bars",
    "latency_heatmap",
    "red_panel",
    "service_graph",
    "service_graph_nx",
    "timeline",
    "version_compare",
    "waterfall",
]
