"""Findings into incidents: which findings tell one story, its cause, trigger, onset, end and blast
radius.

1. Each finding's place gets its own onset (:mod:`.onset`): an upward shift of its p99 or error
   rate near the finding's start. A finding whose place is *steady* (no shift over a long
   enough series) is background and seeds no incident.
2. Findings with an onset are linked when they share traces (at least :data:`MIN_SHARED` of the
   smaller one's) or point at the same service, and their onsets are within :data:`TOLERANCE`;
   each connected group with a finding of at least :data:`MIN_SEVERITY` is an incident.
3. Every other finding joins the incident whose traces it shares, if it starts no earlier than
   the incident's onset minus :data:`TOLERANCE` (what started before cannot be a consequence).
4. The trigger is the change (deploy, config, Kubernetes: :func:`forensics.changes.change_events`)
   to one of the incident's services closest before the onset; the cause is chosen by
   :mod:`.cause` (the root-cause ranking over the incident's window first; it may establish no
   cause, and then a lead finding stands in for it below); the onset and end are then those of
   the cause's place; the blast radius is measured at the cause's place (:mod:`.impact`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import networkx as nx
import pandas as pd

from ..changes import change_events
from ..findings import SEVERITY_RANK, Findings
from . import cause as causes
from .impact import blast_radius
from .links import (deepest_service, finding_traces, overlaps, place_of, place_spans, places, registered,
                    service_depths, span_services, union_size)
from .onset import Grid, Shift, before_after, find_shift, grid, series

if TYPE_CHECKING:
    from ..case import Case

#: two findings share enough traces to be one story at this share of the smaller trace set
MIN_SHARED = 0.3
#: onsets this close are one onset; a finding starting this much before an onset is not its symptom
TOLERANCE = timedelta(minutes=5)
#: a trigger is looked for this long before the onset (and up to two buckets after it: onsets are
#: bucket starts)
TRIGGER_LOOKBACK = timedelta(minutes=30)
#: an incident needs a finding at least this severe: a story told only by low-severity findings
#: (the noise of healthy traffic under load) is left as findings in no incident
MIN_SEVERITY = "medium"
#: detectors whose ``version`` is the version that misbehaves (its requests are the affected ones)
VERSIONED = ("n_plus_one", "version_regression")


def _ts(value: Any) -> datetime | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    return pd.Timestamp(value).to_pydatetime()


def group(case: "Case", findings: Findings, *, ranking: Any = "auto") -> tuple[Findings, list[dict[str, Any]]]:
    """Findings with ``incident_id``/``role``/``caused_by`` filled, and one dict per incident.

    ``ranking``: ``"auto"`` (``forensics.rank_causes`` when installed), ``None`` (call graph
    only) or a callable ``(case, start, end) -> [{"service", "operation", "strong"}, ...] | None``
    (:data:`forensics.incident.cause.Ranking`).
    """
    findings = findings.sorted()
    recs = findings.records()
    n = len(recs)
    ids: list[str | None] = [None] * n
    roles: list[str | None] = [None] * n
    caused: list[str | None] = [None] * n
    g = grid(case)
    eligible = [i for i, r in enumerate(recs) if r["detector"] not in causes.NOT_INCIDENTS
                and not (r["evidence"] or {}).get("near_miss") and r["severity"] != "info"
                and (r["service"] or r["target"])]
    if g is None or not eligible:
        return findings.with_columns(incident_id=ids, role=roles, caused_by=caused), []
    if ranking == "auto":
        ranking = causes.default_ranking()
    frame = pd.DataFrame([recs[i] for i in eligible]).reset_index(drop=True)
    services = span_services(case)
    place = places(frame, services)
    with registered(case, place) as table, place_spans(case, table) as spans, \
            finding_traces(case, table, spans) as traces:
        by_place = series(case, g, table, spans, list(place["fid"]))
        shifts = [find_shift(by_place[p.fid], _ts(p.lo) if p.lo.year > 1970 else None,
                             _ts(p.hi) if p.hi.year < 2262 else None) for p in place.itertuples()]
        sizes, shared = overlaps(case, traces)

        def linked(a: int, b: int) -> bool:
            common = shared.get((min(a, b), max(a, b)), 0)
            small = min(sizes.get(a, 0), sizes.get(b, 0))
            return small > 0 and common / small >= MIN_SHARED

        seeds = [k for k, s in enumerate(shifts) if not isinstance(s, str) and s is not None]
        seeds += [k for k, s in enumerate(shifts) if s is None]  # too little data to tell: judge by links
        onset_of = {k: (shifts[k].onset if shifts[k] is not None and not isinstance(shifts[k], str)
                        else _ts(frame.loc[k, "start_time"])) for k in seeds}
        net = nx.Graph()
        net.add_nodes_from(seeds)
        for a in seeds:
            for b in seeds:
                if a < b and _close(onset_of[a], onset_of[b]) and (
                        linked(a, b) or deepest_service(frame.loc[a]) == deepest_service(frame.loc[b])):
                    net.add_edge(a, b)
        groups = [sorted(c) for c in nx.connected_components(net)
                  if any(SEVERITY_RANK[frame.loc[k, "severity"]] <= SEVERITY_RANK[MIN_SEVERITY] for k in c)]
        onsets = [min((onset_of[k] for k in c if onset_of[k] is not None), default=None) for c in groups]
        for k in range(len(frame)):
            if any(k in c for c in groups):
                continue
            start = _ts(frame.loc[k, "start_time"])
            best = max(((shared.get((min(k, m), max(k, m)), 0), gi) for gi, c in enumerate(groups) for m in c
                        if linked(k, m) and (start is None or onsets[gi] is None or start >= onsets[gi] - TOLERANCE)),
                       default=None)
            if best is not None:
                groups[best[1]].append(k)
        depth = service_depths(case)
        changes = change_events(case)
        incidents = []
        for c, onset0 in zip(groups, onsets):
            members = [recs[eligible[k]] for k in c]
            total = union_size(case, traces, c)
            coverage = [sizes.get(k, 0) / total if total else 0.0 for k in c]
            trigger = _trigger(changes, members, onset0, g)
            ranked = None if ranking is None else ranking(case, *_ranking_window([shifts[k] for k in c], onset0))
            choice = causes.choose(members, ranked, trigger=trigger, depth=depth, coverage=coverage)
            inc = _describe(case, g, members, choice.lead, trigger, onset0, changes, by_place[c[choice.lead]],
                            services)
            inc.update(cause_established=choice.established, cause_basis=choice.basis, ranked_first=choice.candidate,
                       _members=[eligible[k] for k in c], _lead=eligible[c[choice.lead]])
            incidents.append(inc)
    incidents.sort(key=lambda inc: (SEVERITY_RANK[inc["severity"]], inc["onset"]))
    for number, inc in enumerate(incidents, start=1):
        inc["incident_id"] = f"incident-{number}"
        lead = inc.pop("_lead")
        cause_id = recs[lead]["finding_id"] if inc["cause_established"] else None
        for i in inc.pop("_members"):
            ids[i] = inc["incident_id"]
            roles[i] = "cause" if cause_id is not None and i == lead else "symptom"
            caused[i] = None if i == lead else cause_id
        inc["cause_finding_id"] = cause_id
        inc["lead_finding_id"] = recs[lead]["finding_id"]
    return findings.with_columns(incident_id=ids, role=roles, caused_by=caused), incidents


def _close(a: datetime | None, b: datetime | None) -> bool:
    return a is None or b is None or abs(a - b) <= TOLERANCE


def _ranking_window(shifts: list[Any], onset: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The window the ranking judges: from the onset to the last recovery when every member's
    place recovered (else to the end of the data); ``(None, None)`` when no member's place shows
    a shift (too little data: the onset is only a finding's start), for the ranking to find its
    own."""
    if onset is None or not any(isinstance(s, Shift) for s in shifts):
        return None, None
    ends = [s.end if isinstance(s, Shift) else None for s in shifts]
    return onset, None if any(e is None for e in ends) else max(ends)


def _trigger(changes: pd.DataFrame, members: list[dict[str, Any]], onset: datetime, g: Grid) -> dict[str, Any] | None:
    """The change to one of the members' services closest before ``onset`` (within the lookback)."""
    if changes.empty or onset is None:
        return None
    services = {s for m in members for s in (m.get("service"), m.get("target")) if isinstance(s, str)}
    near = changes[changes["service"].isin(services)
                   & (changes["time"] >= onset - TRIGGER_LOOKBACK)
                   & (changes["time"] <= onset + timedelta(seconds=2 * g.seconds))]
    if near.empty:
        return None
    before = near[near["time"] <= onset]
    row = before.sort_values("time").iloc[-1] if not before.empty else near.sort_values("time").iloc[0]
    return {k: (None if pd.isna(v) else v) for k, v in row.to_dict().items()}


def _describe(case: "Case", g: Grid, members: list[dict[str, Any]], lead: int, trigger: dict[str, Any] | None,
              onset0: datetime | None, changes: pd.DataFrame, cause_series: pd.DataFrame,
              services: set[str]) -> dict[str, Any]:
    """The incident measured at its lead finding's place (the cause, when one is established)."""
    cause = members[lead]
    service, operation = place_of(cause, services)
    shift = find_shift(cause_series, onset0)
    onset, end, metric = onset0, None, "latency"
    if shift is not None and not isinstance(shift, str) and _close(shift.onset, onset0):
        onset, end, metric = shift.onset, shift.end, shift.metric
    elif cause["detector"] == "error_origin":
        metric = "errors"
    if trigger is None:  # the cause's own onset may find the change the first guess missed
        trigger = _trigger(changes, members, onset, g)
    measured: dict[str, Any] = {}
    radius: dict[str, Any] = {"entry_points": [], "by_service": [], "share": None}
    if onset is not None:
        measured = before_after(case, service, operation, onset, end)
        radius = blast_radius(case, service=service, operation=operation,
                              version=cause.get("version") if cause["detector"] in VERSIONED else None,
                              onset=onset, end=end, errors_only=metric == "errors")
    return {
        "severity": min((m["severity"] for m in members), key=SEVERITY_RANK.__getitem__),
        "title": cause["title"],
        "cause_detector": cause["detector"],
        "cause_summary": cause["summary"],
        "service": service,
        "operation": operation,
        "version": cause.get("version"),
        "trigger": trigger,
        "onset": onset,
        "end_time": end,
        "metric": metric,
        "measured": measured,
        "blast_radius": radius,
        "findings": len(members),
        "services": sorted({s for m in members for s in (m.get("service"), m.get("target")) if isinstance(s, str)}),
    }
