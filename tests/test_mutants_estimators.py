"""fastinv.linalg.estimators: tests that kill the mutants the other estimator tests let survive
(issue 15; docs/testing.md "Mutation testing"). Values are checked against tests/naive.py or
closed forms on small cases where the answer is known exactly."""

import warnings

import numpy as np
import pytest
from naive import (
    naive_gcv,
    naive_gcv_k,
    naive_landweber_noisy,
    naive_lcurve,
    naive_lmmse,
    naive_pinv,
    naive_tsvd,
)

from fastinv.errors import FastinvError
from fastinv.linalg.estimators import (
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
    numerical_rank,
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
