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
# # Incident walkthrough: catalog-service 1.8.0 and the N+1 to inventory-service
#
# The guide's worked example, end to end, on the flagship sample incident
# (`sample_data/catalog_n_plus_one/`: OTLP traces, JSON logs, Prometheus metrics, the deploy log
# and Kubernetes events of one shop, 09:30–11:00 UTC).
#
# > After deploying catalog-service v1.8.0, p99 latency on /search increases from 400 ms to
# > 2.5 s. Error rate remains low, but users complain.
#
# We follow the workflow: **triage** (RED, p99, what changed) → **segment by version** →
# **traces** (waterfall of an exemplar) → **the N+1 finding** → **logs** (`items_returned` vs
# `inventory_calls`) → **mitigation evidence**.

# %%
from pathlib import Path

import plotly.express as px

import forensics
from forensics import viz

SAMPLE = Path("../sample_data/catalog_n_plus_one")
case = forensics.open_case()  # in memory; pass a path to keep the case file
load_report = case.load(SAMPLE)
load_report

# %% [markdown]
# Every file is accounted for: rows loaded + rows rejected = records read.

# %%
assert load_report.rows_rejected == 0
case.tables()

# %% [markdown]
# ## 1. Triage: what is the user impact, and when did it start?
#
# The timeline puts the deploy log and Kubernetes events next to the error rate and p99 of the
# requests users make (root spans at the gateway), per minute. Dotted purple lines are change
# points of the p99 series.

# %%
viz.timeline(case)

# %% [markdown]
# p99 of `/search` at the gateway, per 15 minutes, and the error rate: latency jumps, errors do not.

# %%
triage = case.sql("""
    SELECT time_bucket(INTERVAL 15 MINUTE, start_time) AS period,
           count(*) AS requests,
           round(quantile_cont(duration_ms, 0.99)) AS p99_ms,
           round(100.0 * avg((status = 'error')::INT), 2) AS error_pct
    FROM spans
    WHERE service = ? AND kind = 'server' AND name = ?
    GROUP BY period ORDER BY period
""", ["api-gateway", "GET /search"]).to_pandas()
triage

# %%
assert triage["p99_ms"].iloc[-1] > 3 * triage["p99_ms"].iloc[0]
assert triage["error_pct"].max() < 5

# %% [markdown]
# What changed? The deploy log says catalog-service moved from 1.7.9 to 1.8.0 at 10:15.

# %%
case.sql("""
    SELECT time, service, version, message FROM events
    WHERE kind = 'deploy' AND version IS NOT NULL ORDER BY time
""").to_pandas()

# %% [markdown]
# The RED panel of catalog-service's `/search` (rate, errors, p50/p95/p99):

# %%
viz.red_panel(case, service="catalog-service", operation="GET /search", bucket="5m")

# %% [markdown]
# ## 2. Segment by version
#
# Latency percentiles of catalog-service `/search` by `service.version`: the regression is
# confined to 1.8.0.

# %%
by_version = case.sql("""
    SELECT service_version AS version, count(*) AS requests,
           round(quantile_cont(duration_ms, 0.50)) AS p50_ms,
           round(quantile_cont(duration_ms, 0.99)) AS p99_ms
    FROM spans WHERE service = ? AND name = ? AND kind = 'server'
    GROUP BY version ORDER BY min(start_time)
""", ["catalog-service", "GET /search"]).to_pandas()
by_version

# %%
old, new = by_version["version"].tolist()
assert (old, new) == ("1.7.9", "1.8.0")
assert by_version["p99_ms"].iloc[1] > 4 * by_version["p99_ms"].iloc[0]

# %% [markdown]
# Distribution per version and calls per request to each dependency: 1.8.0 calls
# inventory-service dozens of times per search, where 1.7.9 made one batch call.

# %%
viz.version_compare(case, service="catalog-service", operation="GET /search")

# %%
viz.latency_heatmap(case, service="catalog-service", operation="GET /search")

# %% [markdown]
# The service graph of the traffic that touched each version: the catalog → inventory edge
# carries many times the calls under 1.8.0.

# %%
viz.service_graph(case, version=new)

# %%
graphs = {v: viz.service_graph_nx(case, version=v) for v in (old, new)}
{v: {f"{a} → {b}": d["calls"] for a, b, d in g.edges(data=True) if a == "catalog-service"}
 for v, g in graphs.items()}

# %% [markdown]
# ## 3. Traces: where does the time go?
#
# Take an exemplar 1.8.0 search near p99 and a typical 1.7.9 search, and look at their waterfalls.
# The orange inner bars are the critical path; the dots are the trace's logs.

# %%
def exemplar(version: str, quantile: float) -> str:
    """Trace id of the catalog /search request closest to this latency quantile of a version."""
    return case.sql("""
        WITH s AS (SELECT trace_id, duration_ms FROM spans
                   WHERE service = 'catalog-service' AND name = 'GET /search' AND kind = 'server'
                     AND service_version = ?)
        SELECT trace_id FROM s
        ORDER BY abs(duration_ms - (SELECT quantile_disc(duration_ms, ?) FROM s)), trace_id LIMIT 1
    """, [version, quantile]).scalar()


slow_new, typical_old = exemplar(new, 0.99), exemplar(old, 0.5)
viz.waterfall(case, slow_new)

# %%
viz.waterfall(case, typical_old)

# %% [markdown]
# ## 4. The finding: N+1 calls from catalog-service to inventory-service
#
# The `n_plus_one` detector looks for requests making many sequential calls to the same
# dependency operation, and compares versions. Its evidence lists the thresholds it used and
# exemplar traces.

# %%
findings = forensics.detect(case, only=["n_plus_one", "version_regression"])
findings

# %%
n1 = [f for f in findings if f["service"] == "catalog-service" and f["target"] == "inventory-service"]
assert n1, "expected the N+1 finding on catalog-service -> inventory-service"
top = n1[0]
print(top["summary"])
{k: v for k, v in top["evidence"].items() if k != "near_misses"}

# %%
exemplars = top["evidence"].get("exemplar_trace_ids") or [slow_new]
viz.waterfall(case, exemplars[0])

# %% [markdown]
# ## 5. Confirm with logs: `inventory_calls` equals `items_returned` in 1.8.0
#
# The catalog's structured "search completed" log carries `items_returned` and
# `inventory_calls` (loaded as log attributes). Logs are data: group them by version.

# %%
logs = case.sql("""
    SELECT attributes['version'] AS version,
           TRY_CAST(attributes['items_returned'] AS INTEGER) AS items_returned,
           TRY_CAST(attributes['inventory_calls'] AS INTEGER) AS inventory_calls
    FROM logs
    WHERE service = ? AND template = ?
""", ["catalog-service", "search completed"]).to_pandas()
summary = logs.groupby("version").agg(
    searches=("items_returned", "size"),
    mean_items=("items_returned", "mean"),
    mean_inventory_calls=("inventory_calls", "mean"),
    calls_equal_items=("inventory_calls", lambda s: float((s == logs.loc[s.index, "items_returned"]).mean())),
)
summary

# %%
assert summary.loc[new, "calls_equal_items"] > 0.9
assert summary.loc[old, "mean_inventory_calls"] == 1

# %%
px.scatter(logs, x="items_returned", y="inventory_calls", color="version", opacity=0.6,
           title="inventory calls per search vs items returned, by catalog-service version")

# %% [markdown]
# ## 6. Mitigation evidence
#
# Short term: roll back to 1.7.9. The evidence that this restores service is the 1.7.9
# baseline from the same window of traffic: one inventory call per search and the old p99.
# Long term: batch the inventory lookup again, and add the guardrail metric
# `inventory_calls_per_search` with an alert.

# %%
evidence = case.sql("""
    WITH search AS (
        SELECT trace_id, span_id, service_version, duration_ms FROM spans
        WHERE service = 'catalog-service' AND name = 'GET /search' AND kind = 'server'
    ),
    calls AS (
        SELECT s.service_version, s.trace_id, count(c.span_id) AS inventory_calls
        FROM search s LEFT JOIN spans c
          ON c.trace_id = s.trace_id AND c.parent_span_id = s.span_id AND c.peer_service = ?
        GROUP BY ALL
    )
    SELECT s.service_version AS version, count(*) AS searches,
           round(avg(c.inventory_calls), 1) AS inventory_calls_per_search,
           round(quantile_cont(s.duration_ms, 0.99)) AS p99_ms
    FROM search s JOIN calls c USING (trace_id, service_version)
    GROUP BY version ORDER BY version
""", ["inventory-service"]).to_pandas()
evidence

# %% [markdown]
# The guardrail: a per-minute `inventory_calls_per_search` series with an alert threshold
# (here 5) would have fired within a minute of the 10:15 rollout.

# %%
guardrail = case.sql("""
    SELECT time_bucket(INTERVAL 1 MINUTE, time) AS minute,
           avg(TRY_CAST(attributes['inventory_calls'] AS DOUBLE)) AS inventory_calls_per_search
    FROM logs WHERE service = ? AND template = ?
    GROUP BY minute ORDER BY minute
""", ["catalog-service", "search completed"]).to_pandas()
first_alert = guardrail.loc[guardrail["inventory_calls_per_search"] > 5, "minute"].min()
print("guardrail would first fire at", first_alert)
px.line(guardrail, x="minute", y="inventory_calls_per_search", title="inventory calls per search (from logs)")

# %% [markdown]
# ## 7. One story: the incident
#
# `forensics.incidents` groups every detector's findings into incidents: the trigger (the
# deploy, its Kubernetes rollout merged in), the onset (a change point of the cause's p99), the
# cause with its symptoms, and the blast radius at the entry points. The cause is the finding at
# the service `forensics.rank_causes` ranks first for the incident's window (`ranked_first`);
# without a strong candidate the incident would say its cause is not established.

# %%
incidents = forensics.incidents(case)
assert len(incidents) == 1, incidents
story = incidents[0]
assert story["trigger"]["service"] == "catalog-service" and story["trigger"]["version"] == new
assert story["cause_established"] and story["ranked_first"]["service"] == "catalog-service"
print(story["summary"])
print("root-cause ranking:", story["ranked_first"]["summary"])
incidents.members(story["incident_id"]).to_pandas()[["role", "detector", "service", "operation", "summary"]]

# %% [markdown]
# Finally the timeline with the incident as a band from its onset, the picture for the post-mortem.

# %%
viz.timeline(case, incidents=incidents)
