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
# # Retry storm: pricing-service fails and its callers multiply the load
#
# Sample incident `sample_data/retry_storm/`: from 10:10 pricing-service answers with 503s and
# slow responses. catalog-service and api-gateway retry up to 4 times with almost no backoff.
# The guide's debug signals for a retry storm:
#
# * increased outbound RPS despite stable inbound RPS,
# * multiple similar spans in traces (attempt 1, attempt 2…),
# * errors and probe failures on the dependency.

# %%
from pathlib import Path

import forensics
from forensics import viz
from forensics.analysis import compare

SAMPLE = Path("../sample_data/retry_storm")
case = forensics.open_case()
load_report = case.load(SAMPLE)
assert load_report.rows_rejected == 0
case.tables()

# %% [markdown]
# ## 1. Timeline: errors rise, Kubernetes reports unready pricing pods

# %%
viz.timeline(case, bucket="5m")

# %%
case.sql("""
    SELECT time, kind, service, reason, message, count FROM events
    WHERE service = ? AND severity ILIKE 'warning' ORDER BY time
""", ["pricing-service"]).to_pandas()

# %% [markdown]
# ## 2. Outbound calls grow, inbound requests do not
#
# Per 10 minutes: requests catalog-service served, calls it made to pricing-service, and the
# ratio. A retry storm shows as the ratio climbing while the inbound rate is flat.

# %%
amplification = case.sql("""
    WITH inbound AS (
        SELECT time_bucket(INTERVAL 10 MINUTE, start_time) AS period, count(*) AS requests_in
        FROM spans WHERE service = $caller AND kind = 'server' GROUP BY ALL
    ),
    outbound AS (
        SELECT time_bucket(INTERVAL 10 MINUTE, start_time) AS period, count(*) AS calls_out,
               round(100.0 * avg((status = 'error')::INT), 1) AS call_error_pct
        FROM spans WHERE service = $caller AND kind = 'client' AND peer_service = $target GROUP BY ALL
    )
    SELECT period, requests_in, calls_out, call_error_pct,
           round(calls_out / requests_in, 2) AS calls_per_request
    FROM inbound JOIN outbound USING (period) ORDER BY period
""", {"caller": "catalog-service", "target": "pricing-service"}).to_pandas()
amplification

# %%
before = amplification[amplification["period"] < "2026-02-18 10:10:00+00:00"]
during = amplification[(amplification["period"] >= "2026-02-18 10:10:00+00:00")
                       & (amplification["period"] < "2026-02-18 10:40:00+00:00")]
assert during["calls_per_request"].mean() > 1.5 * before["calls_per_request"].mean()

# %% [markdown]
# The service graph before and during the storm: the edges into pricing-service carry about
# twice the calls per second, with a high error share.

# %%
viz.service_graph(case, start="2026-02-18T10:10:00Z", end="2026-02-18T10:40:00Z")

# %%
edges = {}
for label, (start, end) in {"before": ("2026-02-18T09:30:00Z", "2026-02-18T10:10:00Z"),
                            "during": ("2026-02-18T10:10:00Z", "2026-02-18T10:40:00Z")}.items():
    g = viz.service_graph_nx(case, start=start, end=end)
    edges[label] = {f"{a} → {b}": (round(d["rate_per_s"], 3), round(d["error_pct"], 1))
                    for a, b, d in g.edges(data=True) if b == "pricing-service"}
edges  # (calls per second, error %)

# %%
viz.red_panel(case, service="pricing-service", bucket="5m")

# %% [markdown]
# ## 3. The finding
#
# The `retry_storm` detector looks for repeated calls from one parent span to the same
# dependency operation (attempts), and compares outbound with inbound growth.

# %%
findings = forensics.detect(case, only=["retry_storm"])
findings

# %%
storm = sorted((f for f in findings if f["target"] == "pricing-service"),
               key=lambda f: f["service"] != "catalog-service")  # catalog-service's first
assert storm, "expected a retry storm against pricing-service"
print(storm[0]["summary"])
storm[0]["evidence"]

# %% [markdown]
# ## 4. A trace with retries
#
# The waterfall of an exemplar: the same call to pricing-service, several times in a row, each
# failing fast or timing out, the attempts only milliseconds apart.

# %%
exemplar = storm[0]["evidence"].get("exemplar_trace_ids", [None])[0] or case.sql("""
    SELECT trace_id FROM spans WHERE peer_service = 'pricing-service' AND kind = 'client'
    GROUP BY trace_id, parent_span_id ORDER BY count(*) DESC, trace_id LIMIT 1
""").scalar()
viz.waterfall(case, exemplar)

# %% [markdown]
# Attempts per logical call: catalog-service marks retries with `http.resend_count`.

# %%
case.sql("""
    SELECT coalesce(attributes['http.resend_count'], '0') AS resend_count, count(*) AS calls,
           round(100.0 * avg((status = 'error')::INT), 1) AS error_pct
    FROM spans WHERE service = ? AND kind = 'client' AND peer_service = ?
    GROUP BY ALL ORDER BY resend_count
""", ["catalog-service", "pricing-service"]).to_pandas()

# %% [markdown]
# ## 5. What distinguishes the failing calls?
#
# A BubbleUp-style comparison of failing client calls to pricing-service against the
# successful ones: which attribute values are over-represented.

# %%
result = compare(case, ("kind = 'client' AND peer_service = ? AND status = 'error'", ["pricing-service"]),
                 ("kind = 'client' AND peer_service = ? AND status <> 'error'", ["pricing-service"]))
viz.compare_bars(result, top=12)

# %% [markdown]
# ## 6. Logs: top error templates, before vs during

# %%
case.sql("""
    SELECT template,
           count(*) FILTER (WHERE time < $start) AS before,
           count(*) FILTER (WHERE time >= $start AND time < $end) AS during,
           count(*) FILTER (WHERE time >= $end) AS after
    FROM logs WHERE severity IN ('warn', 'error')
    GROUP BY template ORDER BY during DESC LIMIT 10
""", {"start": "2026-02-18T10:10:00Z", "end": "2026-02-18T10:40:00Z"}).to_pandas()

# %% [markdown]
# ## 7. Mitigation evidence
#
# Exponential backoff with jitter and a retry budget (say, retries at most 10% of calls)
# would have capped the extra load. The share of pricing-service's traffic that was retries
# during the storm is what a budget would have shed:

# %%
case.sql("""
    SELECT round(100.0 * avg((coalesce(TRY_CAST(attributes['http.resend_count'] AS INT), 0) > 0)::INT), 1)
             AS retry_share_pct,
           count(*) AS calls
    FROM spans
    WHERE service = ? AND kind = 'client' AND peer_service = ? AND start_time >= ? AND start_time < ?
""", ["catalog-service", "pricing-service", "2026-02-18T10:10:00Z", "2026-02-18T10:40:00Z"]).to_pandas()

# %%
viz.timeline(case, findings=findings, service="pricing-service", bucket="5m")
