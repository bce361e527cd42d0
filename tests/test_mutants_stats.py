"""fastinv.linalg.stats: tests that kill the mutants the other stats tests let survive
(issue 15; docs/testing.md "Mutation testing"). Values are checked against tests/naive.py or
closed forms on small cases where the answer is known exactly."""

import warnings

import numpy as np
import pytest
from naive import (
    naive_partial_spearman,
    naive_pearson,
    naive_percentile_bootstrap,
    naive_relative_error,
)

from fastinv.errors import FastinvError
from fastinv.linalg.stats import correlate, partial_spearman, relative_error, spearman


@pytest.fixture
def strict():
    """Any warning (numpy's invalid-value, scipy's constant-input) is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_relative_error_equals_naive():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4, 3))
    Xhat = X + 0.1 * rng.standard_normal((4, 3))
    assert relative_error(Xhat, X) == pytest.approx(naive_relative_error(Xhat, X), rel=1e-13)
    # closed form: Xhat = 2X gives exactly 1, Xhat = X gives 0
    assert relative_error(2 * X, X) == pytest.approx(1.0, rel=1e-14)
    assert relative_error(X, X) == 0.0
    # lists are accepted (integers converted)
    assert relative_error([[3, 0]], [[0, 4]]) == pytest.approx(5.0 / 4.0, rel=1e-15)


def test_relative_error_floor():
    X = np.array([[3.0, 4.0]])  # ‖X‖ = 5
    Xhat = np.array([[3.0, 5.0]])  # ‖Xhat − X‖ = 1
    assert relative_error(Xhat, X, floor=1e-300) == pytest.approx(0.2, rel=1e-15)
    assert relative_error(Xhat, X, floor=10.0) == pytest.approx(0.1, rel=1e-15)
    assert relative_error(Xhat, X, floor=10.0) == pytest.approx(
        naive_relative_error(Xhat, X, floor=10.0), rel=1e-15
    )
    zero = np.zeros((1, 2))
    assert relative_error(Xhat, zero, floor=1e-300) == pytest.approx(
        np.sqrt(34.0) / 1e-300, rel=1e-14
    )


def test_relative_error_bad_input_messages():
    with pytest.raises(FastinvError, match=r"same shape, got \(1, 2\) and \(2, 1\)"):
        relative_error(np.ones((1, 2)), np.ones((2, 1)))
    with pytest.raises(FastinvError, match="^Xhat must be a real numeric array"):
        relative_error("abc", np.ones(3))
    with pytest.raises(FastinvError, match="^X must be a real numeric array"):
        relative_error(np.ones(3), "abc")


def test_columns_messages():
    with pytest.raises(FastinvError, match=r"^column 1 must be a 1-D array, got shape \(3, 2\)"):
        spearman(np.ones((3, 2)), [1.0, 2.0, 3.0])
    with pytest.raises(FastinvError, match=r"^column 2 must be a 1-D array"):
        spearman([1.0, 2.0, 3.0], np.ones((3, 2)))
    with pytest.raises(FastinvError, match=r"^column 3 must be a 1-D array"):
        partial_spearman([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], np.ones((3, 1)))
    with pytest.raises(FastinvError, match=r"same length, got \[3, 4\]"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])


def test_spearman_ties_with_rank_std_one(strict):
    """x = [0, 0, 1, 1] has average ranks [1.5, 1.5, 3.5, 3.5], whose std is exactly 1 (a
    constant-column check that compares with 1 instead of 0 would return NaN)."""
    x, y = [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 2.0, 3.0]
    # closed form: corr([-1, -1, 1, 1], [-3, -1, 1, 3]) = 8 / sqrt(4 · 20)
    expected = 8.0 / np.sqrt(80.0)
    assert spearman(x, y) == pytest.approx(expected, abs=1e-14)
    assert spearman(y, x) == pytest.approx(expected, abs=1e-14)
    # one constant column: NaN, without a numpy warning
    assert np.isnan(spearman([2.0, 2.0, 2.0], [1.0, 3.0, 2.0]))
    assert np.isnan(spearman([1.0, 3.0, 2.0], [2.0, 2.0, 2.0]))


def test_partial_spearman_exact_small_cases(strict):
    """z = [0, 0, 1, 1] (rank std exactly 1); x = [0, 2, 1, 3] leaves residuals ±1 (std
    exactly 1), y = [0, 1, 2, 3] residuals ±0.5: the partial correlation is exactly 1, while
    the plain Spearman ρ(x, y) is 0.8."""
    x, y, z = [0.0, 2.0, 1.0, 3.0], [0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 1.0, 1.0]
    assert naive_partial_spearman(x, y, z) == pytest.approx(1.0, abs=1e-14)
    assert partial_spearman(x, y, z) == pytest.approx(1.0, abs=1e-12)
    assert partial_spearman(y, x, z) == pytest.approx(1.0, abs=1e-12)
    assert spearman(x, y) == pytest.approx(0.8, abs=1e-14)
    # x equal to z: its residual is exactly zero, the partial correlation undefined (NaN)
    assert np.isnan(partial_spearman(z, y, z))
    assert np.isnan(partial_spearman(y, z, z))


def test_partial_spearman_equals_naive_with_ties():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 5, 25).astype(float)
    y = x + rng.integers(0, 3, 25)
    z = rng.integers(0, 4, 25).astype(float)
    assert partial_spearman(x, y, z) == pytest.approx(naive_partial_spearman(x, y, z), abs=1e-12)


def test_correlate_defaults_are_2000_draws_seed_0():
    """The documented defaults: n_boot=2000, level=0.95, seed=0 (the interval at explicit
    arguments is checked against the naive percentile bootstrap below and in test_stats)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(9)
    y = x + rng.standard_normal(9)
    c = correlate(x, y)
    ref = correlate(x, y, n_boot=2000, level=0.95, seed=0)
    assert (c.ci_low, c.ci_high) == (ref.ci_low, ref.ci_high)
    lo, hi = naive_percentile_bootstrap(x, y, n_boot=300, level=0.9, seed=4)
    c = correlate(x, y, n_boot=300, level=0.9, seed=4)
    assert (c.ci_low, c.ci_high) == pytest.approx((lo, hi), abs=1e-12)


def test_correlate_accepts_none_as_missing_and_exactly_three():
    """JSON null (None) rows count as missing and are dropped, in x, y and the control;
    three finite rows are enough."""
    x = [1.0, None, 2.0, 3.0, 4.0]
    y = [1.0, 2.0, 3.0, 5.0, None]
    c = correlate(x, y, n_boot=20)
    assert c.n == 3 and c.rho == pytest.approx(1.0, abs=1e-14)
    z = [4.0, 1.0, None, 3.0, 2.0]
    c = correlate([1.0, 2.0, 3.0, 4.0, 6.0], [1.0, 3.0, 2.0, 4.0, 5.0], control=z, n_boot=20)
    assert c.n == 4
    xs, ys, zs = [1.0, 2.0, 4.0, 6.0], [1.0, 3.0, 4.0, 5.0], [4.0, 1.0, 3.0, 2.0]
    assert c.rho == pytest.approx(1.0, abs=1e-14)
    assert c.partial_rho == pytest.approx(naive_partial_spearman(xs, ys, zs), abs=1e-12)
    three = correlate([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], n_boot=20)
    assert three.n == 3
    assert three.rho == pytest.approx(naive_pearson([1, 2, 3], [1, 3, 2]), abs=1e-14)
    assert three.rho == pytest.approx(0.5, abs=1e-14)


def test_correlate_constant_column_gives_nan_without_warnings(strict):
    c = correlate([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], n_boot=20)
    assert np.isnan(c.rho) and np.isnan(c.p_value)
    assert np.isnan(c.ci_low) and np.isnan(c.ci_high) and c.n == 4
