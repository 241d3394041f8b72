"""forensics.stats on synthetic data with known answers."""
import numpy as np
import pytest

from forensics.stats import change_points, dip_test, rate_change_points, rate_split_deviance, robust_z, two_mode_mixture


def test_dip_test_unimodal_lognormal_is_not_rejected():
    rng = np.random.default_rng(3)
    dip, p = dip_test(np.log(rng.lognormal(4.0, 0.4, 2000)))
    assert 0 <= dip < 0.02 and p > 0.05


def test_dip_test_timeout_mode_is_rejected():
    rng = np.random.default_rng(4)
    ms = np.r_[rng.lognormal(np.log(80), 0.3, 850), rng.normal(1000, 5, 150)]
    dip, p = dip_test(np.log(ms))
    assert p < 0.01 and dip > 0.02


@pytest.mark.parametrize("values", [[], [1.0], [1.0, 2.0, 3.0], [5.0] * 50, [np.nan, np.inf, 1.0]])
def test_dip_test_degenerate_input(values):
    assert dip_test(np.array(values)) == (0.0, 1.0)


def test_two_mode_mixture_recovers_modes_and_split():
    rng = np.random.default_rng(5)
    ms = np.r_[rng.lognormal(np.log(80), 0.3, 850), rng.normal(1000, 5, 150)]
    m = two_mode_mixture(np.log(ms), seed=0)
    assert m is not None and m.n == 1000
    assert np.exp(m.means[0]) == pytest.approx(80, rel=0.1)
    assert np.exp(m.means[1]) == pytest.approx(1000, rel=0.01)
    assert m.weights[1] == pytest.approx(0.15, abs=0.01)
    assert m.sds[1] < 0.02  # tight: a timeout
    assert m.bic_delta > 100 and m.separation > 2
    assert 200 < np.exp(m.split) < 990  # between the modes
    assert two_mode_mixture(np.log(ms), seed=0) == m  # deterministic


def test_two_mode_mixture_unimodal_prefers_one_component():
    rng = np.random.default_rng(6)
    m = two_mode_mixture(rng.normal(4, 0.4, 3000), seed=0)
    assert m.bic_delta < 10 or m.separation < 2


def test_two_mode_mixture_too_few_or_constant():
    assert two_mode_mixture(np.array([1.0, 2.0])) is None
    assert two_mode_mixture(np.full(100, 3.0)) is None


def test_robust_z_ignores_outlier_and_keeps_nan():
    z = robust_z(np.array([10.0, 11.0, 9.0, 10.0, 100.0, np.nan]))
    assert z[0] == 0 and z[4] > 50 and np.isnan(z[5])
    assert robust_z(np.array([])).size == 0
    assert robust_z(np.full(5, 2.0)).tolist() == [0.0] * 5


def test_robust_z_mad_zero_falls_back_to_mean_deviation():
    z = robust_z(np.array([1.0, 1.0, 1.0, 1.0, 9.0]))
    assert z[-1] == pytest.approx(8 / (1.2533 * 1.6)) and z[0] == 0


def test_change_points_finds_level_shifts():
    rng = np.random.default_rng(7)
    series = np.r_[rng.poisson(100, 60), rng.poisson(160, 40), rng.poisson(100, 50)].astype(float)
    cps = change_points(series)
    assert len(cps) == 2
    assert abs(cps[0] - 60) <= 1 and abs(cps[1] - 100) <= 1


def test_change_points_noise_only_and_short_series():
    rng = np.random.default_rng(8)
    assert change_points(rng.normal(50, 3, 200)) == []
    assert change_points(np.array([1.0, 9.0])) == []
    assert change_points(np.array([np.nan] * 10)) == []


def test_rate_change_points_finds_a_new_failure_rate_and_its_end():
    rng = np.random.default_rng(9)
    n = rng.poisson(8, 60).astype(float)  # thin traffic: 8 requests per step
    p = np.r_[np.full(25, 0.0), np.full(20, 0.3), np.full(15, 0.0)]
    k = rng.binomial(n.astype(int), p).astype(float)
    cps = rate_change_points(k, n)
    assert len(cps) == 2 and abs(cps[0] - 25) <= 2 and abs(cps[1] - 45) <= 2
    assert rate_split_deviance(k[:45], n[:45], cps[0]) > 3 * np.log(45)


def test_rate_change_points_sporadic_failures_and_short_or_empty_series():
    rng = np.random.default_rng(10)
    n = rng.poisson(20, 200).astype(float)
    assert rate_change_points(rng.binomial(n.astype(int), 0.02).astype(float), n) == []  # a steady 2 %
    assert rate_change_points(np.array([0.0, 5.0]), np.array([10.0, 10.0])) == []
    assert rate_change_points(np.zeros(20), np.zeros(20)) == []  # no trials at all
    assert rate_split_deviance(np.zeros(10), np.full(10, 5.0), 5) == 0.0
