"""Tests of the data stage: counter-based RNG, priors, generate()."""

from __future__ import annotations

import json

import numba
import numpy as np
import pytest
from fastinv.kernels import rng as krng
from naive import (
    forward,
    gaussian_cov,
    hash_u64,
    normals_row,
    piecewise_cov,
    se_kernel_matrix,
    smooth_embedding_cov,
    sparse_cov,
    u01,
    ziggurat_tables,
)
from scipy import stats

import fastinv
import fastinv.problem.blocks
import fastinv.problem.data
from fastinv.errors import FastinvError
from fastinv.problem.priors import EIG_RTOL, PRIORS, list_priors, make_prior

ALL_PRIORS = ["gaussian", "smooth", "piecewise_constant", "sparse"]


def _A(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)) / np.sqrt(n) + np.eye(n)


# ---------------------------------------------------------------------------------------
# counter-based generator
def test_ziggurat_tables_match_naive():
    ki, wi, fi = krng.ziggurat_tables()
    nki, nwi, nfi = ziggurat_tables()
    assert [int(v) for v in ki] == nki
    assert np.array_equal(wi, nwi) and np.array_equal(fi, nfi)


@pytest.mark.parametrize(
    "seed,stream,row,j",
    [(0, 0, 0, 0), (1, 2, 3, 4), (2**64 - 1, 1, 10**9, 7), (12345, 0, 2**40, 2**31)],
)
def test_hash_matches_naive(seed, stream, row, j):
    got = krng._hash_u64(np.uint64(seed), stream, row, j)
    assert int(got) == hash_u64(seed, stream, row, j)


def test_words_and_uniforms_match_naive():
    seed, stream, start = 987654321, 2, 41
    words = np.empty((3, 9), dtype=np.uint64)
    krng._fill_words(words, np.uint64(seed), stream, start)
    u = np.empty((3, 9))
    krng._fill_uniform(u, np.uint64(seed), stream, start)
    for i in range(3):
        for j in range(9):
            w = hash_u64(seed, stream, start + i, j)
            assert int(words[i, j]) == w
            assert u[i, j] == u01(w)  # bitwise


def test_normals_match_naive_bitwise():
    n = 1024
    out = np.empty((3, n))
    krng._fill_normal(out, np.uint64(7), 0, 100, 1.0)
    total_slow = 0
    for i in range(3):
        ref, slow = normals_row(7, 0, 100 + i, n)
        total_slow += slow
        assert np.array_equal(out[i], ref)
    assert total_slow > 10  # the rejection / tail path was exercised too


def test_uniforms_are_uniform():
    u = np.empty((400, 500))
    krng._fill_uniform(u, np.uint64(3), 1, 0)
    u = u.ravel()
    assert 0.0 < u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)


def test_normals_are_standard_normal():
    z = np.empty((1000, 1000))
    krng._fill_normal(z, np.uint64(11), 0, 0, 1.0)
    z = z.ravel()
    N = z.size
    assert abs(z.mean()) < 5 / np.sqrt(N)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2 / N)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    for t in (1.0, 2.0, 3.0, krng.ZIGGURAT_R, 4.0):  # tail mass, through the tail path
        p = 2 * stats.norm.sf(t)
        assert abs(np.mean(np.abs(z) > t) - p) < 5 * np.sqrt(p * (1 - p) / N)
    # rows of different streams / seeds are not correlated
    w = np.empty((1000, 1000))
    krng._fill_normal(w, np.uint64(11), 1, 0, 1.0)
    assert abs(np.mean(z * w.ravel())) < 5 / np.sqrt(N)


# ---------------------------------------------------------------------------------------
# priors
def test_prior_catalogue():
    assert set(PRIORS) == set(ALL_PRIORS) | {"grf", "shapes", "images"}
    for entry in list_priors():
        assert entry["description"] and isinstance(entry["params"], dict)
        json.dumps(entry)
    for name in ALL_PRIORS:
        p = make_prior(name, 8)
        d = p.to_dict()
        json.dumps(d)
        assert d["name"] == name and d["n"] == 8
        assert set(PRIORS[name]["params"]) <= set(d["params"])


def _naive_cov(name, n, params):
    p = {**PRIORS[name]["params"], **params}
    if name == "gaussian":
        return gaussian_cov(n, p["scale"])
    if name == "sparse":
        return sparse_cov(n, p["p"], p["scale"])
    if name == "piecewise_constant":
        return piecewise_cov(n, p["rate"], p["scale"])
    pr = make_prior("smooth", n, **params)
    return smooth_embedding_cov(n, p["length_scale"], p["scale"], pr.m, EIG_RTOL)[0]


@pytest.mark.parametrize(
    "name,params",
    [
        ("gaussian", {"scale": 2.0}),
        ("smooth", {}),
        ("smooth", {"length_scale": 0.2, "scale": 0.5}),
        ("smooth", {"length_scale": 0.002}),  # white at this grid
        ("piecewise_constant", {}),
        ("piecewise_constant", {"rate": 40.0, "scale": 3.0}),
        ("sparse", {}),
        ("sparse", {"p": 0.5, "scale": 2.0}),
    ],
)
def test_prior_moments_monte_carlo(name, params):
    n, N = 16, 20000
    pr = make_prior(name, n, **params)
    C = pr.cov()
    assert C is not None and C.shape == (n, n)
    np.testing.assert_allclose(C, _naive_cov(name, n, params), rtol=0, atol=1e-12 * C.max())
    X = pr.sample(N, seed=5)
    assert X.shape == (N, n) and X.dtype == np.float64
    # mean: 5 standard errors per coordinate
    se_mean = np.sqrt(np.diag(C) / N)
    assert np.all(np.abs(X.mean(axis=0) - pr.mean()) <= 5 * se_mean)
    # second moments E[x x^T] (mean is 0): 5 standard errors per entry, estimated from the
    # sample itself (valid for the non-Gaussian priors as well)
    P = X[:, :, None] * X[:, None, :]
    S = P.mean(axis=0)
    se = P.std(axis=0) / np.sqrt(N)
    assert np.all(np.abs(S - C) <= 5 * se + 1e-12)


def test_smooth_cov_is_embedding_block_and_close_to_se_kernel():
    for n, ls in [(1, 0.05), (5, 0.05), (16, 0.05), (33, 0.1), (64, 0.05), (24, 0.5)]:
        pr = make_prior("smooth", n, length_scale=ls, scale=1.5)
        assert pr.m >= 2 * n and pr.m % 2 == 0
        ref, lam = smooth_embedding_cov(n, ls, 1.5, pr.m, EIG_RTOL)
        np.testing.assert_allclose(pr.cov(), ref, rtol=0, atol=1e-12 * 1.5**2)
        # the embedding is (nearly) nonnegative or has reached its maximal size
        assert lam.min() >= -EIG_RTOL * lam.max() or pr.m * 2 > 64 * n
        K = se_kernel_matrix(n, ls, 1.5)
        err = np.abs(pr.cov() - K).max()
        assert err == pytest.approx(pr.cov_error(), abs=1e-15)
        # the deviation from the SE kernel matrix is at rounding level: <= 1e-10 s^2
        assert err <= 1e-10 * 1.5**2, (n, ls, err)


def test_smooth_methods_agree():
    pr = make_prior("smooth", 40, length_scale=0.1)
    assert pr.method == "gemm"
    X1 = pr.sample(50, seed=3, start=17)
    pr.method = "fft"
    X2 = pr.sample(50, seed=3, start=17)
    np.testing.assert_allclose(X1, X2, rtol=0, atol=1e-12)
    assert make_prior("smooth", 64, length_scale=0.002).method == "fft"


def test_chunk_size_invariance_default_blocks():
    n = 1024  # blocks of 2048 rows
    A = _A(n)
    kw = dict(n_samples=2100, prior="smooth", noise=0.01, seed=3)
    X, Y = fastinv.generate(A, **kw)
    X2, Y2 = fastinv.generate(A, chunk_size=3000, **kw)  # one chunk of 4096 rows
    assert np.array_equal(X, X2) and np.array_equal(Y, Y2)
    Xp, Yp = fastinv.generate(A, **{**kw, "n_samples": 5})
    assert np.array_equal(Xp, X[:5]) and np.array_equal(Yp, Y[:5])


def test_smooth_fft_path():
    # moments through the FFT synthesis (forced at n = 16)
    n, N = 16, 20000
    pr = make_prior("smooth", n, length_scale=0.03)
    pr.method = "fft"
    X = pr.sample(N, seed=8)
    C = pr.cov()
    P = X[:, :, None] * X[:, None, :]
    assert np.all(np.abs(P.mean(axis=0) - C) <= 5 * P.std(axis=0) / np.sqrt(N))
    # chosen by itself for a rough prior; windows and chunks are bitwise consistent
    fastinv.problem.blocks._BLOCK_OVERRIDE = 8
    try:
        pr = make_prior("smooth", 64, length_scale=0.002)
    finally:
        fastinv.problem.blocks._BLOCK_OVERRIDE = None
    assert pr.method == "fft"
    full = pr.sample(300, seed=4)
    assert np.array_equal(pr.sample(10, seed=4, start=5), full[5:15])
    A = _A(64)
    kw = dict(n_samples=500, prior=pr, noise=0.02, seed=4)
    X1, Y1 = fastinv.generate(A, **kw)
    X2, Y2 = fastinv.generate(A, chunk_size=7, **kw)
    assert np.array_equal(X1, X2) and np.array_equal(Y1, Y2)
    assert np.array_equal(X1[:300], full)


def test_piecewise_and_sparse_structure():
    X = make_prior("piecewise_constant", 200, rate=5.0).sample(2000, seed=1)
    jumps = np.count_nonzero(np.diff(X, axis=1), axis=1)
    # jumps per row ~ Binomial(199, 1 - exp(-5/200)); mean ~ 4.9
    q = 1 - np.exp(-5.0 / 200)
    assert abs(jumps.mean() - 199 * q) < 5 * np.sqrt(199 * q / 2000)
    Xc = make_prior("piecewise_constant", 50, rate=0.0).sample(20, seed=1)
    assert np.all(Xc == Xc[:, :1])
    Xs = make_prior("sparse", 100, p=0.05).sample(2000, seed=2)
    frac = np.mean(Xs != 0)
    assert abs(frac - 0.05) < 5 * np.sqrt(0.05 * 0.95 / Xs.size)
    assert np.all(make_prior("sparse", 30, p=1.0).sample(10, seed=0) != 0)


@pytest.mark.parametrize("name", ALL_PRIORS)
@pytest.mark.parametrize("blocks", ["default", "small"])
def test_sample_start_is_a_window(name, blocks, monkeypatch):
    if blocks == "small":
        monkeypatch.setattr(fastinv.problem.blocks, "_BLOCK_OVERRIDE", 8)
    pr = make_prior(name, 12)
    full = pr.sample(300, seed=4)
    assert np.array_equal(pr.sample(10, seed=4, start=5), full[5:15])
    assert np.array_equal(pr.sample(1, seed=4, start=299), full[299:300])
    assert np.array_equal(pr.sample(200, seed=4, start=100), full[100:300])
    assert not np.array_equal(pr.sample(10, seed=5), full[:10])


# ---------------------------------------------------------------------------------------
# generate
def test_noise_free_y_is_x_a_transpose():
    A = _A(24)
    for name in ALL_PRIORS:
        X, Y = fastinv.generate(A, n_samples=60, prior=name, noise=0.0, seed=2)
        np.testing.assert_allclose(Y, forward(X, A), rtol=1e-12, atol=1e-12)


def test_relative_noise_level_exact():
    A = _A(32)
    X, Y = fastinv.generate(A, n_samples=200, noise=0.05, seed=9)
    Y0 = forward(X, A)
    ratio = np.linalg.norm(Y - Y0, axis=1) / np.linalg.norm(Y0, axis=1)
    np.testing.assert_allclose(ratio, 0.05, rtol=1e-10)
    # direction of the noise: not aligned with the signal on average
    cos = np.sum((Y - Y0) * Y0, axis=1) / (0.05 * np.sum(Y0 * Y0, axis=1))
    assert abs(cos.mean()) < 5 / np.sqrt(32 * 200)
    # A x = 0 gives no noise
    X, Y = fastinv.generate(np.zeros((8, 8)), n_samples=5, noise=0.1)
    assert np.all(Y == 0.0)


def test_absolute_noise_distribution(small_blocks):
    n, N, sigma = 16, 4000, 0.3
    A = _A(n)
    X, Y = fastinv.generate(
        A, n_samples=N, prior="gaussian", noise=sigma, noise_type="absolute", seed=1
    )
    E = (Y - forward(X, A)).ravel()
    X7, Y7 = fastinv.generate(
        A, n_samples=N, prior="gaussian", noise=sigma, noise_type="absolute", seed=1, chunk_size=7
    )
    assert np.array_equal(X7, X) and np.array_equal(Y7, Y)
    assert abs(E.mean()) < 5 * sigma / np.sqrt(E.size)
    assert abs(E.var() / sigma**2 - 1) < 5 * np.sqrt(2 / E.size)
    assert stats.kstest(E / sigma, "norm").pvalue > 1e-3


def test_operator_object_and_defaults():
    class Op:  # duck-typed stand-in for fastinv.problem.operators.Operator
        def __init__(self, A):
            self.A = A
            self.n = A.shape[0]

    A = _A(10)
    X1, Y1 = fastinv.generate(Op(A), n_samples=30)
    X2, Y2 = fastinv.generate(A, n_samples=30)
    assert np.array_equal(X1, X2) and np.array_equal(Y1, Y2)
    X3, _ = fastinv.generate(A, n_samples=30, prior=make_prior("smooth", 10))
    assert np.array_equal(X1, X3)


@pytest.fixture
def small_blocks(monkeypatch):
    """BLAS / FFT blocks of 8 rows, so that small inputs span many blocks and chunks."""
    monkeypatch.setattr(fastinv.problem.blocks, "_BLOCK_OVERRIDE", 8)


@pytest.mark.parametrize("name", ALL_PRIORS)
@pytest.mark.parametrize("n", [1, 16, 100])
def test_chunk_size_invariance_bitwise(name, n, small_blocks):
    A = _A(n, seed=n)
    kw = dict(n_samples=1100, prior=name, noise=0.02, seed=13)
    X, Y = fastinv.generate(A, **kw)
    for cs in (7, 1000):
        Xc, Yc = fastinv.generate(A, chunk_size=cs, **kw)
        assert np.array_equal(X, Xc) and np.array_equal(Y, Yc)
    # a shorter run is a prefix of a longer one
    Xp, Yp = fastinv.generate(A, **{**kw, "n_samples": 77})
    assert np.array_equal(Xp, X[:77]) and np.array_equal(Yp, Y[:77])
    # float32: the float64 result rounded once, whatever the chunking
    X32, Y32 = fastinv.generate(A, dtype=np.float32, chunk_size=7, **kw)
    assert X32.dtype == np.float32 and Y32.dtype == np.float32
    assert np.array_equal(X32, X.astype(np.float32)) and np.array_equal(Y32, Y.astype(np.float32))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("noise_type", ["relative", "absolute"])
def test_thread_count_invariance(noise_type, small_blocks):
    A = _A(40)
    old = numba.get_num_threads()
    try:
        out = {}
        for t in (1, 2):
            numba.set_num_threads(t)
            for name in ALL_PRIORS:
                out[t, name] = fastinv.generate(
                    A, n_samples=300, prior=name, noise=0.1, noise_type=noise_type, seed=21
                )
    finally:
        numba.set_num_threads(old)
    for name in ALL_PRIORS:
        for a, b in zip(out[1, name], out[2, name], strict=True):
            assert np.array_equal(a, b)


def test_seed_changes_output_and_generator_seed():
    A = _A(12)
    X0, Y0 = fastinv.generate(A, n_samples=20, seed=0)
    X1, Y1 = fastinv.generate(A, n_samples=20, seed=1)
    assert not np.array_equal(X0, X1) and not np.array_equal(Y0, Y1)
    Xa, _ = fastinv.generate(A, n_samples=20, seed=np.random.default_rng(5))
    Xb, _ = fastinv.generate(A, n_samples=20, seed=np.random.default_rng(5))
    assert np.array_equal(Xa, Xb)
    # noise and signal use different streams: the noise does not change X
    Xn, Yn = fastinv.generate(A, n_samples=20, seed=0, noise=0.5)
    assert np.array_equal(Xn, X0) and not np.array_equal(Yn, Y0)


def test_large_seed_and_single_sample():
    X, Y = fastinv.generate(_A(5), n_samples=1, seed=2**64 - 1, prior="gaussian")
    assert X.shape == Y.shape == (1, 5) and np.all(np.isfinite(Y))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 2.5}, "n_samples"),
        ({"n_samples": True}, "n_samples"),
        ({"prior": "nope"}, "gaussian, grf, images, piecewise_constant, shapes, smooth, sparse"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"noise_type": "poisson"}, "relative, absolute"),
        ({"prior_params": {"width": 3}}, "length_scale, scale"),
        ({"prior_params": {"length_scale": 0.0}}, "length_scale"),
        ({"prior_params": {"scale": float("nan")}}, "scale"),
        ({"prior": "sparse", "prior_params": {"p": 1.5}}, "probability"),
        ({"prior": "piecewise_constant", "prior_params": {"rate": -1}}, "rate"),
        ({"prior_params": [1, 2]}, "dict"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"prior": make_prior("gaussian", 3)}, "n=4"),
        ({"dtype": "not-a-dtype"}, "dtype"),
    ],
)
def test_bad_inputs(kwargs, match):
    kw = {"n_samples": 10, **kwargs}
    with pytest.raises(FastinvError, match=match):
        fastinv.generate(np.eye(4), **kw)


def test_bad_operator():
    A = np.eye(4)
    A[1, 2] = np.nan
    with pytest.raises(FastinvError, match="non-finite"):
        fastinv.generate(A, n_samples=3)
    with pytest.raises(FastinvError, match="non-empty"):
        fastinv.generate(np.ones((0, 4)), n_samples=3)
    with pytest.raises(FastinvError, match="2-D"):
        fastinv.generate(np.ones(4), n_samples=3)
    with pytest.raises(FastinvError):
        make_prior("smooth", 0)
    with pytest.raises(FastinvError, match="start"):
        make_prior("gaussian", 3).sample(2, seed=0, start=-1)


@pytest.mark.parametrize("n", [100, 256])
def test_low_rank_prior_skips_the_n_by_n_product(n, small_blocks, monkeypatch):
    """A smooth prior with few coefficients gives Y = Z (F Aᵀ): same X bits as the prior's own
    sampler, Y equal to X Aᵀ to rounding, and still chunk-invariant bit for bit."""
    params = {"length_scale": 0.2}
    pr = make_prior("smooth", n, **params)
    F = pr._factor()
    assert F is not None and 2 * F.shape[0] <= n  # the fast path is the one under test
    calls = []
    real = fastinv.problem.data.aligned_matmul
    monkeypatch.setattr(
        fastinv.problem.data,
        "aligned_matmul",
        lambda L, R, *a: calls.append(R.shape) or real(L, R, *a),
    )
    A = _A(n, seed=3)
    kw = dict(n_samples=300, prior="smooth", prior_params=params, seed=4)
    X, Y = fastinv.generate(A, noise=0.0, **kw)
    assert calls and all(shape[0] == F.shape[0] for shape in calls)  # never the (n, n) product
    assert np.array_equal(X, pr.sample(300, seed=4))
    np.testing.assert_allclose(Y, forward(X, A), rtol=1e-12, atol=1e-12 * np.abs(Y).max())
    Xn, Yn = fastinv.generate(A, noise=0.02, **kw)
    for cs in (7, 100):
        Xc, Yc = fastinv.generate(A, noise=0.02, chunk_size=cs, **kw)
        assert np.array_equal(Xn, Xc) and np.array_equal(Yn, Yc)
    ratio = np.linalg.norm(Yn - Y, axis=1) / np.linalg.norm(Y, axis=1)
    np.testing.assert_allclose(ratio, 0.02, rtol=1e-10)
    X32, Y32 = fastinv.generate(A, noise=0.02, dtype=np.float32, chunk_size=7, **kw)
    assert np.array_equal(X32, Xn.astype(np.float32)) and np.array_equal(Y32, Yn.astype(np.float32))
