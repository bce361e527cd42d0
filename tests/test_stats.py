"""fastinv.linalg.stats: Spearman, partial Spearman and the bootstrap interval."""

import numpy as np
import pytest
from scipy import stats as st

from fastinv.errors import FastinvError
from fastinv.linalg.stats import correlate, partial_spearman, spearman


@pytest.mark.parametrize("m", [3, 10, 57])
def test_spearman_equals_scipy(m, rng):
    x = rng.standard_normal(m)
    y = x + rng.standard_normal(m)
    assert spearman(x, y) == pytest.approx(st.spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_with_ties_equals_scipy(rng):
    x = rng.integers(0, 4, 40).astype(float)
    y = rng.integers(0, 3, 40) + 0.5 * x
    assert spearman(x, y) == pytest.approx(st.spearmanr(x, y).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))  # a constant column


def test_partial_spearman_removes_a_confounder(rng):
    # x and y are both driven by z and otherwise independent
    z = rng.standard_normal(2000)
    x = z + 0.3 * rng.standard_normal(2000)
    y = z + 0.3 * rng.standard_normal(2000)
    assert spearman(x, y) > 0.8
    assert abs(partial_spearman(x, y, z)) < 0.1
    # a real link that survives the control
    y2 = x + 0.3 * rng.standard_normal(2000)
    assert partial_spearman(x, y2, z) > 0.5


def test_partial_spearman_matches_residual_definition(rng):
    x, y, z = rng.standard_normal((3, 30))
    rx, ry, rz = (st.rankdata(v) for v in (x, y, z))
    Z = np.column_stack([np.ones(30), rz])
    ex = rx - Z @ np.linalg.lstsq(Z, rx, rcond=None)[0]
    ey = ry - Z @ np.linalg.lstsq(Z, ry, rcond=None)[0]
    assert partial_spearman(x, y, z) == pytest.approx(np.corrcoef(ex, ey)[0, 1], abs=1e-12)
    # a constant control changes nothing
    assert partial_spearman(x, y, np.ones(30)) == pytest.approx(spearman(x, y))


def test_correlate_interval_contains_rho_and_is_reproducible(rng):
    x = rng.standard_normal(40)
    y = x + rng.standard_normal(40)
    c = correlate(x, y, names=("a", "b"), n_boot=500, seed=3)
    assert (c.x, c.y, c.n) == ("a", "b", 40)
    assert c.ci_low <= c.rho <= c.ci_high
    assert c.rho == pytest.approx(st.spearmanr(x, y).statistic)
    assert c.p_value == pytest.approx(st.spearmanr(x, y).pvalue)
    assert c.excludes_zero and c.ci_low > 0
    c2 = correlate(x, y, names=("a", "b"), n_boot=500, seed=3)
    assert (c2.ci_low, c2.ci_high) == (c.ci_low, c.ci_high)
    d = c.to_dict()
    assert d["rho"] == c.rho and d["partial_rho"] is None


def test_correlate_control_nan_and_too_few(rng):
    z = rng.standard_normal(50)
    x = z + 0.2 * rng.standard_normal(50)
    y = z + 0.2 * rng.standard_normal(50)
    x[3] = np.nan
    c = correlate(x, y, control=z, control_name="samples", n_boot=200)
    assert c.n == 49 and c.partial_on == "samples"
    assert abs(c.partial_rho) < abs(c.rho)
    # independent columns: the interval includes zero
    u, v = rng.standard_normal((2, 60))
    assert not correlate(u, v, n_boot=500).excludes_zero  # fixed rng: deterministic
    with pytest.raises(FastinvError, match="at least 3"):
        correlate([1.0, 2.0], [2.0, 1.0])


def test_cluster_bootstrap_counts_runs_not_rows(rng):
    """5 identical checkpoints of each of 8 runs: resampling runs gives exactly the interval of
    the 8 distinct rows (Spearman is unchanged by replicating every point), while resampling
    rows pretends there are 40 independent models and narrows the interval."""
    x = rng.standard_normal(8)
    y = x + rng.standard_normal(8)
    rep = 5
    xr, yr, runs = np.repeat(x, rep), np.repeat(y, rep), np.repeat(np.arange(8), rep)
    one = correlate(x, y, n_boot=400, seed=1)
    clustered = correlate(xr, yr, groups=runs, n_boot=400, seed=1)
    rows = correlate(xr, yr, n_boot=400, seed=1)
    assert clustered.rho == pytest.approx(one.rho)
    assert (clustered.ci_low, clustered.ci_high) == pytest.approx((one.ci_low, one.ci_high))
    assert (clustered.n, clustered.n_groups, rows.n_groups) == (40, 8, 40)
    assert rows.ci_high - rows.ci_low < 0.8 * (clustered.ci_high - clustered.ci_low)
    # one group per row is the plain bootstrap, draw for draw
    plain = correlate(xr, yr, groups=np.arange(40), n_boot=400, seed=1)
    assert (plain.ci_low, plain.ci_high) == (rows.ci_low, rows.ci_high)
    # fewer than 3 independent runs: no interval
    two = correlate(xr, yr, groups=runs % 2, n_boot=100)
    assert np.isnan(two.ci_low) and np.isnan(two.ci_high) and two.n_groups == 2
    with pytest.raises(FastinvError, match="one label per row"):
        correlate(xr, yr, groups=runs[:-1])


def test_correlate_interval_is_the_naive_percentile_bootstrap():
    """The interval is the (2.5 %, 97.5 %) percentile of ρ over resampled rows (same draws),
    and 3 independent groups are enough for one (mutation-testing survivors)."""
    from naive import naive_spearman

    rng = np.random.default_rng(11)
    x = rng.standard_normal(9)
    y = x + rng.standard_normal(9)
    c = correlate(x, y, n_boot=400, level=0.95, seed=3)
    draws = np.random.default_rng(3)
    boots = []
    for _ in range(400):
        idx = draws.integers(0, 9, 9)
        if len(set(x[idx])) > 1 and len(set(y[idx])) > 1:
            boots.append(st.spearmanr(x[idx], y[idx]).statistic)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert (c.ci_low, c.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert c.rho == pytest.approx(naive_spearman(list(x), list(y)), abs=1e-12)
    groups = np.repeat(["a", "b", "c"], 3)
    g3 = correlate(x, y, groups=groups, n_boot=50, seed=0)
    assert g3.n_groups == 3 and np.isfinite(g3.ci_low) and np.isfinite(g3.ci_high)
