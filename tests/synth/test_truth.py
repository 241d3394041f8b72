"""Every scenario's truth.json agrees with its data, checked by loading the files and querying."""
from __future__ import annotations

from datetime import datetime

import pytest

# each test generates an incident and loads it (tens of seconds on a busy machine)
pytestmark = pytest.mark.slow


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_n_plus_one_calls_per_search_before_and_after_deploy(loaded):
    case, truth = loaded("n_plus_one")
    exp = truth.expected[0]
    assert (exp["detector"], exp["service"], exp["operation"], exp["target"], exp["target_operation"], exp["version"]) == (
        "n_plus_one", "catalog-service", "GET /search", "inventory-service", "GET /inventory/{id}", "1.8.0")
    rows = case.sql("""
        with s as (select span_id, service_version as v, duration_ms, status, start_time from spans
                   where service = 'catalog-service' and kind = 'server' and name = 'GET /search'),
             c as (select parent_span_id, count(*) as n, count(distinct http_url) as urls, min(name) as op
                   from spans where kind = 'client' and peer_service = 'inventory-service' group by 1)
        select v, median(n), min(n), max(n), quantile_cont(duration_ms, 0.99), avg((status = 'error')::int),
               min(urls = n), min(op), min(s.start_time)
        from s join c on c.parent_span_id = s.span_id group by v order by v""").rows()
    by_version = {r[0]: r[1:] for r in rows}
    before, after = by_version["1.7.9"], by_version["1.8.0"]
    assert before[0] == before[1] == before[2] == 1 and before[6] == "POST /inventory/batch"
    assert 40 <= after[0] <= 60 and after[1] < after[0] < after[2]          # ~50, varying per request
    assert after[5] and after[6] == "GET /inventory/{id}"                    # a different id in each URL
    assert after[0] == exp["numbers"]["calls_per_request_after"]
    assert 250 <= before[3] <= 600 and 1800 <= after[3] <= 3500              # p99 ~400 ms -> ~2.5 s
    assert after[4] < 0.02                                                     # error rate stays low
    assert after[7] >= _ts(exp["start_time"])                                # only after the deploy
    # step 3 of the guide: logs say inventory_calls = items_returned on 1.8.0 and 1 on 1.7.9
    logs = case.sql("""select attributes['version'] as v, count(*),
                              avg((attributes['inventory_calls'] = attributes['items_returned'])::int),
                              max(attributes['inventory_calls']::int)
                       from logs where body = 'search completed' group by v order by v""").rows()
    assert logs[0][0] == "1.7.9" and logs[0][3] == 1
    assert logs[1][0] == "1.8.0" and logs[1][2] == 1.0


def test_n_plus_one_subtle_is_near_the_threshold(loaded):
    case, truth = loaded("n_plus_one", subtle=True)
    med = case.sql("""select median(n) from (select parent_span_id, count(*) as n from spans
                      where kind = 'client' and peer_service = 'inventory-service' and service_version = '1.8.0'
                        and parent_span_id in (select span_id from spans where name = 'GET /search')
                      group by 1)""").scalar()
    assert 5 <= med <= 9 and med == truth.expected[0]["numbers"]["calls_per_request_after"]


def test_retry_storm_outbound_rises_while_inbound_is_flat(loaded):
    case, truth = loaded("retry_storm")
    exp = truth.expected[0]
    start, end = _ts(exp["start_time"]), _ts(exp["end_time"])
    rows = case.sql("""
        select (start_time >= ? and start_time < ?) as during,
               count(*) filter (where parent_span_id is null) as inbound,
               count(*) filter (where kind = 'client' and peer_service = 'pricing-service') as outbound,
               count(*) filter (where kind = 'client' and peer_service = 'pricing-service'
                                and attributes['http.resend_count'] is not null) as resent
        from spans where start_time < ? group by 1 order by 1""", [start, end, end]).rows()
    (_, in_b, out_b, _), (_, in_d, out_d, resent) = rows
    secs_b = (start - _ts(truth.window["start"])).total_seconds()
    secs_d = (end - start).total_seconds()
    assert (out_d / in_d) > 1.6 * (out_b / in_b)                     # outbound per inbound grows
    assert 0.7 < (in_d / secs_d) / (in_b / secs_b) < 1.6              # inbound rate roughly flat
    assert resent > 0
    # api-gateway retries without the attribute; catalog-service sets it
    gw = case.sql("""select count(*) from spans where service = 'api-gateway' and kind = 'client'
                     and attributes['http.resend_count'] is not null""").scalar()
    assert gw == 0
    attempts = case.sql("""select max(n) from (select parent_span_id, name, count(*) as n from spans
                           where kind = 'client' and peer_service = 'pricing-service' and start_time >= ?
                           and start_time < ? and service = 'api-gateway' group by 1, 2)""", [start, end]).scalar()
    assert attempts == exp["numbers"]["max_attempts"]


def test_bimodal_latency_second_mode_at_the_pool_timeout(loaded):
    case, truth = loaded("bimodal_latency")
    exp = truth.expected[0]
    n, lo, hi, msg = case.sql("""
        select count(*), min(duration_ms), max(duration_ms), min(status_message) from spans
        where service = 'catalog-service' and kind = 'server' and status = 'error'
          and status_message like 'timeout acquiring connection%'""").rows()[0]
    assert n == exp["numbers"]["timed_out_requests"] and n > 10
    assert 1000 <= lo and hi <= 1150 and msg == exp["numbers"]["error_message"]
    waits = case.sql("""select count(*), min(duration_ms), max(duration_ms) from spans
                        where name = 'HikariPool.getConnection' and status = 'error'""").rows()[0]
    assert waits[0] == n and 1000 <= waits[1] and waits[2] <= 1002.5
    fast = case.sql("""select quantile_cont(duration_ms, 0.5) from spans where service = 'catalog-service'
                       and kind = 'server' and name = 'GET /item/{id}' and status <> 'error'""").scalar()
    assert fast < 200                                                        # the first mode is far below
    logs = case.sql("select count(*) from logs where body like 'timeout acquiring connection%'").scalar()
    assert logs == n


def test_version_regression_new_error_only_in_canary(loaded):
    case, truth = loaded("version_regression")
    exp = truth.expected[0]
    rows = case.sql("""select service_version, count(*) filter (where status_message = ?),
                              quantile_cont(duration_ms, 0.5), count(distinct host_name)
                       from spans where service = 'pricing-service' and kind = 'server' and start_time >= ?
                       group by 1 order by 1""", [exp["numbers"]["new_error"], _ts(exp["start_time"])]).rows()
    (v_old, npe_old, p50_old, hosts_old), (v_new, npe_new, p50_new, hosts_new) = rows
    assert (v_old, v_new) == ("2.3.1", "2.4.0") and npe_old == 0 and npe_new > 0
    assert npe_new == exp["numbers"]["new_error_count_canary"]
    assert p50_new > 2 * p50_old and hosts_new == 1 and hosts_old == 9


def test_cache_stampede_db_spikes_align_with_ttl(loaded):
    case, truth = loaded("cache_stampede", traces=1500)
    exp = truth.expected[0]
    ttl, window = exp["numbers"]["ttl_s"], exp["numbers"]["window_s"]
    inside, outside = case.sql("""
        with d as (select epoch(start_time) - epoch(?::timestamptz) as s from spans
                   where service = 'catalog-service' and db_system = 'postgresql')
        select count(*) filter (where s >= ? and s % ? < ?), count(*) filter (where not (s >= ? and s % ? < ?)) from d""",
        [_ts(truth.window["start"]), ttl, ttl, window, ttl, ttl, window]).rows()[0]
    n_windows = len(exp["numbers"]["expiry_times"])
    rate_in = inside / (n_windows * window)
    rate_out = outside / (5400 - n_windows * window)
    assert rate_in > 2 * rate_out
    assert rate_in == pytest.approx(exp["numbers"]["db_calls_per_s_in_windows"], rel=0.05)


def test_poison_pill_same_message_fails_repeatedly(loaded):
    case, truth = loaded("poison_pill")
    exp = truth.expected[0]
    mid = exp["numbers"]["message_id"]
    n, errors, traces = case.sql("""select count(*), count(*) filter (where status = 'error'), count(distinct trace_id)
                                    from spans where kind = 'consumer' and messaging_message_id = ?""", [mid]).rows()[0]
    assert n == errors == exp["numbers"]["deliveries"] > 50 and traces == 1
    other = case.sql("""select max(n) from (select messaging_message_id, count(*) as n from spans
                        where kind = 'consumer' and messaging_message_id <> ? group by 1)""", [mid]).scalar()
    assert other == 1
    logs = case.sql("select count(*) from logs where attributes['message_id'] = ? and severity = 'error'", [mid]).scalar()
    assert logs == n


def test_clock_skew_children_start_before_parents_only_around_one_host(loaded):
    case, truth = loaded("clock_skew")
    host, skew = truth.expected[0]["numbers"]["host"], truth.expected[0]["numbers"]["skew_ms"]
    rows = case.sql("""select p.host_name as ph, c.host_name as ch,
                              epoch_ms(c.start_time) - epoch_ms(p.start_time) as lead_ms
                       from spans c join spans p on c.parent_span_id = p.span_id and c.trace_id = p.trace_id
                       where c.start_time < p.start_time""").rows()
    assert rows and all(host in (ph, ch) for ph, ch, _ in rows)
    assert min(lead for *_, lead in rows) > -skew - 5


def test_clean_has_no_fault(loaded):
    case, truth = loaded("clean")
    assert truth.expected == []
    fanout = case.sql("""select max(n) from (select parent_span_id, peer_service, count(*) as n from spans
                         where kind = 'client' and peer_service not in ('redis', 'postgres') group by 1, 2)""").scalar()
    assert fanout < 5                                  # small per-variant batches, no N+1
    retries = case.sql("select count(*) from spans where attributes['http.resend_count'] = '1'").scalar()
    bad = case.sql("select count(*) from spans where status_message like '%NullPointer%' or status_message like 'timeout acquiring%'").scalar()
    assert bad == 0 and retries >= 0
    skew = case.sql("""select count(*) from spans c join spans p on c.parent_span_id = p.span_id
                       where c.start_time < p.start_time""").scalar()
    assert skew == 0
