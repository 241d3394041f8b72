"""forensics detect CASE_OR_PATH [--only NAME,...] [--set DET.KEY=VALUE]... [--config F.toml] [--format table|json]
[--explain] [--engine duckdb|spark]

Incidents first (one line each: trigger, onset, change, cause, blast radius), then the findings
under each (cause, then symptoms), then the findings in no incident. ``--format json``: one array
of findings, each with ``incident_id``, ``role`` and ``caused_by``.
"""
from __future__ import annotations

import sys
import warnings

import click

from .._text import printable
from ..detectors import detect, detectors
from ..detectors.options import from_assignments, from_toml, merge
from ..errors import DetectorFailedWarning
from ._common import open_case_or_paths


@click.command("detect")
@click.argument("case_or_path", nargs=-1, required=True)
@click.option("--only", default=None, help="comma-separated detector names")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--set", "assignments", multiple=True, metavar="DET.KEY=VALUE",
              help="override a detector threshold, e.g. n_plus_one.min_calls=3 (repeatable; wins over --config)")
@click.option("--config", "config", default=None, metavar="FILE.toml",
              help="thresholds from a TOML file: one [detector] table of key = value lines per detector")
@click.option("--explain", is_flag=True, help="also report near misses and the threshold they failed")
@click.option("--min-severity", default="info", type=click.Choice(["critical", "high", "medium", "low", "info"]), show_default=True)
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="spark: run on Apache Spark (local[2]) over a Parquet lake written by `forensics export`")
def command(case_or_path: tuple[str, ...], only: str | None, assignments: tuple[str, ...], config: str | None,
            fmt: str, explain: bool, min_severity: str, engine: str) -> None:
    """Run detectors and print findings (JSON: one array on stdout, nothing else).

    A detector that fails does not stop the others: their findings are printed, the failure
    is named on stderr and the exit code is 1.
    """
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    specs = detectors()
    sources = [(config, from_toml(specs, config))] if config else []
    options, origins = merge(*sources, ("--set", from_assignments(specs, assignments)))
    with warnings.catch_warnings():  # failures are reported below, once, with the exit code
        warnings.simplefilter("ignore", DetectorFailedWarning)
        if engine == "spark":
            if len(case_or_path) != 1:
                raise click.UsageError("--engine spark takes one lake directory (written by `forensics export`)")
            from ..engines.spark import detect_on_spark

            findings = detect_on_spark(case_or_path[0], only=names, explain=explain, options=options,
                                       option_origins=origins)
            incidents = None
        else:
            from ..incident import incidents as group_incidents

            case = open_case_or_paths(case_or_path, progress=False)
            incidents = group_incidents(case, findings=detect(case, only=names, explain=explain, options=options,
                                                              option_origins=origins))
            findings = incidents.findings
    findings = findings.at_least(min_severity)
    _print(findings, fmt, names, incidents)
    for failure in findings.failures:
        click.echo(f"forensics: error: {printable(str(failure))} (the other detectors' findings are shown)", err=True)
    if findings.failures:
        raise click.exceptions.Exit(1)


def _print(findings, fmt: str, names: list[str] | None, incidents) -> None:
    if fmt == "json":
        sys.stdout.write(findings.to_json() + "\n")
        return
    if not len(findings):
        click.echo(f"no findings ({len(detectors())} detectors run)" if names is None else "no findings")
        return
    records = findings.records()
    if incidents is None:
        for f in records:
            _echo_finding(f, indent="")
        return
    for inc in incidents:
        members = sorted((f for f in records if f["incident_id"] == inc["incident_id"]), key=lambda f: f["role"] != "cause")
        click.echo(f"{inc['incident_id']} [{inc['severity']}] {printable(inc['summary'])}")
        for f in members:
            _echo_finding(f, indent="  ", label=f"{f['role']:<8}")
        click.echo("")
    rest = [f for f in records if f["incident_id"] is None]
    if rest:
        click.echo(f"findings in no incident ({len(rest)}):" if len(incidents) else f"findings ({len(rest)}), no incident:")
        for f in rest:
            _echo_finding(f, indent="  ")


def _echo_finding(f: dict, *, indent: str, label: str = "") -> None:
    where = f["service"] or "-"
    if f["operation"]:
        where += f" {f['operation']}"
    if f["target"]:
        where += f" -> {f['target']}" + (f" {f['target_operation']}" if f["target_operation"] else "")
    lead = f"{indent}{label + ' ' if label else ''}"
    click.echo(f"{lead}[{f['severity']:<8}] {f['detector']:<18} {printable(where)}")
    pad = " " * (len(lead) + 11)
    click.echo(f"{pad}{printable(f['summary'])}")
    ex = f["evidence"].get("exemplar_trace_ids") if isinstance(f["evidence"], dict) else None
    if ex:
        click.echo(f"{pad}exemplars: {printable(', '.join(map(str, ex[:3])))}")
