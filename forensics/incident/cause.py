"""Which finding of an incident is its cause.

With a root-cause ranking (``forensics.rank_causes``, when installed): the member finding at the
highest-ranked service (and operation, when the ranking names one) is the cause. Without one, or
when the ranking names none of the members' services, the call graph decides: a finding on the
service (and version) the trigger changed first; then one whose traces cover most of the
incident's; then the one furthest downstream on the path (a caller's symptom is upstream of its
cause); then by what the detector describes (where errors start or an N+1 before a retry storm,
before a regression, before latency shapes); then severity and score.
"""
from __future__ import annotations

import importlib.util
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

Ranking = Callable[["Case", Any, Any], list[dict[str, Any]]]


def default_ranking() -> Ranking | None:
    """``forensics.rank_causes`` as a ranking (services, most likely first) when it is installed."""
    if importlib.util.find_spec("forensics.causes") is None:
        return None

    def rank(case: "Case", start: Any, end: Any) -> list[dict[str, Any]]:
        from ..causes import rank_causes
        from ..errors import UsageError

        try:
            causes = rank_causes(case, window=(start, end))
        except UsageError:
            return []
        return [{"service": r.get("service"), "operation": r.get("operation"), "strong": r.get("strong", True)}
                for r in causes.records()]

    return rank


def from_ranking(ranked: Sequence[dict[str, Any]], members: Sequence[dict[str, Any]]) -> int | None:
    """Index into ``members`` of the finding at the highest-ranked service (a finding *at* it
    before one calling it, its operation first, strong candidates only when any is strong); None
    when no member is at a ranked service."""
    strong = [r for r in ranked if r.get("strong")]
    for cand in strong or ranked:
        at = ([i for i, m in enumerate(members) if m.get("service") == cand.get("service")]
              or [i for i, m in enumerate(members) if m.get("target") == cand.get("service")])
        if not at:
            continue
        same_op = [i for i in at if cand.get("operation") and cand["operation"] in _operations(members[i])]
        pick = same_op or at
        return min(pick, key=lambda i: _detail_key(members[i]))
    return None


def _operations(m: dict[str, Any]) -> tuple[str | None, str | None]:
    return m.get("operation"), m.get("target_operation")


def _detail_key(m: dict[str, Any]) -> tuple[Any, ...]:
    return (DETECTOR_RANK.get(m["detector"], len(DETECTOR_RANK)), SEVERITY_RANK[m["severity"]], -(m.get("score") or 0.0))


def by_call_graph(members: Sequence[dict[str, Any]], *, trigger: dict[str, Any] | None, depth: dict[str, int],
                  coverage: Sequence[float]) -> int:
    """Index into ``members`` of the cause by the rules of the module docstring; ``coverage`` is
    each member's share of the incident's traces, ``depth`` each service's call depth."""
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

    return min(range(len(members)), key=key)
