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
# # Ad hoc SQL: query the dump like data
#
# A case is a DuckDB database with canonical tables (`spans`, `logs`, `metrics`, `events`,
# `rejects`, `files`). `case.sql(query, params)` runs SQL with **bind parameters** (`?` or
# `$name`) and returns a result that converts to pandas, polars or Arrow. The guide's
# "query logs like data" questions, one cell each.

# %%
from pathlib import Path

import plotly.express as px

import forensics

SAMPLE = Path("../sample_data/catalog_n_plus_one")
case = forensics.open_case()
case.load(SAMPLE)
case.tables()

# %% [markdown]
# ## The tables and their columns

# %%
case.sql("""
    SELECT table_name, count(*) AS columns, string_agg(column_name, ', ' ORDER BY ordinal_position) AS names
    FROM information_schema.columns WHERE table_name IN ('spans', 'logs', 'metrics', 'events')
    GROUP BY table_name ORDER BY table_name
""").to_pandas()

# %% [markdown]
# ## Logs as data
#
# Loaders mine a template for every log line (drain3), so "group by error type" is a GROUP BY.
# Top error templates:

# %%
top_errors = case.sql("""
    SELECT template, severity, count(*) AS lines, count(DISTINCT service) AS services,
           min(time) AS first_seen, max(time) AS last_seen
    FROM logs WHERE severity IN ('error', 'fatal', 'warn')
    GROUP BY ALL ORDER BY lines DESC LIMIT 5
""").to_pandas()
top_errors

# %% [markdown]
# "Top 5 exception types in the last 15 minutes" of the window: the window's end comes from
# the data, the interval is a bind parameter.

# %%
case.sql("""
    SELECT template, count(*) AS lines FROM logs
    WHERE severity = 'error'
      AND time >= (SELECT max(time) FROM logs) - to_minutes(?::BIGINT)
    GROUP BY template ORDER BY lines DESC LIMIT 5
""", [15]).to_pandas()

# %% [markdown]
# Count over time, by severity:

# %%
per_minute = case.sql("""
    SELECT time_bucket(INTERVAL 5 MINUTE, time) AS period, severity, count(*) AS lines
    FROM logs GROUP BY ALL ORDER BY period
""").to_pandas()
px.bar(per_minute, x="period", y="lines", color="severity", title="log lines per 5 minutes")

# %% [markdown]
# Structured fields are in the `attributes` map: filter by route and version with bind
# parameters.

# %%
case.sql("""
    SELECT attributes['version'] AS version, count(*) AS searches,
           avg(TRY_CAST(attributes['duration_ms'] AS DOUBLE)) AS mean_duration_ms
    FROM logs WHERE service = ? AND attributes['route'] = ?
    GROUP BY version ORDER BY version
""", ["catalog-service", "/search"]).to_pandas()

# %% [markdown]
# ## Error rate by `service.version`

# %%
error_rate = case.sql("""
    SELECT service, service_version, count(*) AS spans,
           round(100.0 * avg((status = 'error')::INT), 2) AS error_pct
    FROM spans WHERE kind = 'server'
    GROUP BY ALL ORDER BY service, service_version
""").to_pandas()
error_rate

# %%
assert set(error_rate.loc[error_rate["service"] == "catalog-service", "service_version"]) == {"1.7.9", "1.8.0"}

# %% [markdown]
# ## Timeouts and errors by dependency
#
# Client spans name their dependency (`peer_service`, `server_address`, `db_system`):

# %%
case.sql("""
    SELECT service AS caller, coalesce(peer_service, server_address, db_system) AS dependency,
           count(*) AS calls,
           count(*) FILTER (WHERE status = 'error') AS errors,
           round(quantile_cont(duration_ms, 0.99), 1) AS p99_ms
    FROM spans WHERE kind = 'client'
    GROUP BY ALL ORDER BY errors DESC, calls DESC LIMIT 10
""").to_pandas()

# %% [markdown]
# ## Joining signals: logs of the slowest traces
#
# Logs carry `trace_id`: join them to the spans of the ten slowest /search requests.

# %%
case.sql("""
    WITH slow AS (
        SELECT trace_id, duration_ms FROM spans
        WHERE service = ? AND name = ? AND kind = 'server'
        ORDER BY duration_ms DESC LIMIT 10
    )
    SELECT slow.trace_id, round(slow.duration_ms) AS duration_ms, l.service, l.severity, l.body
    FROM slow JOIN logs l USING (trace_id)
    ORDER BY slow.duration_ms DESC, l.time
""", ["catalog-service", "GET /search"]).to_pandas()

# %% [markdown]
# ## Metrics
#
# Prometheus samples are rows too (one per sample, labels in a map):

# %%
case.sql("""
    SELECT name, type, count(*) AS samples, count(DISTINCT labels) AS series
    FROM metrics GROUP BY ALL ORDER BY samples DESC LIMIT 10
""").to_pandas()

# %% [markdown]
# Client calls per dependency route and status over the window, from the
# `http_client_requests_total` counters (increase = last - first sample of each series):

# %%
case.sql("""
    WITH series AS (
        SELECT labels['service'] AS caller, labels['peer_service'] AS dependency, labels['route'] AS route,
               labels['status'] AS status, max(value) - min(value) AS increase
        FROM metrics WHERE name = ? AND type = 'counter'
        GROUP BY labels
    )
    SELECT caller, dependency, route, status, sum(increase) AS calls
    FROM series GROUP BY ALL ORDER BY calls DESC
""", ["http_client_requests_total"]).to_pandas()

# %% [markdown]
# ## Results in other tools
#
# A result converts to pandas, polars or Arrow.

# %%
result = case.sql("SELECT service, name, duration_ms FROM spans WHERE service = ?", ["inventory-service"])
pl_df = result.to_polars()
arrow = result.to_arrow()
(pl_df.group_by("name").len().sort("len", descending=True).head(), arrow.num_rows)

# %% [markdown]
# Bind parameters keep values out of the SQL text, so a hostile value is just a value:

# %%
evil = "'; DROP TABLE spans; --"
assert case.sql("SELECT count(*) FROM spans WHERE service = ?", [evil]).scalar() == 0
assert case.sql("SELECT count(*) FROM spans").scalar() > 0
