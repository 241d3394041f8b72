"""An ipywidgets explorer over a case: pick a time window, service, operation and version; see
the RED panel, the latency heatmap, the top findings and the slowest traces; select a trace to
see its waterfall.

Every choice reaches SQL only as a bind parameter (through :mod:`forensics.viz`). Figures are
shown in ``Output`` widgets as plotly MIME bundles (JupyterLab renders them with its plotly
extension) and kept in :attr:`Explorer.figures` for programmatic use.

A change of filter recomputes only what depends on it: the detectors run once (or not at all when
``findings`` are given), a waterfall is drawn when a trace is selected (not for the first trace of
every new list), and each figure, trace list and choice list is kept per selection (a case is
evidence: it does not change under the explorer), so going back to a selection is immediate.
``python -m bench.explore`` measures it.
"""
from __future__ import annotations

import html
import json
from collections import OrderedDict
from datetime import timedelta
from typing import Any, Callable, Hashable

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from .findings import Findings
from .viz import latency_heatmap, red_panel, waterfall
from .viz._sql import ENTRY_SPANS_SQL, SpanFilter, frame
from .viz._theme import check_int, resolve_case

ALL = "(all)"
#: status line while the explorer recomputes
BUSY = "<span style='color:#555'>&#x23F3; computing…</span>"
#: shown above the trace list
TRACES_HINT = "<i>Slowest requests for this selection: select one to draw its waterfall.</i>"
MAX_TICKS = 240
#: computed figures, trace lists and choice lists kept (most recently used)
CACHE_SIZE = 128

_SERVICES_SQL = "SELECT DISTINCT service FROM spans WHERE service IS NOT NULL ORDER BY service"
_CHOICES_SQL = f"""
WITH sel AS (SELECT * FROM spans WHERE service = $service), entry AS ({ENTRY_SPANS_SQL})
SELECT DISTINCT {{column}} AS value FROM entry WHERE {{column}} IS NOT NULL ORDER BY value
"""
_EXTENT_SQL = "SELECT min(start_time), max(start_time) FROM spans"
_TRACES_SQL = """
, entry AS ({entry})
SELECT trace_id, start_time, duration_ms, status, service, name FROM entry
ORDER BY duration_ms DESC, trace_id LIMIT $limit
"""


def _drawn(fig: go.Figure) -> tuple[go.Figure, dict[str, Any]]:
    """A figure and its display output (kept together: serializing costs as much as drawing)."""
    return fig, _figure_output(fig)


def _figure_output(fig: go.Figure) -> dict[str, Any]:
    """A display_data output holding the figure as a plotly MIME bundle (JSON-safe)."""
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.plotly.v1+json": {**json.loads(fig.to_json()), "config": {"responsive": True}},
                     "text/plain": f"<plotly Figure: {len(fig.data)} traces>"}}


class Explorer:
    """Widget app over a case; display it in a notebook cell (it renders as its widget tree).

    Attributes
    ----------
    window, service, operation, version:
        The filter widgets (a ``SelectionRangeSlider`` of minute ticks and three ``Dropdown``\\ s).
    traces:
        ``Select`` of the slowest matching requests; its value is a trace id.
    figures:
        The current figures by name: ``red``, ``heatmap``, ``waterfall``.
    trace_table:
        The rows behind :attr:`traces` (pandas DataFrame).
    findings_html:
        ``HTML`` widget with the top findings for the selection (escaped).
    status:
        ``HTML`` widget: a busy indicator while the explorer recomputes.
    """

    def __init__(self, case: Any, *, findings: Findings | None = None, max_traces: int = 50,
                 max_findings: int = 10) -> None:
        from .detectors import detect

        self.case = resolve_case(case)
        self.max_traces = check_int("max_traces", max_traces, low=1, high=10_000)
        self.max_findings = check_int("max_findings", max_findings, low=1, high=1000)
        self.findings = detect(self.case) if findings is None else findings
        self.figures: dict[str, go.Figure] = {}
        self.trace_table = pd.DataFrame()
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        services = [r[0] for r in self.case.sql(_SERVICES_SQL).rows()]
        self.window = widgets.SelectionRangeSlider(options=self._ticks() or [("-", None)], description="time (UTC)",
                                                   continuous_update=False, layout={"width": "95%"},
                                                   style={"description_width": "initial"})
        self.window.index = (0, len(self.window.options) - 1)
        self.service = widgets.Dropdown(options=services or [ALL], value=self._default_service(services),
                                        description="service")
        self.operation = widgets.Dropdown(options=[ALL], value=ALL, description="operation")
        self.version = widgets.Dropdown(options=[ALL], value=ALL, description="version")
        self.traces = widgets.Select(options=[], rows=8, description="traces", layout={"width": "95%"})
        self.red_out, self.heatmap_out, self.waterfall_out = widgets.Output(), widgets.Output(), widgets.Output()
        self.findings_html = widgets.HTML()
        self.status = widgets.HTML()
        self._refresh_choices()
        self.service.observe(self._on_service, names="value")
        self._quiet = False
        for w in (self.window, self.operation, self.version):
            w.observe(self._on_filter, names="value")
        self.traces.observe(lambda change: self.show_trace(change["new"]), names="value")
        self.widget = widgets.VBox([
            self.window, widgets.HBox([self.service, self.operation, self.version]), self.status,
            widgets.Tab(children=[self.red_out, self.heatmap_out], titles=("RED", "latency heatmap")),
            widgets.HTML("<b>Top findings</b>"), self.findings_html,
            widgets.HTML(TRACES_HINT), self.traces, self.waterfall_out,
        ])
        self.refresh()

    # -- options -------------------------------------------------------------------------------
    def _ticks(self) -> list[tuple[str, Any]]:
        lo, hi = self.case.sql(_EXTENT_SQL).rows()[0]
        if lo is None:
            return []
        lo = pd.Timestamp(lo).floor("min")
        hi = pd.Timestamp(hi).floor("min") + pd.Timedelta(minutes=1)
        minutes = max(int((hi - lo) / pd.Timedelta(minutes=1)), 1)
        step = -(-minutes // MAX_TICKS)
        ticks = pd.date_range(lo, hi + pd.Timedelta(minutes=step - 1), freq=f"{step}min")
        # short labels keep the slider's readout ("10:15 – 11:00") from being cut off
        fmt = "%H:%M" if lo.normalize() == (hi - pd.Timedelta(seconds=1)).normalize() else "%m-%d %H:%M"
        return [(t.strftime(fmt), t.to_pydatetime()) for t in ticks]

    def _default_service(self, services: list[str]) -> str:
        if not services:
            return ALL
        for rec in self.findings:
            if rec["service"] in services:
                return rec["service"]
        return services[0]

    def _choices(self, column: str) -> list[str]:
        if self.service.value == ALL:
            return [ALL]
        q = _CHOICES_SQL.format(column=column)  # column is one of two fixed names below
        return self._cached(("choices", column, self.service.value), lambda: [ALL] + [
            str(r[0]) for r in self.case.sql(q, {"service": self.service.value}).rows()])

    def _cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, or what it returned for ``key`` before (least recently used dropped)."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = self._cache[key] = compute()
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return value

    def _refresh_choices(self) -> None:
        self.operation.options = self._choices("name")
        self.operation.value = ALL
        self.version.options = self._choices("service_version")
        self.version.value = ALL

    def _on_service(self, _change: Any) -> None:
        self._quiet = True  # new operation/version choices must not each trigger a refresh
        try:
            self._refresh_choices()
        finally:
            self._quiet = False
        self.refresh()

    def _on_filter(self, _change: Any) -> None:
        if not self._quiet:
            self.refresh()

    # -- current selection -----------------------------------------------------------------------
    def selection(self) -> dict[str, Any]:
        """The current choices as keyword arguments of the figure functions (None = all)."""
        start, end = self.window.value or (None, None)
        if end is not None:
            end = end + timedelta(minutes=1) if end == start else end
        pick = lambda w: None if w.value == ALL else w.value  # noqa: E731
        return {"start": start, "end": end, "service": pick(self.service), "operation": pick(self.operation),
                "version": pick(self.version)}

    # -- updates ----------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        """Show the RED panel, heatmap, findings and trace list for the current choices (computed
        once per selection; ``force`` drops what was kept, e.g. after loading more data)."""
        if force:
            self._cache.clear()
        sel = self.selection()
        self.status.value = BUSY  # shown while the figures are recomputed
        try:
            self._refresh(sel)
        finally:
            self.status.value = "<i>This case has no spans.</i>" if sel["service"] is None else ""

    def _refresh(self, sel: dict[str, Any]) -> None:
        key = tuple(sel.items())
        red = (lambda: red_panel(self.case, **sel)) if sel["service"] else (lambda: latency_heatmap(self.case, **sel))
        self._show("red", self._cached(("red",) + key, lambda: _drawn(red())), self.red_out)
        self._show("heatmap", self._cached(("heatmap",) + key, lambda: _drawn(latency_heatmap(self.case, **sel))),
                   self.heatmap_out)
        self.findings_html.value = self._findings_table(sel)
        self.trace_table = self._cached(("traces",) + key, lambda: self._trace_rows(sel))
        self.traces.index = None  # a new list selects nothing: a waterfall is drawn on selection only
        self.traces.options = [
            (f"{r.duration_ms:9.1f} ms  {r.status or '':5}  {pd.Timestamp(r.start_time):%H:%M:%S}  "
             f"{r.service}: {r.name}  [{r.trace_id[:12]}]", r.trace_id)
            for r in self.trace_table.itertuples()]  # one option per listed trace (at most max_traces)

    def _trace_rows(self, sel: dict[str, Any]) -> pd.DataFrame:
        flt = SpanFilter(**sel)
        q = flt.cte() + _TRACES_SQL.format(entry=ENTRY_SPANS_SQL)
        return frame(self.case, q, {**flt.params, "limit": self.max_traces})

    def _findings_table(self, sel: dict[str, Any]) -> str:
        df = self._cached(("findings",), lambda: self.findings.to_pandas())
        if sel["service"] is not None:
            df = df[(df["service"] == sel["service"]) | (df["target"] == sel["service"])]
        if sel["version"] is not None:  # findings about that version, and those about no version
            df = df[df["version"].isna() | (df["version"] == sel["version"])]
        if sel["start"] is not None and sel["end"] is not None:
            ends = df["end_time"].fillna(df["start_time"])
            df = df[df["start_time"].isna() | ((df["start_time"] < sel["end"]) & (ends >= sel["start"]))]
        df = df.head(self.max_findings)
        if df.empty:
            return "<p>No findings for this selection.</p>"
        cols = ("severity", "detector", "service", "operation", "target", "version", "summary")
        head = "".join(f"<th>{c}</th>" for c in cols)
        cell = lambda v: html.escape("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))  # noqa: E731
        body = "".join("<tr>" + "".join(f"<td>{cell(getattr(r, c))}</td>" for c in cols) + "</tr>"
                       for r in df.itertuples())  # at most max_findings rows
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def show_trace(self, trace_id: str | None) -> None:
        """Show the waterfall of ``trace_id`` (clears it for None)."""
        if trace_id is None:
            self.figures.pop("waterfall", None)
            self.waterfall_out.outputs = ()
            return
        self.status.value = BUSY
        try:
            self._show("waterfall", self._cached(("waterfall", trace_id), lambda: _drawn(waterfall(self.case, trace_id))),
                       self.waterfall_out)
        finally:
            self.status.value = ""

    def _show(self, name: str, drawn: tuple[go.Figure, dict[str, Any]], out: widgets.Output) -> None:
        self.figures[name] = drawn[0]
        out.outputs = (drawn[1],)

    # -- display ------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def explore(case: Any, *, findings: Findings | None = None, max_traces: int = 50) -> Explorer:
    """Interactive explorer of a case for JupyterLab (see :class:`Explorer`).

    Parameters
    ----------
    case:
        A :class:`forensics.Case` (or a path to a case file / export directory).
    findings:
        Findings to list; default ``forensics.detect(case)``.
    max_traces:
        Slowest matching requests listed for click-through to their waterfall.
    """
    return Explorer(case, findings=findings, max_traces=max_traces)


from ._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, explore)
