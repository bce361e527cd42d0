"""Reference inverses and parameter choice (SCIENCE.md §2) against tests/naive.py."""

from __future__ import annotations

import types

import numpy as np
import pytest
from naive import (
    gaussian_blur,
    naive_discrete_curvature,
    naive_gcv,
    naive_gcv_k,
    naive_gd_linear,
    naive_landweber,
    naive_landweber_noisy,
    naive_lcurve,
    naive_lmmse,
    naive_oracle,
    naive_oracle_k,
    naive_tikhonov,
    naive_tsvd,
)

from fastinv.errors import FastinvError
from fastinv.linalg import estimators as E
from fastinv.linalg.spectral import filter_factors


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def random_matrix(rng, m, n, smin=0.1, smax=1.0):
    """Random (m, n) matrix with singular values log-spaced in [smin, smax]."""
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * np.logspace(np.log10(smax), np.log10(smin), r)) @ V.T


def spd(rng, n, cond=10.0):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.logspace(0, -np.log10(cond), n)) @ Q.T


@pytest.fixture(scope="module")
def blur_problem():
    """Severely ill-conditioned blur (cond ~1e8), smooth signals, 1 % noise."""
    from naive import smooth_signals

    rng = np.random.default_rng(7)
    n = 48
    A = gaussian_blur(n, 2.0)
    X = 0.5 * smooth_signals(rng, 120, n)
    Xv = 0.5 * smooth_signals(rng, 120, n)
    Y0 = X @ A.T
    sd = 1e-2 * np.std(Y0)
    Y = Y0 + sd * rng.standard_normal(Y0.shape)
    Yv = Xv @ A.T + sd * rng.standard_normal(Y0.shape)
    return A, E.thin_svd(A), Y, X, Yv, Xv


# ------------------------------------------------------------------------------------------
# the estimators


@pytest.mark.parametrize("shape", [(30, 30), (40, 25), (25, 40), (1, 1)])
@pytest.mark.parametrize("lam", [1e-3, 0.1, 2.0])
def test_tikhonov_svd_form_equals_normal_equations(rng, shape, lam):
    A = random_matrix(rng, *shape)
    C = E.tikhonov(A, lam)
    assert C.shape == (shape[1], shape[0])
    assert rel(C, naive_tikhonov(A, lam)) < 1e-12


def test_tikhonov_filter_factors(rng):
    A = random_matrix(rng, 30, 30, smin=1e-3)
    U, s, Vt = E.thin_svd(A)
    for lam in (1e-4, 1e-2, 1.0):
        phi, off = filter_factors(E.tikhonov(A, lam, svd=(U, s, Vt)), U, s, Vt)
        np.testing.assert_allclose(phi, s**2 / (s**2 + lam), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(phi, E.filter_factors_tikhonov(s, lam), rtol=1e-12, atol=1e-14)
        assert off < 1e-13


def test_lmmse_white_equals_tikhonov(rng):
    A = random_matrix(rng, 32, 32, smin=1e-4)
    s2, sig2 = 0.7, 3e-3
    lam = sig2 / s2
    C, b = E.lmmse(A, np.zeros(32), s2, sig2)
    Ct = E.tikhonov(A, lam)
    assert rel(C, Ct) < 1e-12
    assert np.all(b == 0)
    # the optimal linear estimator does not reproduce A⁻¹'s largest singular values
    assert np.linalg.norm(C, 2) <= (1 + 1e-12) / (2 * np.sqrt(lam))
    assert np.linalg.norm(C, 2) < 1e-2 * np.linalg.norm(np.linalg.inv(A), 2)
    # scalar, vector and matrix forms of the covariances agree
    C2, _ = E.lmmse(A, None, np.full(32, s2), sig2 * np.eye(32))
    assert rel(C2, Ct) < 1e-12


@pytest.mark.parametrize("shape", [(20, 20), (24, 16), (16, 24)])
def test_lmmse_general_against_naive(rng, shape):
    m, n = shape
    A = random_matrix(rng, m, n)
    mu = rng.standard_normal(n)
    mu_e = 0.1 * rng.standard_normal(m)
    Sx, Se = spd(rng, n), 0.01 * spd(rng, m)
    C, b = E.lmmse(A, mu, Sx, Se, noise_mean=mu_e)
    Cn, bn = naive_lmmse(A, mu, Sx, Se, mu_e)
    assert rel(C, Cn) < 1e-10
    assert rel(b, bn) < 1e-10
    # diagonal forms
    d = rng.uniform(0.5, 2.0, n)
    e = rng.uniform(0.01, 0.02, m)
    C, b = E.lmmse(A, mu, d, e)
    Cn, bn = naive_lmmse(A, mu, np.diag(d), np.diag(e))
    assert rel(C, Cn) < 1e-10 and rel(b, bn) < 1e-10


def test_lmmse_singular_raises():
    A = np.diag([1.0, 1.0, 0.0])
    with pytest.raises(FastinvError, match="positive noise level"):
        E.lmmse(A, None, 1.0, 0.0)
    # ill-conditioned to working precision also refuses
    with pytest.raises(FastinvError, match="positive noise level"):
        E.lmmse(np.diag([1.0, 1e-9]), None, 1.0, 0.0)
    # a positive noise level fixes it
    C, _ = E.lmmse(A, None, 1.0, 1e-2)
    assert np.all(np.isfinite(C))


def test_lmmse_from_samples(rng):
    n = 12
    A = random_matrix(rng, n, n)
    X = rng.standard_normal((200, n)) @ spd(rng, n) + 3.0
    C, b, info = E.lmmse_from_samples(A, X, 1e-2)
    Cn, bn = naive_lmmse(A, X.mean(0), np.cov(X, rowvar=False), 1e-2 * np.eye(n))
    assert rel(C, Cn) < 1e-10 and rel(b, bn) < 1e-10
    assert info["prior_cov"] == "estimated from 200 samples"
    assert info["noise_cov"].startswith("analytic")
    assert "warning" not in info
    Es = 0.1 * rng.standard_normal((300, n))
    C, b, info = E.lmmse_from_samples(A, X, Es)
    Cn, bn = naive_lmmse(
        A, X.mean(0), np.cov(X, rowvar=False), np.cov(Es, rowvar=False), Es.mean(0)
    )
    assert rel(C, Cn) < 1e-10 and rel(b, bn) < 1e-10
    assert info["noise_cov"] == "estimated from 300 samples"
    _, _, info = E.lmmse_from_samples(A, X[:5], 1e-2)
    assert "rank-deficient" in info["warning"]


@pytest.mark.parametrize("t", [0, 1, 7, 60])
def test_landweber_equals_gd_loop(rng, t):
    A = random_matrix(rng, 24, 24, smin=0.05)
    eta = 1.0 / np.linalg.norm(A, 2) ** 2
    W = E.landweber(A, eta, t)
    Wn = naive_landweber(A, eta, t)
    if t == 0:
        assert np.all(W == 0)
        return
    assert rel(W, Wn) < 1e-12
    U, s, Vt = E.thin_svd(A)
    phi, off = filter_factors(W, U, s, Vt)
    np.testing.assert_allclose(phi, 1 - (1 - eta * s**2) ** t, rtol=1e-12, atol=1e-14)
    assert off < 1e-12


def test_gd_on_whitened_data_reproduces_landweber(rng):
    """The trainer's convention: full-batch GD on data with XᵀX/N = I exactly."""
    n, N = 16, 64
    A = random_matrix(rng, n, n, smin=0.05)
    Q, _ = np.linalg.qr(rng.standard_normal((N, n)))
    X = np.sqrt(N) * Q  # XᵀX/N = I
    Y = X @ A.T
    eta, t = 0.9 / np.linalg.norm(A, 2) ** 2, 40
    W = naive_gd_linear(Y, X, eta, t)
    U, s, Vt = E.thin_svd(A)
    phi, off = filter_factors(W, U, s, Vt)
    np.testing.assert_allclose(phi, E.filter_factors_landweber(s, eta, t), rtol=1e-10, atol=1e-12)
    assert off < 1e-12
    assert rel(W, E.landweber(A, eta, t)) < 1e-11


def test_landweber_noisy_equals_population_gd(rng):
    A = random_matrix(rng, 20, 20, smin=0.01)
    nv = 1e-3
    eta = 1.0 / (np.linalg.norm(A, 2) ** 2 + nv)
    for t in (1, 25, 300):
        W = E.landweber_noisy(A, eta, t, nv)
        assert rel(W, naive_landweber_noisy(A, eta, t, nv)) < 1e-11
    U, s, Vt = E.thin_svd(A)
    phi, off = filter_factors(E.landweber_noisy(A, eta, 25, nv), U, s, Vt)
    expect = s**2 / (s**2 + nv) * (1 - (1 - eta * (s**2 + nv)) ** 25)
    np.testing.assert_allclose(phi, expect, rtol=1e-12, atol=1e-14)
    assert off < 1e-12
    # t → ∞ gives the Tikhonov/LMMSE estimator with λ = ν
    assert rel(E.landweber_noisy(A, eta, 10**7, nv), E.tikhonov(A, nv)) < 1e-10


@pytest.mark.parametrize("t", [1, 7, 60])
def test_landweber_filter_factors_with_noise_match_gd(rng, t):
    """filter_factors_landweber(s, η, t, ν > 0) = diag(Vᵀ W U S) of t population GD steps."""
    A = random_matrix(rng, 12, 12, smin=0.02)
    nv = 5e-3
    eta = 1.5 / (np.linalg.norm(A, 2) ** 2 + nv)  # η(σ² + ν) up to 1.5: sign-alternating terms
    W = naive_landweber_noisy(A, eta, t, nv)
    U, s, Vt = np.linalg.svd(A)
    expect = np.diag(Vt @ W @ U @ np.diag(s))
    got = E.filter_factors_landweber(s, eta, t, noise_var=nv)
    np.testing.assert_allclose(got, expect, rtol=1e-10, atol=1e-13)
    # ν enters twice (the shrink σ²/(σ² + ν) and the step); they cancel after one step
    # (φ = ησ²), after more the noise-free factors differ
    diff = np.max(np.abs(got - E.filter_factors_landweber(s, eta, t)))
    assert diff < 1e-15 if t == 1 else diff > 1e-3


def test_landweber_filter_factors_stable_and_edge_cases():
    s = np.array([1.0, 1e-4, 1e-10, 0.0])
    phi = E.filter_factors_landweber(s, 1.0, 10)
    assert phi[0] == 1.0  # (1 − 1)^t = 0
    np.testing.assert_allclose(phi[1:3], 10 * s[1:3] ** 2, rtol=1e-6)  # no loss to rounding
    assert phi[2] > 0 and phi[3] == 0.0
    assert np.all(E.filter_factors_landweber(s, 1.0, 0) == 0)
    # a divergent iteration (η σ² > 2) that overflows is refused
    with pytest.raises(FastinvError, match="diverges"):
        E.filter_factors_landweber(np.array([10.0]), 1.0, 10**6)
    # ... but a few steps of it are still the exact GD matrix
    A = np.diag([2.0, 0.5])
    assert rel(E.landweber(A, 1.0, 3), naive_landweber(A, 1.0, 3)) < 1e-14


def test_tsvd_and_pinv(rng):
    A = random_matrix(rng, 20, 20, smin=1e-3)
    U, s, Vt = E.thin_svd(A)
    for k in (0, 1, 7, 20):
        C = E.tsvd(A, k, svd=(U, s, Vt))
        if k:
            assert rel(C, naive_tsvd(A, k)) < 1e-12
        phi, off = filter_factors(C, U, s, Vt)
        np.testing.assert_allclose(phi, E.filter_factors_tsvd(s, k), atol=1e-12)
        assert set(np.round(phi, 10)) <= {0.0, 1.0}
    assert rel(E.pinv(A), np.linalg.pinv(A)) < 1e-12
    B = A.copy()
    B[:, 0] = 0  # singular
    assert rel(E.pinv(B), np.linalg.pinv(B)) < 1e-10
    R = random_matrix(rng, 30, 12)
    assert rel(E.pinv(R), np.linalg.pinv(R)) < 1e-12


def test_accepts_svd_and_operator_like(rng):
    A = random_matrix(rng, 10, 10)
    svd = E.thin_svd(A)
    op = types.SimpleNamespace(A=A, svd=svd)
    Ct = E.tikhonov(A, 0.1)
    assert rel(E.tikhonov(None, 0.1, svd=svd), Ct) < 1e-14
    assert rel(E.tikhonov(op, 0.1), Ct) < 1e-14
    assert rel(E.lmmse(op, None, 1.0, 0.1)[0], Ct) < 1e-12
    Y = A @ rng.standard_normal((10, 5))
    assert E.gcv_lambda(op, Y.T).value == E.gcv_lambda(svd, Y.T).value == E.gcv_lambda(A, Y.T).value


def test_float32_in_float32_out(rng):
    A = random_matrix(rng, 8, 8).astype(np.float32)
    for C in (
        E.tikhonov(A, 0.1),
        E.pinv(A),
        E.tsvd(A, 3),
        E.landweber(A, 0.5, 3),
        E.lmmse(A, None, 1.0, 0.1)[0],
    ):
        assert C.dtype == np.float32
    assert E.tikhonov(A.astype(np.float64), 0.1).dtype == np.float64


# ------------------------------------------------------------------------------------------
# choosing λ and k


def test_gcv_vectorised_equals_naive_loop(blur_problem):
    A, svd, Y, *_ = blur_problem
    grid = np.logspace(-7, 0, 25)
    ch = E.gcv_lambda(svd, Y, lambdas=grid, refine=False)
    np.testing.assert_allclose(ch.curve, naive_gcv(A, Y, grid), rtol=1e-6)
    assert ch.value == grid[np.argmin(naive_gcv(A, Y, grid))]
    # one right-hand side (1-D y) as well
    np.testing.assert_allclose(
        E.gcv_lambda(svd, Y[0], lambdas=grid).curve, naive_gcv(A, Y[:1], grid), rtol=1e-6
    )
    ks = np.arange(1, 30)
    np.testing.assert_allclose(E.gcv_k(svd, Y, ks=ks).curve, naive_gcv_k(A, Y, ks), rtol=1e-8)


def test_gcv_rectangular_matches_naive(rng):
    A = random_matrix(rng, 30, 18, smin=1e-3)
    Y = rng.standard_normal((5, 18)) @ A.T + 1e-2 * rng.standard_normal((5, 30))
    grid = np.logspace(-5, 0, 12)
    np.testing.assert_allclose(
        E.gcv_lambda(A, Y, lambdas=grid).curve, naive_gcv(A, Y, grid), rtol=1e-8
    )


def test_oracle_vectorised_equals_naive(blur_problem):
    A, svd, _, _, Yv, Xv = blur_problem
    grid = np.logspace(-7, 0, 20)
    ch = E.oracle_lambda(svd, Yv, Xv, lambdas=grid, refine=False)
    np.testing.assert_allclose(ch.curve, naive_oracle(A, Yv, Xv, grid), rtol=1e-6)
    ks = np.arange(1, 40)
    chk = E.oracle_k(svd, Yv, Xv, ks=ks)
    np.testing.assert_allclose(chk.curve, naive_oracle_k(A, Yv, Xv, ks), rtol=1e-8)
    assert chk.error == pytest.approx(
        np.linalg.norm(Yv @ E.tsvd(A, chk.value).T - Xv) / np.linalg.norm(Xv), rel=1e-10
    )


def test_lcurve_curvature_matches_discrete(blur_problem):
    A, svd, Y, *_ = blur_problem
    grid = np.logspace(-9, -1, 400)
    ch = E.lcurve_lambda(svd, Y, lambdas=grid, refine=False)
    rn, sn = naive_lcurve(A, Y, grid)
    np.testing.assert_allclose(ch.extra["residual_norm"], rn, rtol=1e-6)
    np.testing.assert_allclose(ch.extra["solution_norm"], sn, rtol=1e-6)
    kd = naive_discrete_curvature(grid, rn, sn)
    inner = slice(5, -5)
    assert np.max(np.abs(ch.curve[inner] - kd[inner])) < 2e-2 * np.max(np.abs(kd[inner]))
    assert abs(int(np.argmax(ch.curve)) - int(np.argmax(kd))) <= 2


def test_parameter_choice_is_sensible(blur_problem):
    """oracle error <= GCV error <= error at the extreme λ of the grid; L-curve in between."""
    A, svd, Y, X, Yv, Xv = blur_problem

    def err(lam):
        return np.linalg.norm(Yv @ E.tikhonov(A, lam, svd=svd).T - Xv) / np.linalg.norm(Xv)

    orc = E.oracle_lambda(svd, Yv, Xv)
    gcv = E.gcv_lambda(svd, Y)
    lc = E.lcurve_lambda(svd, Y)
    grid = orc.grid
    assert not orc.at_boundary and not gcv.at_boundary and not lc.at_boundary
    assert orc.error == pytest.approx(err(orc.value), rel=1e-10)
    extremes = min(err(grid[0]), err(grid[-1]))
    assert orc.error <= err(gcv.value) <= extremes
    assert orc.error <= err(lc.value) < extremes
    assert err(gcv.value) < 2 * orc.error  # GCV is near-optimal here
    assert orc.error <= orc.curve.min() + 1e-12  # refinement never worsens the grid optimum
    kg, ko = E.gcv_k(svd, Y), E.oracle_k(svd, Yv, Xv)
    ek = np.linalg.norm(Yv @ E.tsvd(A, kg.value).T - Xv) / np.linalg.norm(Xv)
    assert ko.error <= ek < min(ko.curve[0], ko.curve[-1])
    d = gcv.to_dict()
    assert d["method"] == "gcv" and d["parameter"] == "lambda" and d["n_grid"] == 100
    assert set(gcv.arrays()) >= {"grid", "curve"}


def test_default_grid_guards_singular():
    s = np.array([2.0, 1.0, 0.0])
    g = E.default_lambda_grid(s)
    assert np.all(np.isfinite(g)) and g[0] > 0 and g[-1] == pytest.approx(4.0)
    A = np.diag(s)
    Y = np.array([[1.0, 1.0, 1.0], [0.5, -1.0, 2.0]])
    assert np.isfinite(E.gcv_lambda(A, Y).value)
    assert np.isfinite(E.lcurve_lambda(A, Y).value)
    assert E.gcv_k(A, Y).grid[-1] == 2  # numerical rank


# ------------------------------------------------------------------------------------------
# bad input


def test_bad_inputs(rng):
    A = random_matrix(rng, 6, 6)
    Y = rng.standard_normal((4, 6))
    bad = A.copy()
    bad[1, 2] = np.nan
    cases = [
        lambda: E.tikhonov(A, -1.0),
        lambda: E.tikhonov(A, np.nan),
        lambda: E.tikhonov(bad, 0.1),
        lambda: E.tikhonov(np.ones(6), 0.1),
        lambda: E.tikhonov(None, 0.1),
        lambda: E.tikhonov(A, 0.1, svd=E.thin_svd(np.ones((5, 6)))),
        lambda: E.tsvd(A, 7),
        lambda: E.tsvd(A, -1),
        lambda: E.tsvd(A, 2.5),
        lambda: E.landweber(A, 0.0, 3),
        lambda: E.landweber(A, 0.1, -1),
        lambda: E.landweber_noisy(A, 0.1, 3, -1e-3),
        lambda: E.pinv(A, rcond=-1),
        lambda: E.lmmse(A, np.zeros(5), 1.0, 0.1),
        lambda: E.lmmse(A, None, -1.0, 0.1),
        lambda: E.lmmse(A, None, np.triu(np.ones((6, 6))), 0.1),
        lambda: E.lmmse(A, None, 1.0, np.ones(5)),
        lambda: E.lmmse_from_samples(A, rng.standard_normal((1, 6)), 0.1),
        lambda: E.gcv_lambda(A, rng.standard_normal((4, 5))),
        lambda: E.gcv_lambda(A, Y, lambdas=[0.0, 1.0]),
        lambda: E.gcv_lambda(A, Y, lambdas=[]),
        lambda: E.lcurve_lambda(A, np.where(Y > 0, np.inf, Y)),
        lambda: E.oracle_lambda(A, Y, Y[:3]),
        lambda: E.oracle_lambda(A, Y, np.zeros_like(Y)),
        lambda: E.gcv_k(A, Y, ks=[0, 1]),
        lambda: E.oracle_k(A, Y, Y, ks=[7]),
        lambda: E.filter_factors_tsvd(np.ones(3), 4),
        lambda: E.filter_factors_tikhonov(np.array([1.0, -1.0]), 0.1),
        lambda: E.default_lambda_grid(np.zeros(3)),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(FastinvError):
            case()
            pytest.fail(f"case {i} did not raise")
