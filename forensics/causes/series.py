"""How far a signal moved: the window's per-bucket values against the baseline's.

Each signal is a series of per-bucket values (a mean self time, an error share, a log template's
share, a metric's mean) in the baseline and in the window, cut at the same bucket width. Its
shift is a robust z score::

    z = (median(window buckets) - median(baseline buckets)) / scale

(for rates and counts, :data:`POOLED_FAMILIES`, the pooled mean of each period instead of
its median bucket) where ``scale`` is the largest of: the baseline buckets' spread (1.4826 x MAD: how much the
signal wanders when nothing is wrong, sampling noise at that bucket size included), the
sampling noise of a window bucket (the per-observation SD over the square root of the window's
median bucket count: thin traffic in the window is not mistaken for a change), and a floor per
family in the signal's own unit (:data:`FLOORS`), so that a perfectly flat baseline does not make
a trivial change infinite (metrics: 10 % of the larger level, or the metric's resolution: one tick
of a counter over its sampling interval). Comparing bucket medians, a handful of outliers in either period
does not move the score; a shift that holds over the window does. This is the robust scoring of
BARO (Pham et al., FSE 2024) applied to per-service signals that exclude inherited time. A
shift that most services went through together (the machine slowed down) is then taken away
(:func:`without_common_shift`): the cause is what moved more than its peers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats.robust import MAD_TO_SD

#: floor of the scale, per family, in the family's unit: ln(1 + ms) for times (0.1: ~10 %, or
#: ~0.1 ms for sub-millisecond steps, is within the noise of a shared machine),
#: share (0-1) for errors and log templates, calls per parent span, and the metric's own
#: unit relative to its baseline level (``REL_FLOORS``)
FLOORS = {"self_time": 0.1, "service_time": 0.1, "pod_time": 0.1, "gap": 0.1, "dependency": 0.1,
          "errors": 0.002, "calls": 0.05, "call_ops": 0.05, "follow_ups": 0.05, "logs": 0.002, "log_volume": 0.02, "metrics": 1e-9}
#: floor of the scale relative to the baseline level |median|, per family
REL_FLOORS = {"calls": 0.05, "call_ops": 0.05, "follow_ups": 0.05, "metrics": 0.1, "log_volume": 0.05}
#: families whose relative floor applies to the larger of the two levels, not the baseline's:
#: a metric at 0 in the baseline (a counter that did not tick) is not infinitely far from 0.003
PEAK_RELATIVE = ("metrics",)
#: time families and the families whose per-service shifts estimate what they all went through
COMMON_SHIFT = {("self_time", "service_time", "pod_time"): ("service_time",), ("gap", "dependency"): ("gap", "dependency")}
#: services needed before a shift shared by most of them is taken away
MIN_PEERS = 3
#: families whose values are shares (0-1): their sampling SD is sqrt(p (1 - p))
RATE_FAMILIES = ("errors", "logs")
#: families whose level in a period is the pooled mean (sum of value x n over sum of n), not the
#: median bucket: rare events (3 % errors in buckets of 30) leave most buckets at 0
POOLED_FAMILIES = ("errors", "logs", "calls", "call_ops", "follow_ups")
#: largest |z| reported (a new error type against none in the baseline is "very large", not 10^9)
Z_CAP = 10_000.0

#: families of calls timed outside their callee, with the calling service as ``caller``
CALL_FAMILIES = ("gap", "dependency")
#: kinds of calls a service takes part in (each of its callees, and the calls it answers) that must
#: all have slowed, beyond the common shift, for the part they share to be the service's
#: (:func:`without_caller_shift`): with one, caller and callee cannot be told apart
MIN_WITNESSES = 2

COLUMNS = ("family", "service", "key", "base", "win", "z", "scale", "shift", "n_base", "n_win", "buckets_base",
           "buckets_win", "caller")


def with_pod_baselines(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` where each ``pod_time`` key (a pod, window buckets only) gets its service's
    ``service_time`` baseline buckets: a pod is compared with the service as it was (pods are
    replaced at a deploy, so a pod of the window often has no baseline of its own)."""
    pods = frame[frame["family"] == "pod_time"][["service", "key"]].drop_duplicates()
    if pods.empty:
        return frame
    base = frame[(frame["family"] == "service_time") & ~frame["w"]].drop(columns=["key", "family"])
    base = base.merge(pods, on="service").assign(family="pod_time")
    return pd.concat([frame, base[frame.columns]], ignore_index=True)


def compare_buckets(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (family, service, key): baseline and window levels and the robust z of the shift.

    Parameters
    ----------
    frame:
        Columns ``family``, ``service``, ``key``, ``w`` (bool: window bucket), ``bucket``,
        ``n`` (observations in the bucket), ``value`` (the bucket's value), ``sd`` (SD of
        the observations within the bucket, NaN when not applicable) and, optionally, ``res``
        (the resolution of the measurement, in the value's unit: a floor of the scale).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: ``base``/``win`` (median bucket value in the baseline / the
        window, in the family's unit), ``z`` (see the module docs; NaN when either period has no
        bucket), ``n_base``/``n_win`` (observations), ``buckets_base``/``buckets_win``, ``caller``;
        with a row per caller whose calls all slowed on its side (:func:`without_caller_shift`).
    """
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    keys = ["family", "service", "key"]
    f = frame[np.isfinite(frame["value"].to_numpy(dtype=float))]
    f = f.assign(res=f["res"].astype(float) if "res" in f.columns else np.nan)
    b, w = f[~f["w"].astype(bool)], f[f["w"].astype(bool)]
    gb = b.groupby(keys, sort=False)
    base = gb.agg(base=("value", "median"), n_base=("n", "sum"), buckets_base=("value", "size"),
                  sd=("sd", "median"), res=("res", "max"))
    dev = (b["value"] - gb["value"].transform("median")).abs()
    base["mad"] = MAD_TO_SD * dev.groupby([b[k] for k in keys], sort=False).median()
    base["k"] = (b["value"] * b["n"]).groupby([b[k] for k in keys], sort=False).sum()
    win = w.groupby(keys, sort=False).agg(win=("value", "median"), n_win=("n", "sum"),
                                          buckets_win=("value", "size"), n_med=("n", "median"))
    win["k_w"] = (w["value"] * w["n"]).groupby([w[k] for k in keys], sort=False).sum()
    out = base.join(win, how="outer").reset_index()
    if "caller" in f.columns:
        callers = f.dropna(subset=["caller"]).drop_duplicates(keys)[[*keys, "caller"]]
        out = out.merge(callers, on=keys, how="left")
    else:
        out["caller"] = None
    pooled = out["family"].isin(POOLED_FAMILIES)
    out.loc[pooled, "base"] = out.loc[pooled, "k"] / out.loc[pooled, "n_base"].where(out.loc[pooled, "n_base"] > 0)
    out.loc[pooled, "win"] = out.loc[pooled, "k_w"] / out.loc[pooled, "n_win"].where(out.loc[pooled, "n_win"] > 0)
    for c in ("n_base", "n_win", "buckets_base", "buckets_win"):
        out[c] = out[c].fillna(0).astype(int)
    rate = out["family"].isin(RATE_FAMILIES).to_numpy()
    p = ((out["k"].fillna(0) + 1.0) / (out["n_base"] + 2.0)).clip(0, 1)  # Laplace: a clean baseline is not "never"
    unit_sd = np.where(rate, np.sqrt(p * (1.0 - p)), out["sd"].fillna(0.0))
    floors = out["family"].map(FLOORS).fillna(1e-9).to_numpy()
    level = np.where(out["family"].isin(PEAK_RELATIVE).to_numpy(),
                     np.maximum(out["base"].abs().fillna(0), out["win"].abs().fillna(0)), out["base"].abs().fillna(0))
    rel = out["family"].map(REL_FLOORS).fillna(0.0).to_numpy() * level
    # sampling noise: of a window bucket for the median-bucket families; of the difference of
    # the two pooled means (baseline and window, all their observations) for the pooled ones
    per_bucket = 1.0 / np.sqrt(np.maximum(out["n_med"].fillna(1).to_numpy(), 1))
    two_pools = np.sqrt(1.0 / np.maximum(out["n_base"].to_numpy(), 1) + 1.0 / np.maximum(out["n_win"].to_numpy(), 1))
    sampling = unit_sd * np.where(pooled.to_numpy(), two_pools, per_bucket)
    out["scale"] = np.maximum.reduce([out["mad"].fillna(0).to_numpy(), sampling, floors, rel,
                                      out["res"].fillna(0).to_numpy()])
    out["shift"] = 0.0
    out["z"] = np.clip((out["win"] - out["base"]) / out["scale"], -Z_CAP, Z_CAP)
    return without_caller_shift(without_common_shift(out))[list(COLUMNS)]


def without_common_shift(out: pd.DataFrame) -> pd.DataFrame:
    """``out`` with the change every service went through removed (``shift``, ``z`` updated).

    When a whole machine slows down (other processes take the CPU, a noisy neighbour), every
    service's own time, every call's time outside its callee and every process's CPU move
    together: none of them is *the* cause. So, with at least :data:`MIN_PEERS` services:

    - time families: the median over services (of each service's median over its keys) of the
      shift ``win - base`` is taken away from every key's shift (:func:`_beyond`): own time (``self_time``,
      ``service_time``, ``pod_time``) by the own-time median, time outside a callee (``gap``,
      ``dependency``) by theirs;
    - ``metrics``: per metric (name and labels but the pod), the median z over services is taken
      away from each service's z (:func:`_beyond`).

    A fault in one or two services leaves the median where it was; only a shift shared by most
    services is removed. ``shift`` records what was taken away (in the family's unit; in z for
    metrics).
    """
    if out.empty:
        return out
    for families, source in COMMON_SHIFT.items():
        rows = out["family"].isin(families)
        src = out[out["family"].isin(source)]
        per_service = (src["win"] - src["base"]).groupby(src["service"]).median().dropna()
        if len(per_service) >= MIN_PEERS:
            m = float(per_service.median())
            out.loc[rows, "shift"] = m
            moved = _beyond(out.loc[rows, "win"] - out.loc[rows, "base"], m)
            out.loc[rows, "z"] = np.clip(moved / out.loc[rows, "scale"], -Z_CAP, Z_CAP)
    met = out["family"] == "metrics"
    if met.any():
        name = out.loc[met, "key"].str.replace(r"\bpod=[^,}]*(, )?", "", regex=True)
        peers = out.loc[met].groupby(name)["service"].transform("nunique")
        m = out.loc[met, "z"].groupby(name).transform("median").where(peers >= MIN_PEERS, 0.0)
        out.loc[met, "shift"] = m
        out.loc[met, "z"] = _beyond(out.loc[met, "z"], m)
    return out


def _beyond(moved: pd.Series, common: float | pd.Series) -> pd.Series:
    """What of ``moved`` the ``common`` shift does not explain: a move in the common direction
    loses the common part (and stops at 0: moving less than one's peers is not moving the other
    way); a move against it stays whole (it got faster while everything slowed down)."""
    same = np.sign(moved) == np.sign(common)
    return moved.where(~same, np.sign(moved) * np.maximum(moved.abs() - np.abs(common), 0.0))


def without_caller_shift(out: pd.DataFrame) -> pd.DataFrame:
    """``out`` where the slowdown a caller's calls share is the caller's, not its callees'.

    A call's time outside its callee's server span (``gap``; all of a ``dependency`` call's
    time) is charged to the callee: a delay on its network or in its queue shows only there.
    But the caller's side of the call is in it too: sending the request and reading the answer
    take longer when the *caller* waits for the CPU. A callee's delay slows the calls to it
    from all its callers; a service slow on its side slows every call it takes part in: those
    it makes to each of its callees and those it answers (they wait before its server span
    starts). So, per caller with at least :data:`MIN_WITNESSES` of these (its callees, and the
    calls to it when it has callers): the least any of them moved (each one's median over its
    keys, beyond the common shift) is what all its calls went through; it is taken away from
    each call it makes (:func:`_beyond`, ``shift`` updated) and becomes a row of family
    ``caller_gap`` for the caller (key: what it was seen on, ``base``/``win``: its calls' median
    baseline level and that level moved by the caller's share, z over their median scale). A
    caller of one callee that nothing calls cannot be told from that callee: the callee keeps
    it all.
    """
    calls = out[out["family"].isin(CALL_FAMILIES) & out["caller"].notna() & np.isfinite(out["z"].astype(float))]
    if calls.empty:
        return out
    moved = calls["z"] * calls["scale"]
    per_callee = moved.groupby([calls["caller"], calls["service"]]).median()
    gaps = calls["family"] == "gap"
    answered = moved[gaps].groupby(calls.loc[gaps, "service"]).median()  # the calls each service answers
    rows = []
    for caller, g in per_callee.groupby(level=0):
        witnesses = list(g.to_numpy()) + ([float(answered[caller])] if caller in answered.index else [])
        share = float(min(witnesses))
        if len(witnesses) < MIN_WITNESSES or share <= 0:
            continue
        mine = calls[calls["caller"] == caller]
        out.loc[mine.index, "shift"] = out.loc[mine.index, "shift"] + share
        out.loc[mine.index, "z"] = np.clip(_beyond(moved[mine.index], share) / mine["scale"], -Z_CAP, Z_CAP)
        scale, base = float(mine["scale"].median()), float(mine["base"].median())
        seen = f"calls to {len(g)} callee{'s' if len(g) > 1 else ''}" + (
            " and the calls it answers" if caller in answered.index else "")
        rows.append({"family": "caller_gap", "service": caller, "key": seen, "base": base,
                     "win": base + share, "z": min(share / scale, Z_CAP), "scale": scale, "shift": 0.0,
                     "n_base": int(mine["n_base"].sum()), "n_win": int(mine["n_win"].sum()),
                     "buckets_base": int(mine["buckets_base"].max()), "buckets_win": int(mine["buckets_win"].max()),
                     "caller": caller})
    return pd.concat([out, pd.DataFrame(rows)], ignore_index=True) if rows else out
