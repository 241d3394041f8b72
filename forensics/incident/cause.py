"""Which finding of an incident is its cause, and whether a cause is established at all.

The root-cause ranking (``forensics.rank_causes``: which service's own behaviour moved when the
incident began, compared with the baseline before it) decides first. When it has strong
candidates, the member finding at the highest-ranked one (and its operation, when the ranking
names one) is the cause. When it judged the incident's window and found no strong candidate, no
cause is established: the incident keeps its findings (all symptoms), led by the most severe
(the call graph below breaking ties), whose place measures the onset and blast radius; naming it
the cause would invent one. When the ranking cannot judge (no baseline before the onset, e.g. a single trace), is
not installed, or strongly names a service no member is at, the call graph decides: a finding on
the service (and version) the trigger changed first; then one whose traces cover most of the
incident's; then the one furthest downstream on the path (a caller's symptom is upstream of its
cause); then by what the detector describes (where errors start or an N+1 before a retry storm,
before a regression, before latency shapes); then severity and score.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..findings import SEVERITY_RANK

if TYPE_CHECKING:
    from ..case import Case

#: how directly a detector's finding describes a mechanism (lower: more likely the cause); other
#: detectors rank after these
DETECTOR_RANK = {"error_origin": 0, "n_plus_one": 0, "retry_storm": 1, "version_regression": 2,
                 "bimodal_latency": 3, "critical_path": 3}
#: detectors about the data rather than a failure: never grouped into incidents
NOT_INCIDENTS = frozenset({"clock_skew"})
#: a finding whose traces cover this share of the incident's traces explains most of it
COVERAGE = 0.5

#: a ranking: ``(case, window start, window end) -> candidates`` (most likely first; dicts with
#: ``service``, ``operation``, ``strong`` and optionally ``score``, ``summary``), or None when it
#: cannot judge that window; a start of None asks it to find the window itself
Ranking = Callable[["Case", Any, Any], "list[dict[str, Any]] | None"]
#: what a ranking candidate keeps for the incident record
CANDIDATE_KEYS = ("service", "kind", "operation", "score", "strong", "signals", "summary")


def default_ranking() -> Ranking | None:
    """``forensics.rank_causes`` as a ranking (services, most likely first) when it is installed;
    the ranking returns None when ``rank_causes`` cannot judge the window (e.g. no data before
    it)."""
    if importlib.util.find_spec("forensics.causes") is None:
        return None

    def rank(case: "Case", start: Any, end: Any) -> list[dict[str, Any]] | None:
        from ..causes import rank_causes
        from ..errors import UsageError

        try:
            causes = rank_causes(case, window=None if start is None else (start, end))
        except UsageError:
            return None
        if causes.periods is None:
            return None
        return [{k: r.get(k) for k in CANDIDATE_KEYS} for r in causes.records()]

    return rank


@dataclass(frozen=True)
class Choice:
    """The lead finding of an incident (an index into its members) and how it was chosen.

    ``established``: the lead is the incident's cause. ``basis``: ``"ranking"`` (the ranking's
    strong candidate is at it), ``"call graph"``, or ``"none"`` (the ranking judged the window and
    no candidate is strong: no cause established). ``candidate``: the ranking's top candidate
    (None without a ranking verdict).
    """

    lead: int
    established: bool
    basis: str
    candidate: dict[str, Any] | None


def choose(members: Sequence[dict[str, Any]], ranked: Sequence[dict[str, Any]] | None, *,
           trigger: dict[str, Any] | None, depth: dict[str, int], coverage: Sequence[float]) -> Choice:
    """The incident's cause (or lead, when none is established) by the rules of the module
    docstring; ``ranked`` is the ranking's verdict (None: no ranking or it could not judge)."""
    top = dict(ranked[0]) if ranked else None
    if ranked is not None:
        strong = [r for r in ranked if r.get("strong")]
        if strong:
            at = from_ranking(strong, members)
            if at is not None:
                return Choice(at, True, "ranking", top)
        else:  # the most severe finding leads, the call graph breaking ties
            order = call_graph_order(members, trigger=trigger, depth=depth, coverage=coverage)
            lead = min(order, key=lambda i: (SEVERITY_RANK[members[i]["severity"]], order.index(i)))
            return Choice(lead, False, "none", top)
    return Choice(by_call_graph(members, trigger=trigger, depth=depth, coverage=coverage), True, "call graph", top)


def from_ranking(ranked: Sequence[dict[str, Any]], members: Sequence[dict[str, Any]]) -> int | None:
    """Index into ``members`` of the finding at the highest-ranked service of ``ranked`` (a finding
    *at* it before one calling it, the ranked operation's first); None when no member is at a
    ranked service."""
    for cand in ranked:
        at = ([i for i, m in enumerate(members) if m.get("service") == cand.get("service")]
              or [i for i, m in enumerate(members) if m.get("target") == cand.get("service")])
        if not at:
            continue
        best = max(_operation_match(cand.get("operation"), members[i]) for i in at)
        pick = [i for i in at if _operation_match(cand.get("operation"), members[i]) == best]
        return min(pick, key=lambda i: _detail_key(members[i]))
    return None


def _operation_match(operation: str | None, m: dict[str, Any]) -> int:
    """How closely a ranked ``operation`` (an operation, or a call ``OP -> target [TARGET_OP]``)
    names the member's place: 2 the very call it makes (or its operation), 1 the operation the
    call is made from, 0 neither."""
    if not operation:
        return 0
    own, _, call = operation.partition(" -> ")
    if not call:
        return 2 if operation in (m.get("operation"), m.get("target_operation")) else 0
    if own != m.get("operation"):
        return 0
    target, _, target_op = call.partition(" ")
    same_call = m.get("target") == target and (not target_op or m.get("target_operation") == target_op)
    return 2 if same_call else 1


def _detail_key(m: dict[str, Any]) -> tuple[Any, ...]:
    return (DETECTOR_RANK.get(m["detector"], len(DETECTOR_RANK)), SEVERITY_RANK[m["severity"]], -(m.get("score") or 0.0))


def by_call_graph(members: Sequence[dict[str, Any]], *, trigger: dict[str, Any] | None, depth: dict[str, int],
                  coverage: Sequence[float]) -> int:
    """Index into ``members`` of the cause by the call graph (the first of :func:`call_graph_order`)."""
    return call_graph_order(members, trigger=trigger, depth=depth, coverage=coverage)[0]


def call_graph_order(members: Sequence[dict[str, Any]], *, trigger: dict[str, Any] | None, depth: dict[str, int],
                     coverage: Sequence[float]) -> list[int]:
    """Indices into ``members``, the likeliest cause first by the rules of the module docstring;
    ``coverage`` is each member's share of the incident's traces, ``depth`` each service's call
    depth."""
    def on_trigger(m: dict[str, Any]) -> int:
        if not trigger or not trigger.get("service"):
            return 0
        if m.get("service") == trigger["service"]:
            return 2 if trigger.get("version") and m.get("version") == trigger["version"] else 1
        return 1 if m.get("target") == trigger["service"] else 0

    def key(i: int) -> tuple[Any, ...]:
        m = members[i]
        where = m.get("target") if isinstance(m.get("target"), str) else m.get("service")
        return (-on_trigger(m), -(coverage[i] >= COVERAGE), -depth.get(where, 0), *_detail_key(m))

    return sorted(range(len(members)), key=key)
