"""fastinv.linalg.estimators: tests that kill the mutants the other estimator tests let survive
(issue 15; docs/testing.md "Mutation testing"). Values are checked against tests/naive.py or
closed forms on small cases where the answer is known exactly."""

import json
import re
import warnings

import numpy as np
import pytest
from naive import (
    naive_gcv,
    naive_gcv_k,
    naive_landweber_noisy,
    naive_lcurve,
    naive_lmmse,
    naive_oracle,
    naive_oracle_k,
    naive_pinv,
    naive_tsvd,
)
from scipy.optimize import minimize_scalar

from fastinv.errors import FastinvError
from fastinv.linalg.estimators import (
    Projection,
    default_lambda_grid,
    filter_factors_landweber,
    filter_factors_tikhonov,
    filter_factors_tsvd,
    gcv_k,
    gcv_lambda,
    landweber,
    landweber_noisy,
    lcurve_lambda,
    lmmse,
    lmmse_from_samples,
    numerical_rank,
    oracle_k,
    oracle_lambda,
    pinv,
    thin_svd,
    tikhonov,
    tsvd,
)


def _orthonormal(m, r, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((m, r)))
    return q


def _matrix(s, m, n, seed=0):
    """(A, U, Vt) with A = U diag(s) Vt for orthonormal U (m, r), V (n, r)."""
    r = len(s)
    U, V = _orthonormal(m, r, seed), _orthonormal(n, r, seed + 1)
    return (U * np.asarray(s, float)) @ V.T, U, V.T


def test_filter_factor_argument_messages():
    s = np.array([3.0, 2.0, 1.0])
    with pytest.raises(FastinvError, match=r"^lam must be a finite number >= 0, got -1\.0$"):
        filter_factors_tikhonov(s, -1.0)
    with pytest.raises(FastinvError, match=r"^k must be an integer in \[0, 3\], got -1$"):
        filter_factors_tsvd(s, -1)
    with pytest.raises(FastinvError, match=r"^k must be an integer in \[0, 3\], got 4$"):
        filter_factors_tsvd(s, 4)
    # an integral float (from a JSON config) is accepted as the integer it is
    np.testing.assert_array_equal(filter_factors_tsvd(s, 2.0), [1.0, 1.0, 0.0])
    with pytest.raises(FastinvError, match=r"^k must be an integer in \[0, 3\], got 1\.5$"):
        filter_factors_tsvd(s, 1.5)


def test_pinv_rcond_against_closed_form():
    """s = (3, 2, 1): rcond = 0.5 keeps σ > 1.5 (two directions), rcond = 0 keeps all;
    a negative rcond is refused by name."""
    A, U, Vt = _matrix([3.0, 2.0, 1.0], 5, 3, seed=3)
    two = (Vt[:2].T / np.array([3.0, 2.0])) @ U[:, :2].T
    np.testing.assert_allclose(pinv(A, rcond=0.5), two, atol=1e-13)
    np.testing.assert_allclose(pinv(A, rcond=0.5), naive_tsvd(A, 2), atol=1e-13)
    np.testing.assert_allclose(pinv(A, rcond=0.0), naive_pinv(A), atol=1e-12)
    with pytest.raises(FastinvError, match=r"^rcond must be a finite number >= 0, got -0\.5$"):
        pinv(A, rcond=-0.5)


def test_pinv_default_cutoff_uses_max_of_m_and_n():
    """Default rcond = max(m, n)·eps with m = 100, n = 2: σ_2 = 50·eps·σ_1 lies below the
    cutoff (100·eps) and is dropped; min(m, n)·eps = 2·eps would keep it."""
    eps = np.finfo(np.float64).eps
    U, V = _orthonormal(100, 2, 7), _orthonormal(2, 2, 8)
    s = np.array([1.0, 50 * eps])
    expected = np.outer(V[:, 0], U[:, 0])
    np.testing.assert_allclose(pinv(svd=(U, s, V.T)), expected, atol=1e-14)
    # the transpose (m = 2, n = 100) drops it too
    np.testing.assert_allclose(pinv(svd=(V, s, U.T)), expected.T, atol=1e-14)


def test_given_svd_is_used_not_recomputed():
    """With ``svd=`` the estimators use that factorisation (one SVD serves all of them); we
    pass the SVD of B = 2A alongside A, so the result must be B's, not A's."""
    A, _, _ = _matrix([1.0, 0.5, 0.25], 4, 4, seed=5)
    svdB = thin_svd(2.0 * A)
    np.testing.assert_allclose(pinv(A, svd=svdB), naive_pinv(2.0 * A), atol=1e-12)
    np.testing.assert_allclose(
        landweber(A, 0.3, 4, svd=svdB), naive_landweber_noisy(2.0 * A, 0.3, 4, 0.0), atol=1e-12
    )
    np.testing.assert_allclose(
        landweber_noisy(A, 0.3, 4, 0.1, svd=svdB),
        naive_landweber_noisy(2.0 * A, 0.3, 4, 0.1),
        atol=1e-12,
    )


def test_landweber_defaults_closed_form():
    """Defaults η = 1, t = 1, ν = 0: one step from zero is W_1 = η Aᵀ; t = 2 gives
    2ηAᵀ − η²Aᵀ(AAᵀ + νI) (here η = 1, ν = 0)."""
    A, _, _ = _matrix([0.9, 0.5, 0.2], 4, 3, seed=9)
    np.testing.assert_allclose(landweber(A), A.T, atol=1e-14)
    np.testing.assert_allclose(landweber_noisy(A), A.T, atol=1e-14)
    two = 2.0 * A.T - A.T @ A @ A.T
    np.testing.assert_allclose(landweber_noisy(A, t=2), two, atol=1e-14)
    np.testing.assert_allclose(landweber_noisy(A, 1.0, 2), two, atol=1e-14)
    np.testing.assert_allclose(landweber(A, t=2), two, atol=1e-14)
    np.testing.assert_allclose(landweber(A, eta=0.5), 0.5 * A.T, atol=1e-14)


def test_divergent_landweber_message_and_no_numpy_warning():
    """σ_1 = 3, ν = 1, η = 0.25: η(σ_1² + ν) = 2.5 >= 2 and 1.5^5000 overflows. The error
    names that product exactly and what to do; numpy's overflow warning stays silent."""
    s = np.array([3.0, 1.0])
    msg = (
        r"^the gradient iteration diverges \(eta \* \(sigma_max\^2 \+ noise_var\) = 2\.5 >= 2\) "
        r"and overflows; use eta < 2 / \(sigma_max\^2 \+ noise_var\) or fewer steps$"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FastinvError, match=msg):
            filter_factors_landweber(s, 0.25, 5000, noise_var=1.0)
        A, _, _ = _matrix(s, 3, 2, seed=1)
        with pytest.raises(FastinvError, match=msg):
            landweber_noisy(A, 0.25, 5000, 1.0)
        # below the overflow the same divergent iteration is finite and equals the loop
        np.testing.assert_allclose(
            landweber_noisy(A, 0.25, 3, 1.0), naive_landweber_noisy(A, 0.25, 3, 1.0), rtol=1e-12
        )


def test_lcurve_norms_rectangular_with_residual_outside_range():
    """m = 7 > n = 3: part of y lies outside range(A) and adds ‖y − UUᵀy‖² to every
    squared residual; the L-curve norms equal the dense ones."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((7, 3))
    Y = rng.standard_normal((2, 7))
    lams = np.array([1e-2, 1e-1, 1.0, 10.0])
    pc = lcurve_lambda(A, Y, lambdas=lams, refine=False)
    rn, sn = naive_lcurve(A, Y, lams)
    np.testing.assert_allclose(pc.extra["residual_norm"], rn, rtol=1e-12)
    np.testing.assert_allclose(pc.extra["solution_norm"], sn, rtol=1e-12)


def test_tsvd_defaults_svd_and_messages():
    A, _, _ = _matrix([3.0, 2.0, 1.0], 4, 3, seed=2)
    np.testing.assert_allclose(tsvd(A), naive_tsvd(A, 1), atol=1e-13)  # default k = 1
    np.testing.assert_allclose(tsvd(A, 2.0), naive_tsvd(A, 2), atol=1e-13)  # integral float
    np.testing.assert_allclose(tsvd(A, 2, svd=thin_svd(2 * A)), naive_tsvd(2 * A, 2), atol=1e-13)
    with pytest.raises(FastinvError, match=r"^k must be an integer in \[0, 3\], got 4$"):
        tsvd(A, 4)


def test_lmmse_defaults_and_argument_names():
    """Defaults Σ_x = I, Σ_e = 0, μ = 0: for an invertible A the LMMSE estimator is A⁻¹."""
    A, _, _ = _matrix([2.0, 1.0, 0.5], 3, 3, seed=6)
    C, b = lmmse(A)
    np.testing.assert_allclose(C, np.linalg.inv(A), atol=1e-12)
    np.testing.assert_array_equal(b, np.zeros(3))
    Cn, bn = naive_lmmse(A, np.ones(3), np.eye(3), 0.1 * np.eye(3), 0.5 * np.ones(3))
    C, b = lmmse(A, 1.0, noise_cov=0.1, noise_mean=0.5)
    np.testing.assert_allclose(C, Cn, atol=1e-12)
    np.testing.assert_allclose(b, bn, atol=1e-12)
    for kw, what in (
        ({"prior_mean": np.ones(2)}, "prior_mean"),
        ({"noise_mean": np.ones(2)}, "noise_mean"),
    ):
        with pytest.raises(FastinvError, match=rf"^{what} must be a scalar or have shape \(3,\)"):
            lmmse(A, **kw)
    with pytest.raises(FastinvError, match=r"^prior_cov must be >= 0, got -1\.0$"):
        lmmse(A, prior_cov=-1.0)
    with pytest.raises(FastinvError, match=r"^noise_cov must be >= 0, got -1\.0$"):
        lmmse(A, noise_cov=-1.0)


def test_default_lambda_grid_closed_form():
    """num = 100 log-spaced λ from σ_min²·1e-2 to σ_max², σ_min guarded below by
    σ_max·max(m, n)·eps."""
    eps = np.finfo(np.float64).eps
    g = default_lambda_grid(np.array([4.0, 2.0, 1.0]))
    np.testing.assert_allclose(g, np.logspace(-2.0, np.log10(16.0), 100), rtol=1e-13)
    g = default_lambda_grid(np.array([2.0]))  # a single singular value is enough
    np.testing.assert_allclose(g, np.logspace(np.log10(4e-2), np.log10(4.0), 100), rtol=1e-13)
    g = default_lambda_grid(np.array([1.0, 0.0]), m=5, n=3)
    np.testing.assert_allclose(g[[0, -1]], [(5 * eps) ** 2 * 1e-2, 1.0], rtol=1e-12)
    with pytest.raises(FastinvError, match=r"^A is the zero matrix; no regularization parameter"):
        default_lambda_grid(np.array([0.0, 0.0]))


def test_tikhonov_default_is_the_inverse_and_lam_named():
    A, _, _ = _matrix([2.0, 1.0, 0.5], 3, 3, seed=8)
    np.testing.assert_allclose(tikhonov(A), np.linalg.inv(A), atol=1e-12)  # default λ = 0
    with pytest.raises(FastinvError, match=r"^lam must be a finite number >= 0, got -0\.1$"):
        tikhonov(A, -0.1)


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def test_lmmse_singular_messages():
    hint = (
        r"^A Σ_x Aᵀ \+ Σ_e is singular to working precision{}; give a positive noise level "
        r"\(noise_cov > 0\) or a prior covariance that makes it positive definite$"
    )
    with pytest.raises(FastinvError, match=hint.format(r" \(it is not positive definite\)")):
        lmmse(np.zeros((3, 3)))
    # K = A Aᵀ with eigenvalues 1 and 1e-16, rotated by 30°: positive definite, but its
    # reciprocal condition number (1-norm, about 6e-17) is below m·eps = 4.4e-16
    A = _rotation(np.pi / 6) @ np.diag([1.0, 1e-8])
    with pytest.raises(
        FastinvError, match=hint.format(r" \(reciprocal condition number [0-9.]+e-17\)")
    ):
        lmmse(A)


def test_lmmse_condition_test_uses_the_one_norm():
    """K = diag(1, 1, 1e-15): ‖K‖₁ = 1 and rcond = 1e-15 > 3·eps, so it is accepted (the sum of
    all |K_ij| would make it 5e-16 < 3·eps); C = A⁻¹."""
    A = np.diag([1.0, 1.0, np.sqrt(1e-15)])
    C, b = lmmse(A)
    np.testing.assert_allclose(C, np.diag(1.0 / np.diag(A)), rtol=1e-12)
    np.testing.assert_array_equal(b, np.zeros(3))


def test_lmmse_float32_in_float32_out():
    A, _, _ = _matrix([2.0, 1.0, 0.5], 3, 3, seed=10)
    Cn, bn = naive_lmmse(A, 0.5 * np.ones(3), np.eye(3), 0.1 * np.eye(3))
    C, b = lmmse(A.astype(np.float32), 0.5, noise_cov=0.1)
    assert (C.dtype, b.dtype) == (np.float32, np.float32)
    np.testing.assert_allclose(b, bn, atol=1e-5)
    np.testing.assert_allclose(C, Cn, atol=1e-5)


def test_gcv_k_rectangular_equals_naive():
    """m = 8 > n = 3: the residual outside range(A) enters every G(k), the denominator is
    (m − k)² with m the number of rows, and k = n (nothing truncated) is a candidate."""
    rng = np.random.default_rng(12)
    A = rng.standard_normal((8, 3))
    Y = rng.standard_normal((3, 8))
    pc = gcv_k(A, Y, ks=[1, 2, 3])
    np.testing.assert_allclose(pc.curve, naive_gcv_k(A, Y, [1, 2, 3]), rtol=1e-12)
    assert pc.value == int(np.argmin(naive_gcv_k(A, Y, [1, 2, 3]))) + 1
    with pytest.raises(FastinvError, match=r"^Y must"):
        gcv_k(A, np.ones((2, 5)))


def test_gcv_k_parameter_choice_fields():
    """method, parameter, index and at_boundary of every contiguous sub-grid of candidates
    agree with the naive GCV curve."""
    rng = np.random.default_rng(13)
    A = rng.standard_normal((10, 4)) @ np.diag([4.0, 2.0, 1.0, 0.5])
    X = rng.standard_normal((5, 4)) @ np.diag([1.0, 0.5, 0.1, 0.01])
    Y = X @ A.T + 0.2 * rng.standard_normal((5, 10))
    for lo in range(1, 5):
        for hi in range(lo, 5):
            ks = list(range(lo, hi + 1))
            ref = naive_gcv_k(A, Y, ks)
            i = int(np.argmin(ref))
            pc = gcv_k(A, Y, ks=ks)
            assert (pc.method, pc.parameter, pc.value, pc.index) == ("gcv", "k", ks[i], i)
            assert pc.at_boundary == (i in (0, len(ks) - 1))


def test_numerical_rank_closed_form():
    assert numerical_rank(np.array([]), 0, 0) == 0
    assert numerical_rank(np.array([0.0, 0.0]), 2, 2) == 0
    assert numerical_rank(np.array([2.0]), 1, 1) == 1
    assert numerical_rank(np.array([1.0, 0.0]), 2, 2) == 1
    # default cutoff 2·eps·σ_1 = 4.4e-13 for σ_1 = 1e3
    assert numerical_rank(np.array([1e3, 1e-13]), 2, 2) == 1
    assert numerical_rank(np.array([1e3, 1e-12]), 2, 2) == 2
    s = np.array([3.0, 2.0, 1.0])
    assert numerical_rank(s, 3, 3, rcond=0.5) == 2  # σ > 1.5
    assert numerical_rank(s, 3, 3, rcond=0.4) == 2  # σ > 1.2
    assert numerical_rank(np.array([2.0, 1.0]), 2, 2, rcond=0.5) == 1  # σ = 1 is not > 1


def test_zero_singular_values_give_zero_coefficients():
    """σ_i = 0 inside the kept directions contributes nothing (the 0/0 convention)."""
    U, V = _orthonormal(6, 6, 14), _orthonormal(6, 6, 15)
    s = np.array([2.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    expected = np.outer(V[:, 0], U[:, 0]) / 2.0 + np.outer(V[:, 1], U[:, 1])
    for _ in range(3):
        np.testing.assert_allclose(tsvd(svd=(U, s, V.T), k=6), expected, atol=1e-14)
        np.testing.assert_allclose(tikhonov(svd=(U, s, V.T)), expected, atol=1e-14)
        np.testing.assert_array_equal(filter_factors_tikhonov(np.zeros(500), 0.0), np.zeros(500))


def test_gcv_lambda_small_denominators_against_naive():
    """A = diag(3, 2, 1): at λ = 0.25 the trace term m − Σφ is 0.29 (< 1), at λ = 1e-40 every
    φ_i is 1 to rounding and G is 0/0, reported as +inf without numpy warnings."""
    A = np.diag([3.0, 2.0, 1.0])
    Y = np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]])
    lams = np.array([0.25, 1.0])
    pc = gcv_lambda(A, Y, lambdas=lams, refine=False)
    np.testing.assert_allclose(pc.curve, naive_gcv(A, Y, lams), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pc = gcv_lambda(A, Y, lambdas=[1e-40, 1.0], refine=False)
    assert pc.curve[0] == np.inf and pc.index == 1


def test_lmmse_condition_estimate_reads_the_cholesky_factor():
    """K = A Aᵀ for A = 10·R(30°)·diag(1, 1e-7): the LAPACK estimate of rcond(K) from the
    lower Cholesky factor is 7e-15 > m·eps, so the estimator is returned (= A⁻¹ to the
    accuracy cond(K) ≈ 1e14 allows). Reading K's own entries as the factor (the wrong
    triangle) would estimate 3.7e-16 and refuse it."""
    A = 10.0 * _rotation(np.pi / 6) @ np.diag([1.0, 1e-7])
    C, b = lmmse(A)
    inv = np.linalg.inv(A)
    np.testing.assert_allclose(C, inv, atol=1e-2 * np.abs(inv).max())
    np.testing.assert_array_equal(b, np.zeros(2))


# --------------------------------------------------------------------------------------------
# parameter choice: gcv_lambda, lcurve_lambda, oracle_lambda, oracle_k and their helpers


def _tall_problem():
    """A (8, 5) with σ = (3, 1, 0.3, 0.1, 0.03), its SVD, four noisy rows Y and targets X."""
    s = np.array([3.0, 1.0, 0.3, 0.1, 0.03])
    A, U, Vt = _matrix(s, 8, 5, seed=21)
    rng = np.random.default_rng(23)
    X = rng.standard_normal((4, 5)) * np.array([1.0, 0.5, 0.3, 0.2, 0.1])
    Y = X @ A.T + 0.05 * rng.standard_normal((4, 8))
    return A, (U, s, Vt), Y, X


def _wide_problem():
    """A (3, 5) with σ = (2, 1, 0.5): the targets X have energy outside A's row space."""
    s = np.array([2.0, 1.0, 0.5])
    A, U, Vt = _matrix(s, 3, 5, seed=24)
    rng = np.random.default_rng(26)
    X = rng.standard_normal((6, 5))
    Y = X @ A.T + 0.3 * rng.standard_normal((6, 3))
    return A, (U, s, Vt), Y, X


def _one_by_one():
    """A = [[2]], y = (1, 2, −1), x = y/4 + (1, 0, 1) with (1, 0, 1) ⟂ y: the oracle error
    ‖d y − x‖ is least at d = c = Σxy/Σy² = 1/4, i.e. σ/(σ² + λ) = c at λ* = σ/c − σ² = 4,
    where it is ‖(1, 0, 1)‖/‖x‖ = √(2/2.375)."""
    A = np.array([[2.0]])
    Y = np.array([[1.0], [2.0], [-1.0]])
    X = np.array([[1.25], [0.5], [0.75]])
    return A, Y, X, 4.0, np.sqrt(2.0 / 2.375)


def _fd_curvature(A, Y, lams, h=1e-3):
    """Curvature of (log‖A x_λ − y‖, log‖x_λ‖) by central differences in τ = log λ of the
    dense norms of tests/naive.py (independent of the SVD formulas)."""
    out = []
    for lam in lams:
        rn, sn = naive_lcurve(A, Y, lam * np.exp(np.array([-h, 0.0, h])))
        x, y = np.log(rn), np.log(sn)
        x1, y1 = (x[2] - x[0]) / (2 * h), (y[2] - y[0]) / (2 * h)
        x2, y2 = (x[2] - 2 * x[1] + x[0]) / h**2, (y[2] - 2 * y[1] + y[0]) / h**2
        out.append((x1 * y2 - x2 * y1) / (x1 * x1 + y1 * y1) ** 1.5)
    return np.array(out)


def _msg(text):
    return "^" + re.escape(text) + "$"


def test_default_lambda_grid_of_every_choice_uses_the_larger_dimension():
    """s = (1, 0.5, 0): σ_min is guarded by σ_1·max(m, n)·eps, so the default grid runs from
    (50·eps)²·1e-2 to σ_1² = 1 for a tall (50, 3) and a wide (3, 50) operator alike (the
    other dimension, 3, would start it 280 times lower)."""
    eps = np.finfo(np.float64).eps
    s = np.array([1.0, 0.5, 0.0])
    expected = np.logspace(2 * np.log10(50 * eps) - 2, 0.0, 100)
    for m, n in ((50, 3), (3, 50)):
        U, V = _orthonormal(m, 3, 30), _orthonormal(n, 3, 31)
        svd = (U, s, V.T)
        rng = np.random.default_rng(32)
        X = rng.standard_normal((2, n))
        Y = X @ ((U * s) @ V.T).T + 0.1 * rng.standard_normal((2, m))
        for pc in (
            gcv_lambda(svd, Y, refine=False),
            lcurve_lambda(svd, Y, refine=False),
            oracle_lambda(svd, Y, X, refine=False),
        ):
            np.testing.assert_allclose(pc.grid, expected, rtol=1e-12)


def test_lambda_grid_forms_and_messages():
    """Numeric strings (as a command line or YAML's "1e-3" gives them) are read as floats and
    sorted by value; a single λ is a grid; empty, non-finite and non-positive grids are
    refused by name."""
    A, _, Y, _ = _tall_problem()
    pc = gcv_lambda(A, Y, lambdas=["10", "1e-3", "0.1"], refine=False)
    np.testing.assert_array_equal(pc.grid, [1e-3, 0.1, 10.0])
    np.testing.assert_allclose(pc.curve, naive_gcv(A, Y, [1e-3, 0.1, 10.0]), rtol=1e-12)
    pc = gcv_lambda(A, Y, lambdas=[0.5])
    assert (pc.value, pc.index, pc.at_boundary) == (0.5, 0, True)
    np.testing.assert_allclose(pc.curve, naive_gcv(A, Y, [0.5]), rtol=1e-12)
    with pytest.raises(FastinvError, match=_msg("lambdas is empty; give at least one λ > 0")):
        gcv_lambda(A, Y, lambdas=[])
    with pytest.raises(
        FastinvError,
        match=_msg(
            "lambdas contains 1 non-finite value(s) (first: inf at index (1,)); remove or "
            "replace NaN/Inf entries"
        ),
    ):
        gcv_lambda(A, Y, lambdas=[0.1, np.inf])
    with pytest.raises(
        FastinvError,
        match=_msg("lambdas must all be > 0 (the criteria are searched on a log scale)"),
    ):
        gcv_lambda(A, Y, lambdas=[0.1, 0.0])


def test_measurement_and_projection_messages():
    """Each refusal of Y, X and a Projection names the argument as the caller knows it."""
    A, svd, Y, X = _tall_problem()
    bad = Y.copy()
    bad[0, 1] = np.nan
    cases = [
        (lambda: gcv_lambda(A, np.empty((0, 8))), "Y holds no samples; give at least one row"),
        (
            lambda: gcv_lambda(A, bad),
            "Y contains 1 non-finite value(s) (first: nan at index (0, 1)); remove or replace "
            "NaN/Inf entries",
        ),
        (lambda: gcv_lambda(A), "give the measurements Y (or a Projection instead of A)"),
        (
            lambda: lcurve_lambda(Projection.from_svd(svd, Y), Y),
            "pass either a Projection or (A, Y), not both",
        ),
        (lambda: oracle_lambda(A, Y[:, :7], X), "Y_val must have shape (*, 8), got (4, 7)"),
        (lambda: oracle_lambda(A, Y, X[:, :4]), "X_val must have shape (*, 5), got (4, 4)"),
        (
            lambda: oracle_k(A, Y, X[:3]),
            "Y_val has 4 rows but X_val has 3; give matching pairs",
        ),
        (lambda: oracle_lambda(A, Y), "give the validation pairs Y_val and X_val"),
        (lambda: oracle_k(A, None, X), "give the validation pairs Y_val and X_val"),
        (
            lambda: oracle_lambda(Projection.from_svd(svd, Y, X), Y),
            "pass either a Projection or (A, Y_val, X_val), not both",
        ),
        (
            lambda: oracle_k(Projection.from_svd(svd, Y, X), None, X),
            "pass either a Projection or (A, Y_val, X_val), not both",
        ),
        (
            lambda: oracle_lambda(Projection.from_svd(svd, Y)),
            "the oracle needs targets X_val; none were projected",
        ),
        (
            lambda: oracle_k(A, Y, np.zeros_like(X)),
            "X_val is zero; the relative error is undefined",
        ),
    ]
    for case, text in cases:
        with pytest.raises(FastinvError, match=_msg(text)):
            case()


def test_projection_fields_and_choices_from_a_projection():
    """Projection.from_svd against least squares: perp = ‖Y − A A⁺ Y‖² (tall A), perp_x =
    ‖X − X A⁺A‖² (wide A), exactly 0 for a square basis; target_norm = ‖X‖_F. The choices
    made from a Projection equal the dense naive curves."""
    A, svd, Y, X = _tall_problem()
    R = Y.T - A @ np.linalg.lstsq(A, Y.T, rcond=None)[0]
    for p in (Projection.from_svd(svd, Y), Projection.from_svd(svd, Y, X)):
        assert p.perp == pytest.approx(np.sum(R * R), rel=1e-10)
    p = Projection.from_svd(svd, Y, X)
    assert p.perp_x == 0.0  # V is square: nothing of X lies outside its span
    assert p.target_norm() == pytest.approx(np.linalg.norm(X), rel=1e-13)
    g = np.logspace(-4, 1, 6)
    np.testing.assert_allclose(
        gcv_lambda(Projection.from_svd(svd, Y), lambdas=g, refine=False).curve,
        naive_gcv(A, Y, g),
        rtol=1e-12,
    )
    rn, sn = naive_lcurve(A, Y, g)
    pc = lcurve_lambda(Projection.from_svd(svd, Y), lambdas=g, refine=False)
    np.testing.assert_allclose(pc.extra["residual_norm"], rn, rtol=1e-12)
    np.testing.assert_allclose(pc.extra["solution_norm"], sn, rtol=1e-12)
    np.testing.assert_allclose(
        oracle_lambda(p, lambdas=g, refine=False).curve, naive_oracle(A, Y, X, g), rtol=1e-12
    )
    np.testing.assert_allclose(oracle_k(p).curve, naive_oracle_k(A, Y, X, [1, 2, 3, 4, 5]))
    # square U and V: both out-of-span energies are exactly zero, not rounding noise
    Asq, Usq, Vtsq = _matrix([2.0, 1.0, 0.5, 0.25], 4, 4, seed=27)
    rng = np.random.default_rng(28)
    Xsq = rng.standard_normal((3, 4))
    p = Projection.from_svd((Usq, np.array([2.0, 1.0, 0.5, 0.25]), Vtsq), Xsq @ Asq.T, Xsq)
    assert (p.perp, p.perp_x) == (0.0, 0.0)
    # wide A: X's energy outside the row space enters perp_x, ‖X‖_F and every error
    A, svd, Y, X = _wide_problem()
    P = np.linalg.pinv(A) @ A
    p = Projection.from_svd(svd, Y, X)
    assert p.perp_x == pytest.approx(np.sum((X - X @ P) ** 2), rel=1e-10)
    assert p.target_norm() == pytest.approx(np.linalg.norm(X), rel=1e-13)


def test_oracle_choices_wide_operator_against_naive():
    """m = 3 < n = 5: the error of every λ and k includes the targets' energy outside A's row
    space, and the relative error divides by the whole ‖X‖_F; k runs up to the full rank 3."""
    A, svd, Y, X = _wide_problem()
    g = np.logspace(-3, 1, 9)
    for A_or_svd in (A, svd):
        pc = oracle_lambda(A_or_svd, Y, X, lambdas=g)
        np.testing.assert_allclose(pc.curve, naive_oracle(A, Y, X, g), rtol=1e-12)
        assert pc.error == pytest.approx(naive_oracle(A, Y, X, [pc.value])[0], rel=1e-12)
        pk = oracle_k(A_or_svd, Y, X)
        np.testing.assert_array_equal(pk.grid, [1, 2, 3])
        ref = naive_oracle_k(A, Y, X, [1, 2, 3])
        np.testing.assert_allclose(pk.curve, ref, rtol=1e-12)
        assert pk.value == int(np.argmin(ref)) + 1
        assert pk.error == pytest.approx(ref.min(), rel=1e-12)


def test_gcv_refinement_is_the_bounded_minimiser_of_the_naive_gcv():
    """refine (the default) minimises G on log λ between the grid neighbours of the best grid
    point (scipy's bounded method, xatol 1e-4): the same minimisation of the dense naive G
    gives the same λ, and it beats the grid point. Also for a 3-point grid (best point in
    the middle, neighbours at both ends). No warnings."""
    A, _, Y, _ = _tall_problem()
    for g in (np.logspace(-5, -2, 7), np.array([1e-4, 3e-4, 1e-3])):
        ref = naive_gcv(A, Y, g)
        i = int(np.argmin(ref))
        res = minimize_scalar(
            lambda tau: naive_gcv(A, Y, [np.exp(tau)])[0],
            bounds=(np.log(g[i - 1]), np.log(g[i + 1])),
            method="bounded",
            options={"xatol": 1e-4},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pc = gcv_lambda(A, Y, lambdas=g)
        assert pc.value == pytest.approx(np.exp(res.x), rel=1e-9)
        assert naive_gcv(A, Y, [pc.value])[0] < ref[i]
        assert pc.index == i


def test_oracle_lambda_refines_to_the_closed_form_minimiser():
    """A = [[2]]: the refined λ is λ* = 4 (to the refinement's tolerance) and its error the
    least possible; refine=False keeps the grid point; λ* on the grid is kept exactly (no
    point of the bracket is better)."""
    A, Y, X, lam, best = _one_by_one()
    pc = oracle_lambda(A, Y, X, lambdas=[0.5, 3.0, 20.0])
    assert pc.value == pytest.approx(lam, rel=1e-3)
    assert pc.error == pytest.approx(best, rel=1e-8)
    assert pc.index == 1
    pc = oracle_lambda(A, Y, X, lambdas=[0.5, 3.0, 20.0], refine=False)
    assert pc.value == 3.0
    assert pc.error == pytest.approx(naive_oracle(A, Y, X, [3.0])[0], rel=1e-12)
    pc = oracle_lambda(A, Y, X, lambdas=[0.4, 4.0, 40.0])
    assert pc.value == 4.0
    assert pc.error == pytest.approx(best, rel=1e-12)


def test_lambda_choice_fields_at_every_grid_position():
    """4-point grids (a quarter of a decade apart) placed so that the best point is first, second,
    third and last: value, index and at_boundary (first or last) agree with the naive GCV
    curve, the finite-difference L-curve curvature and the closed-form oracle."""
    A, _, Y, _ = _tall_problem()
    A1, Y1, X1, lam1, _ = _one_by_one()
    steps = 10.0 ** (0.25 * np.arange(4))
    seen = {"gcv": set(), "lcurve": set(), "oracle": set()}
    for j in range(4):
        g = 4.2e-4 * steps / steps[j]
        pc = gcv_lambda(A, Y, lambdas=g, refine=False)
        i = int(np.argmin(naive_gcv(A, Y, g)))
        assert (pc.method, pc.parameter, pc.value, pc.index) == ("gcv", "lambda", g[i], i)
        assert pc.at_boundary == (i in (0, 3))
        seen["gcv"].add(i)
        g = 0.045 * steps / steps[j]
        pc = lcurve_lambda(A, Y, lambdas=g, refine=False)
        i = int(np.argmax(_fd_curvature(A, Y, g)))
        assert (pc.method, pc.parameter, pc.value, pc.index) == ("lcurve", "lambda", g[i], i)
        np.testing.assert_array_equal(pc.grid, g)
        assert pc.at_boundary == (i in (0, 3))
        seen["lcurve"].add(i)
        g = lam1 * 1.1 * steps / steps[j]
        pc = oracle_lambda(A1, Y1, X1, lambdas=g, refine=False)
        i = int(np.argmin(naive_oracle(A1, Y1, X1, g)))
        assert (pc.method, pc.parameter, pc.value, pc.index) == ("oracle", "lambda", g[i], i)
        assert pc.at_boundary == (i in (0, 3))
        seen["oracle"].add(i)
    assert seen == {k: {0, 1, 2, 3} for k in seen}


def test_lcurve_refinement_never_lowers_the_curvature():
    """The L-curve corner is a maximum: the refined λ has at least the curvature of the best
    grid point (finite differences of the dense norms), and the grid point is the
    finite-difference argmax."""
    A, _, Y, _ = _tall_problem()
    g = np.logspace(-3, 0, 7)
    kd = _fd_curvature(A, Y, g)
    i = int(np.argmax(kd))
    assert 0 < i < g.size - 1
    pc = lcurve_lambda(A, Y, lambdas=g)
    assert pc.index == i
    assert _fd_curvature(A, Y, [pc.value])[0] >= kd[i] - 1e-6 * abs(kd[i])


def test_lcurve_messages_small_data_and_undefined_curvature():
    """Y outside range(A) is refused; tiny Y (all energies < 1) is fine; where λ is so small
    that every φ_i is 1 to rounding the curvature is 0/0 = NaN, silently, and is skipped."""
    A = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    with pytest.raises(
        FastinvError,
        match=_msg("Y has no component in the range of A; the L-curve is undefined"),
    ):
        lcurve_lambda(A, np.array([0.0, 0.0, 1.0]))
    Y = np.array([[1e-3, -2e-3, 5e-4]])
    g = np.array([1e-2, 0.1, 1.0])
    pc = lcurve_lambda(A, Y, lambdas=g, refine=False)
    rn, sn = naive_lcurve(A, Y, g)
    np.testing.assert_allclose(pc.extra["residual_norm"], rn, rtol=1e-12)
    np.testing.assert_allclose(pc.extra["solution_norm"], sn, rtol=1e-12)
    Y = np.array([[1.0, 1.0, 1.0]])
    g = np.array([1e-40, 0.1, 1.0, 10.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pc = lcurve_lambda(A, Y, lambdas=g, refine=False)
        with pytest.raises(
            FastinvError,
            match=_msg(
                "the L-curve curvature is undefined on the whole grid; choose other lambdas"
            ),
        ):
            lcurve_lambda(A, Y, lambdas=[1e-40])
    assert np.isnan(pc.curve[0])
    kd = _fd_curvature(A, Y, g[1:])
    np.testing.assert_allclose(pc.curve[1:], kd, rtol=1e-4)
    assert pc.index == 1 + int(np.argmax(kd))


def test_gcv_undefined_on_the_whole_grid_message():
    """A square, λ = 1e-40: every φ_i is 1, the trace m − Σφ is 0 and G is undefined."""
    with pytest.raises(
        FastinvError,
        match=_msg("the GCV function is undefined on the whole grid; choose other lambdas"),
    ):
        gcv_lambda(np.diag([3.0, 2.0, 1.0]), np.ones((2, 3)), lambdas=[1e-40])


def test_oracle_k_parameter_choice_fields():
    """method, parameter, value, index, at_boundary and error of every contiguous sub-grid
    of candidates agree with the naive oracle curve."""
    A, _, Y, X = _tall_problem()
    for lo in range(1, 6):
        for hi in range(lo, 6):
            ks = list(range(lo, hi + 1))
            ref = naive_oracle_k(A, Y, X, ks)
            i = int(np.argmin(ref))
            pc = oracle_k(A, Y, X, ks=ks)
            assert (pc.method, pc.parameter, pc.value, pc.index) == ("oracle", "k", ks[i], i)
            np.testing.assert_array_equal(pc.grid, ks)
            assert pc.at_boundary == (i in (0, len(ks) - 1))
            assert pc.error == pytest.approx(ref[i], rel=1e-12)


def test_k_grid_bounds_forms_and_messages():
    """The default candidates are 1..min(rank, m − 1) (a single one when that is 1); integral
    floats are accepted, fractions, empty lists and out-of-range candidates refused."""
    rng = np.random.default_rng(29)
    A2 = np.array([[2.0, 0.5], [0.3, 1.0]])  # m = 2: GCV can only try k = 1
    Y2 = rng.standard_normal((3, 2))
    pc = gcv_k(A2, Y2)
    np.testing.assert_array_equal(pc.grid, [1])
    np.testing.assert_allclose(pc.curve, naive_gcv_k(A2, Y2, [1]), rtol=1e-12)
    A1 = np.outer([1.0, 2.0, 0.5], [0.5, -1.0, 1.0])  # rank 1: the oracle can only try k = 1
    X1 = rng.standard_normal((3, 3))
    Y1 = X1 @ A1.T + 0.1 * rng.standard_normal((3, 3))
    pc = oracle_k(A1, Y1, X1)
    np.testing.assert_array_equal(pc.grid, [1])
    np.testing.assert_allclose(pc.curve, naive_oracle_k(A1, Y1, X1, [1]), rtol=1e-12)
    A, _, Y, X = _tall_problem()
    pc = gcv_k(A, Y)
    np.testing.assert_array_equal(pc.grid, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(pc.curve, naive_gcv_k(A, Y, [1, 2, 3, 4, 5]), rtol=1e-12)
    pc = gcv_k(A, Y, ks=[1.0, 3.0, 2.0])
    np.testing.assert_array_equal(pc.grid, [1, 2, 3])
    np.testing.assert_allclose(pc.curve, naive_gcv_k(A, Y, [1, 2, 3]), rtol=1e-12)
    no_k = (
        "no truncation k can be chosen: the candidates 1..0 are empty (k is at most the "
        "numerical rank of A, and at most m − 1 for GCV)"
    )
    cases = [
        (lambda: gcv_k(np.array([[2.0]]), [1.0]), no_k),
        (lambda: oracle_k(np.zeros((2, 2)), Y2, Y2), no_k),
        (lambda: gcv_k(A, Y, ks=[]), "ks must be a non-empty list of integers"),
        (lambda: gcv_k(A, Y, ks=[1.5, 2.0]), "ks must be a non-empty list of integers"),
        (
            lambda: gcv_k(A, Y, ks=[0, 2]),
            "ks must lie in [1, 5] (the numerical rank / m − 1), got 0..2",
        ),
    ]
    for case, text in cases:
        with pytest.raises(FastinvError, match=_msg(text)):
            case()


def test_parameter_choice_to_dict_exact():
    """to_dict as it is written to JSON: k as an integer, λ as a float, the grid's ends and
    size, the boundary flag and (oracle only) the error."""
    A, _, Y, X = _tall_problem()
    ks = [1, 2, 3]
    ref = naive_gcv_k(A, Y, ks)
    i = int(np.argmin(ref))
    expected = {
        "method": "gcv",
        "parameter": "k",
        "value": ks[i],
        "index": i,
        "at_boundary": i in (0, 2),
        "grid_min": 1.0,
        "grid_max": 3.0,
        "n_grid": 3,
    }
    assert json.dumps(gcv_k(A, Y, ks=ks).to_dict()) == json.dumps(expected)
    A1, Y1, X1, _, _ = _one_by_one()
    g = [0.5, 1.0, 2.5]  # λ* = 4 lies beyond: the last point, at the boundary
    d = oracle_lambda(A1, Y1, X1, lambdas=g).to_dict()
    assert d.pop("error") == pytest.approx(naive_oracle(A1, Y1, X1, [2.5])[0], rel=1e-12)
    expected = {
        "method": "oracle",
        "parameter": "lambda",
        "value": 2.5,
        "index": 2,
        "at_boundary": True,
        "grid_min": 0.5,
        "grid_max": 2.5,
        "n_grid": 3,
    }
    assert json.dumps(d) == json.dumps(expected)


def test_lmmse_from_samples_info_and_values():
    """The estimator from sample moments equals naive_lmmse with numpy's mean and covariance
    (ddof 1, 0 and 1.0); float32 samples are used in float64; info says exactly what was
    estimated, the rank bound min(N − 1, n) and, for N − 1 < n, the warning."""
    rng = np.random.default_rng(33)
    A, _, _ = _matrix([2.0, 1.0, 0.7, 0.4], 4, 4, seed=34)
    X = rng.standard_normal((6, 4)) + 1.0
    for ddof in (1, 0, 1.0):
        C, b, info = lmmse_from_samples(A, X, 0.1, ddof=ddof)
        Sx = np.cov(X, rowvar=False, ddof=int(ddof))
        Cn, bn = naive_lmmse(A, X.mean(0), Sx, 0.1 * np.eye(4))
        np.testing.assert_allclose(C, Cn, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, bn, rtol=1e-10, atol=1e-12)
        assert info == {
            "prior_mean": "estimated from 6 samples",
            "prior_cov": "estimated from 6 samples",
            "prior_cov_method": f"plain sample covariance (ddof={int(ddof)}), no shrinkage",
            "n_samples": 6,
            "prior_cov_rank_max": 4,
            "noise_cov": "analytic (σ² I)",
        }
    # N − 1 = n: no warning; N = n: a rank-deficient covariance, said so
    _, _, info = lmmse_from_samples(A, X[:5], np.full(4, 0.1))
    assert (info["noise_cov"], info["prior_cov_rank_max"], "warning" in info) == (
        "analytic (diagonal)",
        4,
        False,
    )
    C, b, info = lmmse_from_samples(A, X[:3], np.full(4, 0.1))
    Cn, bn = naive_lmmse(A, X[:3].mean(0), np.cov(X[:3], rowvar=False), 0.1 * np.eye(4))
    np.testing.assert_allclose(C, Cn, rtol=1e-10, atol=1e-12)
    assert (info["prior_cov_rank_max"], info["warning"]) == (
        2,
        "N - 1 = 2 < n = 4: the sample covariance is rank-deficient, the estimator ignores "
        "directions the samples do not span",
    )
    # two samples (of X or of the noise) with ddof = 1 are enough; noise samples give the
    # noise mean and covariance
    C, b, info = lmmse_from_samples(A, X[:2], 0.1)
    Cn, bn = naive_lmmse(A, X[:2].mean(0), np.cov(X[:2], rowvar=False), 0.1 * np.eye(4))
    np.testing.assert_allclose(C, Cn, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, bn, rtol=1e-10, atol=1e-12)
    E = 0.3 * rng.standard_normal((2, 4)) + 0.2
    C, b, info = lmmse_from_samples(A, X, E)
    Cn, bn = naive_lmmse(A, X.mean(0), np.cov(X, rowvar=False), np.cov(E, rowvar=False), E.mean(0))
    np.testing.assert_allclose(C, Cn, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, bn, rtol=1e-10, atol=1e-12)
    assert (info["noise_cov"], info["noise_mean"]) == (
        "estimated from 2 samples",
        "estimated from 2 samples",
    )
    # float32 samples: the moments are taken in float64
    X32 = X.astype(np.float32) / 3.0
    E32 = (0.3 * rng.standard_normal((9, 4))).astype(np.float32)
    C, b, _ = lmmse_from_samples(A, X32, E32)
    X64, E64 = X32.astype(np.float64), E32.astype(np.float64)
    Cn, bn = naive_lmmse(
        A, X64.mean(0), np.cov(X64, rowvar=False), np.cov(E64, rowvar=False), E64.mean(0)
    )
    np.testing.assert_allclose(C, Cn, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(b, bn, rtol=1e-11, atol=1e-13)


def test_lmmse_from_samples_messages():
    A, _, _ = _matrix([2.0, 1.0, 0.7, 0.4], 4, 4, seed=34)
    rng = np.random.default_rng(35)
    X = rng.standard_normal((5, 4))
    badX = X.copy()
    badX[0, 1] = np.nan
    badE = X.copy()
    badE[0, 0] = np.inf
    cases = [
        (lambda: lmmse_from_samples(A, X[:, :3], 0.1), "X must have shape (*, 4), got (5, 3)"),
        (
            lambda: lmmse_from_samples(A, badX, 0.1),
            "X contains 1 non-finite value(s) (first: nan at index (0, 1)); remove or replace "
            "NaN/Inf entries",
        ),
        (lambda: lmmse_from_samples(A, X, 0.1, ddof=-1), "ddof must be an integer >= 0, got -1"),
        (
            lambda: lmmse_from_samples(A, X[:1], 0.1),
            "X has 1 sample(s); give at least 2 to estimate a covariance",
        ),
        (
            lambda: lmmse_from_samples(A, X, X[:, :3]),
            "noise samples must have shape (*, 4), got (5, 3)",
        ),
        (
            lambda: lmmse_from_samples(A, X, badE),
            "noise samples contains 1 non-finite value(s) (first: inf at index (0, 0)); remove "
            "or replace NaN/Inf entries",
        ),
        (
            lambda: lmmse_from_samples(A, X, X[:1]),
            "noise samples hold 1 row(s); give at least 2",
        ),
    ]
    for case, text in cases:
        with pytest.raises(FastinvError, match=_msg(text)):
            case()


def test_lcurve_refinement_moves_to_the_bounded_maximum_of_the_curvature():
    """Between the best grid point's neighbours the refined λ is the curvature's maximum:
    the bounded maximiser of the finite-difference curvature of the dense norms, and strictly
    more curved than the grid point (the refinement was once rejected whenever it maximised,
    so the L-curve λ was always a grid point)."""
    from scipy.optimize import minimize_scalar

    A, _, Y, _ = _tall_problem()
    g = np.logspace(-3, 0, 4)
    pc = lcurve_lambda(A, Y, lambdas=g)
    i = pc.index
    assert 0 < i < g.size - 1
    res = minimize_scalar(
        lambda t: -_fd_curvature(A, Y, [np.exp(t)])[0],
        bounds=(np.log(g[i - 1]), np.log(g[i + 1])),
        method="bounded",
        options={"xatol": 1e-6},
    )
    assert pc.value == pytest.approx(np.exp(res.x), rel=1e-3)
    assert _fd_curvature(A, Y, [pc.value])[0] > _fd_curvature(A, Y, [g[i]])[0] + 1e-3
