# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Bring your own data
#
# Point `EXPORT_DIR` at a directory of exports from your incident: OTLP JSON/protobuf, Jaeger
# or Zipkin JSON traces; JSON-lines, logfmt or plain-text logs; Prometheus text or OTLP
# metrics; a deploy log; `kubectl get events -o json`. Files may be gzip/zstd-compressed;
# formats are sniffed from content. By default it uses the flagship sample.
#
# Set the environment variable `FORENSICS_EXPORT_DIR` (or edit the cell) to use your own.

# %%
import os
from pathlib import Path

import forensics
from forensics import viz
from forensics.explore import explore

EXPORT_DIR = Path(os.environ.get("FORENSICS_EXPORT_DIR", "../sample_data/catalog_n_plus_one"))
CASE_FILE = None  # e.g. "incident.duckdb" to keep the loaded case on disk (None: in memory)

# %% [markdown]
# ## What can be loaded

# %%
forensics.formats()

# %% [markdown]
# ## Load
#
# Loading is lenient by default: records that cannot be read go to the `rejects` table with
# file, line and reason (pass `strict=True` to stop at the first one instead). Every file
# satisfies loaded + rejected = read.

# %%
case = forensics.open_case(CASE_FILE)
load_report = case.load(EXPORT_DIR)
print(load_report)

# %%
assert load_report.records_read == load_report.rows_loaded + load_report.rows_rejected
case.rejects().to_pandas().head(20)

# %% [markdown]
# Chain of custody: every input file with its size, sha256, detected format and row counts.

# %%
case.files().to_pandas()[["path", "format", "size_bytes", "sha256", "records_read", "rows_loaded", "rows_rejected"]]

# %% [markdown]
# ## Sanity checks before trusting the data
#
# Time range of each signal, services and versions, and how complete the traces are
# (spans whose parent was never exported make broken trees).

# %%
case.sql("""
    SELECT 'spans' AS signal, count(*) AS rows, min(start_time) AS first, max(start_time) AS last FROM spans
    UNION ALL SELECT 'logs', count(*), min(time), max(time) FROM logs
    UNION ALL SELECT 'metrics', count(*), min(time), max(time) FROM metrics
    UNION ALL SELECT 'events', count(*), min(time), max(time) FROM events
""").to_pandas()

# %%
case.sql("""
    SELECT service, string_agg(DISTINCT coalesce(service_version, '?'), ', ') AS versions,
           count(*) AS spans, count(DISTINCT trace_id) AS traces
    FROM spans GROUP BY service ORDER BY spans DESC
""").to_pandas()

# %%
completeness = case.sql("""
    SELECT count(*) AS spans,
           count(*) FILTER (WHERE s.parent_span_id IS NULL) AS roots,
           count(*) FILTER (WHERE s.parent_span_id IS NOT NULL AND p.span_id IS NULL) AS orphans
    FROM spans s LEFT JOIN spans p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
""").to_pandas()
completeness

# %% [markdown]
# ## Run every detector
#
# Each finding names where it happens, the thresholds it was judged with and exemplar traces.

# %%
findings = forensics.detect(case)
findings

# %%
findings.to_pandas()[["severity", "detector", "service", "operation", "target", "version", "start_time"]]

# %% [markdown]
# ## The big picture

# %%
viz.service_graph(case)

# %%
viz.timeline(case, findings=findings)

# %% [markdown]
# ## Drill into the service with the most severe finding (or the busiest one)

# %%
services = [f["service"] for f in findings if f["service"]]
busiest = case.sql("""
    SELECT service FROM spans WHERE kind IN ('server', 'consumer') AND service IS NOT NULL
    GROUP BY service ORDER BY count(*) DESC LIMIT 1
""").scalar()
service = services[0] if services else busiest
service

# %%
viz.red_panel(case, service=service, bucket="5m")

# %%
viz.latency_heatmap(case, service=service)

# %%
viz.version_compare(case, service=service)

# %% [markdown]
# The slowest request of that service, as a waterfall:

# %%
slowest = case.sql("""
    SELECT trace_id FROM spans WHERE service = ? AND kind IN ('server', 'consumer')
    ORDER BY duration_ms DESC, trace_id LIMIT 1
""", [service]).scalar()
viz.waterfall(case, slowest) if slowest else "no server spans for this service"

# %% [markdown]
# ## Explore interactively
#
# Pick a time window, service, operation and version; select a trace to see its waterfall.
# (In JupyterLab this is a live widget; executed headlessly it just builds.)

# %%
explorer = explore(case, findings=findings)
explorer
