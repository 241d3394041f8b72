"""The signals under rank_causes, one behaviour at a time: requests' own time, calls that follow a
callee's answer, a shift every service shares, a metric's resolution, and the onset search."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import forensics
from forensics.causes import rank_causes
from forensics.causes.onset import onset_series
from forensics.causes.periods import Periods
from forensics.causes.series import compare_buckets, without_caller_shift, without_common_shift
from forensics.causes.spans import SpanSignals
from forensics.synth.builder import SpanBuilder

from .faultapp import BASE, _insert, capture

HALF_S = 120.0


def _periods() -> Periods:
    mid = BASE + timedelta(seconds=HALF_S)
    return Periods(mid, mid + timedelta(seconds=HALF_S), BASE, mid, "given")


def _shop(*, split: int = 1, follow_up: bool = False, seed: int = 1) -> forensics.Case:
    """``front`` answers ``GET /page`` by calling ``store`` ``GET /item``; ``store`` does ~4 ms
    of work cut into ``split`` in-process sqlite spans. In the second half with ``follow_up``,
    every other ``/page`` finds the answer wrong, logs a warning and asks ``store`` again for
    each of 3 items (``GET /item/<n>``)."""
    rng = np.random.default_rng(seed)
    b = SpanBuilder(BASE, seed=seed)
    logs = []

    def store(parent, t: float, route: str) -> float:
        work = float(rng.lognormal(np.log(4.0), 0.2))
        srv = b.span("store", f"GET {route}", kind="server", parent=parent, start_ms=t, duration_ms=work + 0.2,
                     attributes={"http.route": route})
        for i in range(split):
            b.span("store", "SELECT", kind="client", parent=srv, start_ms=t + 0.1 + i * work / split,
                   duration_ms=work / split, attributes={"db.system": "sqlite", "db.statement": "SELECT 1"})
        return t + work + 0.2

    def call(parent, t: float, route: str) -> float:
        ref = b.span("front", "GET", kind="client", parent=parent, start_ms=t, duration_ms=0.0,
                     attributes={"http.url": f"http://store:80{route}"})
        end = store(ref, t + 0.3, route) + 0.3
        row = next(r for r in reversed(b.rows) if r["span_id"] == ref.span_id)
        row["end_time"], row["duration_ms"] = BASE + timedelta(milliseconds=end), end - t
        return end

    for k, t in enumerate(np.arange(0.0, 2 * HALF_S * 1000, 250.0)):
        root = b.span("front", "GET /page", kind="server", start_ms=float(t), duration_ms=0.0)
        now = call(root, float(t) + 0.5, "/item")
        if follow_up and t >= HALF_S * 1000 and k % 2:
            logs.append({"time": BASE + timedelta(milliseconds=now + 0.2), "service": "front", "severity": "warn",
                         "body": "item list incomplete; asking again", "trace_id": root.trace_id,
                         "span_id": root.span_id, "source_file": "front.log", "source_line": len(logs) + 1})
            for i in range(3):
                now = call(root, now + 0.5, f"/item/{i}")
        row = b.rows[[r["span_id"] for r in b.rows].index(root.span_id)]
        row["end_time"], row["duration_ms"] = BASE + timedelta(milliseconds=now + 0.5), now + 0.5 - float(t)
    case = forensics.open_case()
    b.insert(case)
    if logs:
        _insert(case, "logs", logs)
        forensics.mine_templates(case)
    return case


def test_a_requests_own_time_is_the_sum_of_its_in_process_spans():
    case = _shop(split=4)
    with SpanSignals(case, _periods(), 12.0) as sig:
        times = sig.time_buckets()
    own = times[(times.family == "self_time") & (times.service == "store")]
    assert set(own.key) == {"GET /item"}  # keyed by the request's operation, not by its sqlite statements
    ms = np.expm1(own.value.median())
    assert 3.5 < ms < 5.0  # ~4 ms of work plus the server span's own 0.2 ms, however it is cut


def test_more_instrumented_steps_are_not_more_own_time():
    def store_ms(split: int) -> float:
        with SpanSignals(_shop(split=split), _periods(), 12.0) as sig:
            t = sig.time_buckets()
        return float(np.expm1(t[(t.family == "self_time") & (t.service == "store")].value.median()))

    assert store_ms(1) == pytest.approx(store_ms(8), rel=0.1)


def test_calls_after_a_masked_warning_are_the_callees_not_the_callers_pattern():
    case = _shop(follow_up=True)
    with SpanSignals(case, _periods(), 12.0) as sig:
        calls = sig.call_buckets()
    caller = calls[(calls.service == "front") & calls.family.isin(["calls", "call_ops"])]
    assert caller[caller.w].value.max() == pytest.approx(1.0)  # one call per page: the follow-ups left out
    follow = calls[calls.family == "follow_ups"]
    assert set(follow.service) == {"store"} and set(follow.key) == {"front GET /page"}
    assert follow[follow.w].value.mean() == pytest.approx(1.5, abs=0.2)  # 3 follow-ups on every other page
    causes = rank_causes(case, window=(BASE + timedelta(seconds=HALF_S), None))
    assert causes.top is not None and causes.top["service"] == "store", causes
    assert "calls it again after its answers" in causes.top["summary"]
    front = next(r for r in causes if r["service"] == "front")
    assert not front["strong"]


def test_without_follow_ups_nothing_moves():
    causes = rank_causes(_shop(), window=(BASE + timedelta(seconds=HALF_S), None))
    assert causes.top is None and not any(r["strong"] for r in causes)


def _compared(rows: list[tuple[str, str, float, float]], family: str = "service_time") -> pd.DataFrame:
    """A compare_buckets-shaped frame: (service, key, base, win) with scale 0.1."""
    return pd.DataFrame([{"family": family, "service": s, "key": k, "base": b, "win": w, "scale": 0.1,
                          "shift": 0.0, "z": (w - b) / 0.1} for s, k, b, w in rows])


def test_a_shift_every_service_shares_is_taken_away_but_never_reversed():
    out = without_common_shift(_compared([("a", "*", 1.0, 1.5), ("b", "*", 1.0, 1.5), ("c", "*", 1.0, 1.5),
                                          ("slow", "*", 1.0, 2.5), ("less", "*", 1.0, 1.2),
                                          ("faster", "*", 1.0, 0.8)])).set_index("service")
    assert out.loc["slow", "z"] == pytest.approx(10.0)  # 1.5 of shift, 0.5 of it shared
    assert out.loc["a", "z"] == 0 and out.loc["less", "z"] == 0  # slowed less than its peers: not "faster"
    assert out.loc["faster", "z"] == pytest.approx(-2.0)  # faster while all slowed down: kept whole
    assert np.allclose(out["shift"], 0.5)


def test_a_change_within_a_metrics_resolution_is_not_a_change():
    def frame(res: float | None) -> pd.DataFrame:
        rows = [{"family": "metrics", "service": "a", "key": "cpu system", "w": w, "bucket": i, "n": 1,
                 "value": (0.005 if w and i % 2 == 0 else 0.0), "sd": np.nan, "res": res}
                for w in (False, True) for i in range(10)]
        return pd.DataFrame(rows)

    coarse = compare_buckets(frame(0.005)).iloc[0]  # one 10 ms tick of a CPU counter sampled every 2 s
    assert coarse["scale"] == pytest.approx(0.005) and coarse["z"] <= 1.0
    fine = compare_buckets(frame(None)).iloc[0]
    assert fine["z"] > 5  # without its resolution the same wobble looks like a jump


# -- the onset ----------------------------------------------------------------------------------
def test_a_fault_behind_one_entry_point_moves_that_entry_points_own_series():
    case, app = capture("network_delay", "payment", seed=11)  # only POST /checkout (20 % of requests) calls it
    series, width_s, first = onset_series(case, BASE, BASE + timedelta(seconds=600))
    by_name = {s.name: s for s in series}
    own = by_name["entry latency of frontend POST /checkout"].steps()
    worse = [(cp, step) for cp, step, strength in own if step > 0.3 and strength >= 3]
    assert worse and abs(first + timedelta(seconds=worse[0][0] * width_s) - app.onset) < timedelta(seconds=3 * width_s)
    assert own[0][1] > 3 * max((s for _, s, _ in by_name["entry latency"].steps()), default=0.0)  # diluted in the mean
    causes = rank_causes(case)
    p = causes.periods
    assert p.how == "onset" and p.onset["series"].startswith("entry latency"), p.onset
    assert abs((p.window_start - app.onset).total_seconds()) < 3 * p.onset["bucket_s"]
    assert causes.top["service"] == "payment"


def test_masked_failures_are_found_as_a_change_of_the_span_error_rate():
    case, app = capture("exception", "payment", seed=11)  # checkout masks them: its callers see 200
    causes = rank_causes(case)
    p = causes.periods
    assert p.how == "onset" and "error rate" in p.onset["series"], p.onset
    assert abs((p.window_start - app.onset).total_seconds()) < 3 * p.onset["bucket_s"]
    assert causes.top["service"] == "payment"


def test_a_change_that_lasts_is_the_onset_not_a_sharper_blip():
    rng = np.random.default_rng(3)
    b = SpanBuilder(BASE, seed=3)
    for t in np.arange(0.0, 1200_000.0, 250.0):  # 20 min, 4 entries per second
        op = "GET /a" if int(t / 250) % 2 else "GET /b"
        ms = float(rng.lognormal(np.log(20.0), 0.1))
        if op == "GET /a" and 300_000 <= t < 320_000:
            ms *= 8  # a 20 s blip
        if op == "GET /b" and t >= 700_000:
            ms *= 2  # the incident: twice as slow from minute 11:40 on
        b.span("front", op, kind="server", start_ms=float(t), duration_ms=ms)
    case = forensics.open_case()
    b.insert(case)
    p = rank_causes(case).periods
    assert p.how == "onset" and abs((p.window_start - (BASE + timedelta(seconds=700))).total_seconds()) < 30, p.onset


def _caller_with_calls(pattern: list[tuple[str, bool]]) -> forensics.Case:
    """``front`` pages in the second half call the uninstrumented dependency ``store`` per
    ``pattern`` (URL path, failed), one after another; first-half pages make one good call."""
    b = SpanBuilder(BASE, seed=3)
    for t in np.arange(0.0, 2 * HALF_S * 1000, 250.0):
        calls = pattern if t >= HALF_S * 1000 else [("/item", False)]
        root = b.span("front", "GET /page", kind="server", start_ms=float(t), duration_ms=5.0 * len(calls) + 1)
        for i, (path, failed) in enumerate(calls):
            b.span("front", "GET", kind="client", parent=root, start_ms=float(t) + 0.5 + 5.0 * i, duration_ms=4.0,
                   status="error" if failed else "unset",
                   attributes={"http.url": f"http://store:80{path}", "http.status_code": 503 if failed else 200})
    case = forensics.open_case()
    b.insert(case)
    return case


def _follow_ups_per_page(pattern: list[tuple[str, bool]]) -> float:
    with SpanSignals(_caller_with_calls(pattern), _periods(), 12.0) as sig:
        calls = sig.call_buckets()
    follow = calls[(calls.family == "follow_ups") & calls.w]
    return float(follow.value.mean()) if len(follow) else 0.0


@pytest.mark.parametrize("pattern, retries", [
    ([("/item", True), ("/item", True), ("/item", False)], 2),      # two retries of a failed request
    ([("/a", True), ("/b", False), ("/c", False), ("/d", False)], 0),  # a loop over items: one failed
    ([("/item", True), ("/item", False), ("/item", False)], 1),     # a retry, then the same request again
])
def test_a_retry_is_a_call_right_after_a_failed_one_with_the_same_request(pattern, retries):
    assert _follow_ups_per_page(pattern) == pytest.approx(retries)


def _calls(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """A compare_buckets-shaped frame of gap rows (caller, callee, shift of ln ms) at scale 0.1."""
    return pd.DataFrame([{"family": "gap", "service": callee, "key": f"{caller} -> {callee} GET /x", "base": 2.0,
                          "win": 2.0 + d, "scale": 0.1, "shift": 0.0, "z": d / 0.1, "n_base": 50, "n_win": 50,
                          "buckets_base": 10, "buckets_win": 10, "caller": caller} for caller, callee, d in rows])


def test_what_all_of_a_callers_calls_went_through_is_the_callers():
    out = without_caller_shift(_calls([("front", "store", 0.6), ("front", "prices", 0.4), ("back", "store", 0.0)]))
    mine = out[out.family == "caller_gap"]
    assert list(mine.service) == ["front"] and mine.z.iloc[0] == pytest.approx(4.0)  # the least of its callees
    gaps = out[out.family == "gap"].set_index(["caller", "service"]).z
    assert gaps["front", "store"] == pytest.approx(2.0) and gaps["front", "prices"] == pytest.approx(0.0)
    assert gaps["back", "store"] == 0


def test_a_slow_callee_keeps_its_calls_and_one_callee_cannot_be_told_from_its_caller():
    one_slow = without_caller_shift(_calls([("front", "store", 0.6), ("front", "prices", 0.0)]))
    assert "caller_gap" not in set(one_slow.family)
    assert one_slow.set_index("service").z["store"] == pytest.approx(6.0)
    only = without_caller_shift(_calls([("front", "store", 0.6), ("back", "store", 0.6)]))
    assert "caller_gap" not in set(only.family) and np.allclose(only.z, 6.0)


def test_a_caller_slow_on_its_side_slows_the_calls_it_answers_too():
    # front calls only store; the calls front answers waited too: front is slow on its side
    out = without_caller_shift(_calls([("gw", "front", 0.5), ("front", "store", 0.6)]))
    mine = out[out.family == "caller_gap"]
    assert list(mine.service) == ["front"] and mine.z.iloc[0] == pytest.approx(5.0)
    gaps = out[out.family == "gap"].set_index(["caller", "service"]).z
    assert gaps["front", "store"] == pytest.approx(1.0) and gaps["gw", "front"] == pytest.approx(5.0)
    # a delay in front of front (its answers wait), its own call unchanged: nothing moves to it
    delayed = without_caller_shift(_calls([("gw", "front", 0.5), ("front", "store", 0.0)]))
    assert "caller_gap" not in set(delayed.family)
