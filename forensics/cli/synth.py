"""forensics synth SCENARIO --out DIR [--format otlp|jaeger|zipkin] [--traces N] [--seed S] [--subtle]"""
from __future__ import annotations

import click

from ..errors import UsageError
from ..synth import SCENARIOS, generate
from ..synth.writers import FORMATS


def _parse_params(items: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects NAME=VALUE, got {item!r}")
        params[key.strip()] = value.strip()
    return params


@click.command("synth")
@click.argument("scenario")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="directory to write the incident to")
@click.option("--format", "fmt", default="otlp", show_default=True, help=f"trace format: {'|'.join(FORMATS)}")
@click.option("--traces", default=1000, show_default=True, type=int, help="number of traces (root requests)")
@click.option("--seed", default=0, show_default=True, type=int, help="random seed (same seed, same bytes)")
@click.option("--subtle", is_flag=True, help="use settings near detector thresholds instead of obvious ones")
@click.option("--gzip", "compress", is_flag=True, help="gzip traces and logs")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="override a scenario parameter")
def command(scenario: str, out_dir: str, fmt: str, traces: int, seed: int, subtle: bool, compress: bool,
            params: tuple[str, ...]) -> None:
    """Generate a synthetic incident (traces, logs, metrics, deploys, k8s events) and its truth.json.

    SCENARIO is one of: n_plus_one, retry_storm, bimodal_latency, version_regression,
    cache_stampede, poison_pill, clock_skew, clean.
    """
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not a trace format; choose one of: {', '.join(FORMATS)}")
    if traces < 1:
        raise UsageError(f"--traces must be at least 1, got {traces}")
    truth = generate(scenario, out_dir, traces=traces, seed=seed, format=fmt, subtle=subtle, compress=compress,
                     **_parse_params(params))
    counts = ", ".join(f"{k} {v}" for k, v in truth.counts.items())
    click.echo(f"{scenario}{' (subtle)' if subtle else ''}: wrote {out_dir} ({counts}) in {truth.timings['total_s']:.1f} s")
    for e in truth.expected:
        where = f"{e['service']}" + (f" {e['operation']}" if e["operation"] else "")
        if e["target"]:
            where += f" -> {e['target']}" + (f" {e['target_operation']}" if e["target_operation"] else "")
        click.echo(f"  expect {e['detector']}: {where}" + (f" (version {e['version']})" if e["version"] else ""))
    if not truth.expected:
        click.echo("  expect no findings")
