"""The report's summary as Markdown, for a ticket or a post-mortem document: each incident's
sentence, its facts, blast radius and findings, then the findings in no incident.

Telemetry is escaped for Markdown and HTML alike (``<`` as ``&lt;``, so no tag can open; the
characters that make links, images, emphasis, code and table cells backslash-escaped), so no
renderer turns a span name into a link, an image or markup. Every line starts with text of ours.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._duplicates import unique_spans
from ..findings import Findings
from ..incident.text import cause_text, change_text, impact_text, ranking_text, trigger_text
from ..units import fmt_count, fmt_datetime, fmt_ms, fmt_pct
from .redact import NoRedaction, Redactor

if TYPE_CHECKING:
    from ..case import Case

_SPECIAL = re.compile(r"([\\`*_\[\]|!~])")


def md(value: Any) -> str:
    """``value`` as inert Markdown text (one line)."""
    text = ("" if value is None else str(value)).replace("<", "&lt;")
    text = _SPECIAL.sub(r"\\\1", " ".join(text.split()))
    return text.replace("://", ":\\/\\/").replace("www.", "www\\.")  # no autolink


def render_markdown(case: "Case", *, findings: Findings | None = None, redactor: Redactor | None = None,
                    title: str | None = None) -> str:
    """The Markdown summary (see the module docstring); ``redactor`` masks secrets first."""
    from ..incident import incidents as group_incidents

    r = redactor or NoRedaction()
    with unique_spans(case):  # each span once, the duplicate check once (see forensics.report.render)
        grouped = group_incidents(case, findings=findings)
    t = lambda v: md(r.text(v) if isinstance(v, str) else v)  # noqa: E731
    out = [f"# {t(title or 'Incident report')}", "",
           f"_Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} by forensics {__version__}"
           f"{'; secrets and PII redacted' if not isinstance(r, NoRedaction) else ''}._", "", "## What happened", ""]
    if not len(grouped):
        out += ["No incident: no finding comes with a change in latency or errors." if len(grouped.findings)
                else "No incident: the detectors found nothing.", ""]
    for inc in grouped:
        out.append(f"- **{inc['incident_id']}** ({inc['severity']}): {t(inc['summary'])}")
    out.append("")
    by_id = {f["finding_id"]: f for f in grouped.findings.records()}
    for inc in grouped:
        out += [f"## {inc['incident_id']}: {t(inc['title'])}", "",
                "| | |", "|---|---|",
                f"| trigger | {t(trigger_text(inc['trigger']))} |",
                f"| onset | {fmt_datetime(inc['onset'])} |",
                f"| end | {fmt_datetime(inc['end_time']) if inc['end_time'] else 'not over at the end of the data'} |",
                f"| what changed | {t(change_text(inc))} |",
                f"| cause | {t(cause_text(inc))} |",
                *([f"| root-cause ranking | {t(ranking_text(inc))} |"] if ranking_text(inc) else []),
                f"| impact | {t(impact_text(inc))} |", ""]
        eps = inc["blast_radius"]["entry_points"][:10]
        if eps:
            out += ["| entry point | requests after onset | affected | share | p99 before | p99 after |",
                    "|---|---:|---:|---:|---:|---:|"]
            out += [f"| {t(e['service'])} {t(e['operation'] or '')} | {fmt_count(e['requests'])} | "
                    f"{fmt_count(e['affected'])} | {fmt_pct(e['share'])} | {fmt_ms(e['p99_before_ms'])} | "
                    f"{fmt_ms(e['p99_after_ms'])} |" for e in eps]
            out.append("")
        out += ["Findings:", ""]
        for fid in inc["finding_ids"]:
            f = by_id[fid]
            out.append(f"- *{f['role']}* [{f['severity']}] {md(f['detector'])}: {t(f['summary'])}")
        out.append("")
    rest = grouped.background().records()
    if rest:
        out += [f"## Findings in no incident ({len(rest)})", ""]
        out += [f"- [{f['severity']}] {md(f['detector'])}: {t(f['summary'])}" for f in rest]
        out.append("")
    counts = case.tables()
    out += ["## Data", "", ", ".join(f"{k}: {fmt_count(v)}" for k, v in counts.items() if k != "files"), ""]
    return "\n".join(out)
