"""Everything synth writes loads back through forensics.load with no rejects and every row accounted for."""
from __future__ import annotations

import pytest

import forensics
from forensics.synth import generate

#: which registered loader must read each kind of file synth writes
NEEDED = {"otlp": "otlp_json", "jaeger": "jaeger_json", "zipkin": "zipkin_json", "logs": "json_logs",
          "metrics": "prometheus_text", "deploys": "deploy_log", "k8s": "k8s_events"}


def _need(*names: str) -> None:
    missing = [NEEDED[n] for n in names if NEEDED[n] not in forensics.formats()]
    if missing:
        pytest.skip(f"loader not registered yet: {', '.join(missing)}")


@pytest.mark.parametrize("fmt, compress", [("otlp", False), ("jaeger", True), ("zipkin", False), ("mixed", True)])
def test_every_file_loads_with_no_rejects(tmp_path, fmt, compress):
    _need("logs", "metrics", "deploys", "k8s", *(["otlp", "jaeger", "zipkin"] if fmt == "mixed" else [fmt]))
    truth = generate("version_regression", tmp_path, traces=80, seed=9, format=fmt, compress=compress,
                                     scrape_interval_s=120)
    case = forensics.open_case()
    report = forensics.load(case, tmp_path, progress=False)
    assert report.rows_rejected == 0, str(report)
    assert all(f.status in ("loaded", "ignored") for f in report.files), str(report)
    tables = report.by_table()
    assert tables["spans"] == truth.counts["spans"]
    assert tables["logs"] == truth.counts["logs"]
    assert tables["metrics"] == truth.counts["metric_samples"]
    assert tables["events"] == truth.counts["deploys"] + truth.counts["k8s_events"]
    # parent links survive every format: each non-root span's parent is in the case
    orphans = case.sql("""select count(*) from spans c where c.parent_span_id is not null and not exists
                          (select 1 from spans p where p.span_id = c.parent_span_id)""").scalar()
    assert orphans == 0
    versions = case.sql("select distinct service_version from spans where service = 'pricing-service' order by 1").rows()
    assert versions == [("2.3.1",), ("2.4.0",)]


def test_exemplars_point_at_loaded_traces(tmp_path):
    _need("otlp", "metrics")
    generate("n_plus_one", tmp_path, traces=60, seed=1, scrape_interval_s=60)
    case = forensics.open_case()
    forensics.load(case, tmp_path / "traces.otlp.jsonl", tmp_path / "metrics.prom", progress=False)
    n, found = case.sql("""select count(*), count(*) filter (where exists
                             (select 1 from spans s where s.trace_id = m.exemplar_trace_id))
                           from metrics m where exemplar_trace_id is not null""").rows()[0]
    assert n > 0 and found == n
