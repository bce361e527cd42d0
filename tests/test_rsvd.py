"""Tests of fastinv.linalg.randomized against the plain-NumPy references in tests/naive.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from naive import (
    hmt_tail_bound,
    matrix_with_spectrum,
    naive_block_krylov,
    naive_hmt,
    naive_pl,
    naive_svd_topk,
    residual_norm,
    spectrum,
)

from fastinv._device import rtol
from fastinv.errors import FastinvError
from fastinv.linalg.randomized import RSVDResult, auto_n_iter, rsvd, svd_topk

METHODS = ["hmt", "block_krylov"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Small problems: BLAS threads only add synchronisation, and on a busy machine a
    threaded OpenBLAS/OpenMP call can take 1000x longer. Restored after each test."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1):
        yield


@pytest.fixture
def torch1():
    """torch with one intra-op thread for the test (restored afterwards)."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(n)


def _mat(kind, m=240, n=200, k=10, seed=0):
    s = spectrum(kind, min(m, n), k=k)
    return matrix_with_spectrum(s, m, n, seed=seed), s


def _proj_dist(U1, U2):
    """||U1 U1ᵀ - U2 U2ᵀ||_2 (sine of the largest principal angle)."""
    return float(np.linalg.norm(U1 @ U1.T - U2 @ U2.T, 2))


# ------------------------------------------------------------------------------ kernel
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (8, 3), (300, 17), (64, 1)])
def test_pl_rows_kernel_matches_scipy_lu(shape, dtype):
    from fastinv.kernels.rsvd import _pl_rows
    from scipy.linalg.lapack import get_lapack_funcs

    rng = np.random.default_rng(1)
    Y = rng.standard_normal(shape).astype(dtype)
    ref = naive_pl(Y)
    yt = np.ascontiguousarray(Y.T)
    getrf = get_lapack_funcs(("getrf",), dtype=np.dtype(dtype))[0]
    lu, piv, _ = getrf(yt.T, overwrite_a=True)
    assert np.shares_memory(lu, yt)  # factorised in place, no copy
    out = np.empty_like(yt)
    _pl_rows(yt, piv, np.empty(shape[0], np.int64), out)
    np.testing.assert_array_equal(out.T, ref)


def test_pl_rows_kernel_hand_made():
    from fastinv.kernels.rsvd import _pl_rows

    # Y = P L U with P swapping rows 0 and 2: packed LU and pivots written by hand
    lut = np.array([[4.0, 0.5, 0.25], [2.0, 3.0, 0.5]])  # rows layout of the (3, 2) LU
    piv = np.array([2, 2], dtype=np.int32)  # row0<->row2, then row1<->row2
    out = np.empty_like(lut)
    _pl_rows(lut, piv, np.empty(3, np.int64), out)
    L = np.array([[1.0, 0.0], [0.5, 1.0], [0.25, 0.5]])
    perm = [2, 0, 1]  # position i of L came from original row perm[i]
    PL = np.empty_like(L)
    PL[perm] = L
    np.testing.assert_array_equal(out.T, PL)


# ------------------------------------------------------------------- against references
@pytest.mark.parametrize("kind", ["fast", "slow", "flat_gap"])
def test_hmt_matches_naive_with_same_test_matrix(kind):
    M, s = _mat(kind)
    k, p, q = 10, 6, 2
    Omega = np.random.default_rng(7).standard_normal((k + p, M.shape[1])).T
    Un, sn, _ = naive_hmt(M, k, Omega, q)
    r = rsvd(M, k, n_oversamples=p, n_iter=q, seed=7)
    np.testing.assert_allclose(r.s, sn, rtol=1e-9, atol=1e-13 * s[0])
    # same subspace (LU and QR normalisers span the same spaces in exact arithmetic); the
    # flat spectrum's vectors are only identifiable as the whole top-k cluster
    j = k if kind == "flat_gap" else 3
    assert _proj_dist(r.U[:, :j], Un[:, :j]) < 1e-8


@pytest.mark.parametrize("kind", ["slow", "flat_gap"])
def test_block_krylov_matches_naive_with_same_test_matrix(kind):
    M, s = _mat(kind)
    k, p, q = 10, 6, 2
    Omega = np.random.default_rng(3).standard_normal((k + p, M.shape[1])).T
    Un, sn, _ = naive_block_krylov(M, k, Omega, q)
    r = rsvd(M, k, n_oversamples=p, n_iter=q, seed=3, method="block_krylov")
    assert r.method == "block_krylov" and r.krylov_blocks == q + 1
    np.testing.assert_allclose(r.s, sn, rtol=1e-9, atol=1e-13 * s[0])
    j = k if kind == "flat_gap" else 3
    assert _proj_dist(r.U[:, :j], Un[:, :j]) < 1e-8


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["fast", "slow", "flat_gap"])
@pytest.mark.parametrize("q", [0, 2])
def test_error_within_hmt_tail_bound(kind, method, q):
    """||M - U S Vt|| <= σ_{k+1} + (1 + 11 sqrt((k+p) min(m,n)))^(1/(2q+1)) σ_{k+1}.

    Holds except with probability 6 p^-p (p = 6: 1.3e-4; see naive.hmt_tail_bound);
    the seeds are fixed, so the test is deterministic.
    """
    M, s = _mat(kind)
    k, p = 10, 6
    r = rsvd(M, k, n_oversamples=p, n_iter=q, method=method, seed=11)
    err = residual_norm(M, r.U, r.s, r.Vt)
    assert err <= hmt_tail_bound(s, k, p, q, *M.shape)
    assert err >= s[k] * (1 - 1e-12)  # Eckart-Young: nobody beats σ_{k+1}
    # orthonormal factors, descending singular values
    np.testing.assert_allclose(r.U.T @ r.U, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(r.Vt @ r.Vt.T, np.eye(k), atol=1e-12)
    assert np.all(np.diff(r.s) <= 0)


@pytest.mark.parametrize("method", METHODS)
def test_fast_decay_singular_values_tight(method):
    M, s = _mat("fast", m=300, n=260)
    k = 20
    r = rsvd(M, k, n_oversamples=10, n_iter=2, method=method)
    _, sn, Vtn = naive_svd_topk(M, k)
    # every σ_i down to 2^-19 σ_1 to ~eps σ_1 / σ_i
    np.testing.assert_allclose(r.s, s[:k], rtol=1e-9)
    np.testing.assert_allclose(r.s, sn, rtol=1e-9)
    assert _proj_dist(r.Vt.T, Vtn.T) < 1e-8


def test_block_krylov_beats_hmt_on_slow_spectrum_at_equal_passes():
    M, s = _mat("slow", m=300, n=300)
    k, p, q = 20, 5, 3
    worse = []
    for seed in range(3):
        h = rsvd(M, k, n_oversamples=p, n_iter=q, seed=seed)
        b = rsvd(M, k, n_oversamples=p, n_iter=q, seed=seed, method="block_krylov")
        assert h.n_passes == b.n_passes == 2 * q + 2
        eh = np.max(np.abs(h.s - s[:k]) / s[:k])
        eb = np.max(np.abs(b.s - s[:k]) / s[:k])
        worse.append(eb / eh)
        assert residual_norm(M, b.U, b.s, b.Vt) <= residual_norm(M, h.U, h.s, h.Vt) * (1 + 1e-12)
    assert max(worse) < 1e-2  # at least 100x more accurate singular values


# -------------------------------------------------------------------------- matrix-free
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(240, 200), (150, 260)])
def test_matrix_free_equals_dense_exactly(method, shape):
    m, n = shape
    M = matrix_with_spectrum(spectrum("slow", min(m, n)), m, n, seed=5)
    calls = {"mv": 0, "rmv": 0}

    def matvec(MX):
        calls["mv"] += 1
        assert MX.shape[0] == m
        return MX

    def rmatvec(MtY):
        calls["rmv"] += 1
        assert MtY.shape[0] == n
        return MtY

    d = rsvd(M, 8, n_iter=2, method=method, seed=4)
    # callables computing the very products of the dense path: bitwise equal results
    f = rsvd(
        None, 8, n_iter=2, method=method, seed=4, shape=(m, n),
        matvec=lambda X: matvec((X.T @ M.T).T), rmatvec=lambda Y: rmatvec((Y.T @ M).T),
    )  # fmt: skip
    np.testing.assert_array_equal(f.U, d.U)
    np.testing.assert_array_equal(f.s, d.s)
    np.testing.assert_array_equal(f.Vt, d.Vt)
    assert f.err_est == d.err_est and f.err_lower == d.err_lower
    assert calls["mv"] + calls["rmv"] == f.n_passes + f.n_passes_err == d.n_passes + d.n_passes_err
    # the natural M @ X may sum in another order inside BLAS: equal to rounding
    g = rsvd(
        None, 8, n_iter=2, method=method, seed=4, shape=(m, n),
        matvec=lambda X: M @ X, rmatvec=lambda Y: M.T @ Y,
    )  # fmt: skip
    np.testing.assert_allclose(g.s, d.s, rtol=1e-12)
    np.testing.assert_allclose(g.U, d.U, atol=1e-10)


def test_pass_counts():
    M, _ = _mat("slow")
    for q in (0, 1, 3):
        for method in METHODS:
            r = rsvd(M, 5, n_iter=q, method=method, n_err_iter=1)
            assert r.n_passes == 2 * q + 2
            assert r.n_passes_err == 3
    r = rsvd(M, 5, n_iter="auto", estimate_error=False)
    assert r.n_iter == auto_n_iter(5, M.shape) == 7 and r.n_passes == 16
    assert r.n_passes_err == 0 and np.isnan(r.err_est)
    assert auto_n_iter(30, (200, 200)) == 4
    r = rsvd(M, 5, method="block_krylov", estimate_error=False)
    assert r.n_iter == auto_n_iter(5, M.shape, "block_krylov") == 4 and r.n_passes == 10


# ---------------------------------------------------------------- dtypes, seeds, torch
@pytest.mark.parametrize("method", METHODS)
def test_float32_in_float32_out(method):
    M, s = _mat("fast")
    r = rsvd(M.astype(np.float32), 8, n_iter=2, method=method)
    assert r.U.dtype == r.s.dtype == r.Vt.dtype == np.float32
    assert r.dtype == "float32"
    np.testing.assert_allclose(r.s, s[:8], rtol=50 * rtol(np.float32), atol=1e-6)
    r64 = rsvd(M.astype(np.float32), 8, n_iter=2, method=method, dtype=np.float64)
    assert r64.s.dtype == np.float64
    rint = rsvd(np.arange(12).reshape(4, 3), 2)
    assert rint.s.dtype == np.float64


def test_same_seed_same_result():
    M, _ = _mat("slow")
    a = rsvd(M, 6, seed=3)
    b = rsvd(M, 6, seed=3)
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.s, b.s)
    assert a.err_est == b.err_est
    c = rsvd(M, 6, seed=4)
    assert not np.array_equal(a.s, c.s)
    g = rsvd(M, 6, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(g.s, a.s)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_cpu_agrees_with_numpy(method, dtype, torch1):
    torch = torch1
    M, s = _mat("flat_gap")
    M = M.astype(dtype)
    a = rsvd(M, 10, n_iter=2, method=method)
    t = rsvd(torch.from_numpy(M), 10, n_iter=2, method=method)
    assert isinstance(t.U, torch.Tensor) and t.U.dtype == torch.from_numpy(M).dtype
    assert t.backend == "torch" and t.n_passes == a.n_passes
    tol = 10 * rtol(dtype)  # 1e-9 (float64), 2e-3 (float32)
    np.testing.assert_allclose(t.s.numpy(), a.s, rtol=tol)
    assert _proj_dist(t.U.numpy().astype(np.float64), a.U.astype(np.float64)) < 10 * tol
    assert abs(t.err_est - a.err_est) <= 1e-2 * a.err_est
    # numpy in, device given: torch computes, numpy comes out
    d = rsvd(M, 10, n_iter=2, method=method, device="cpu")
    assert isinstance(d.U, np.ndarray) and d.U.dtype == dtype
    np.testing.assert_allclose(d.s, a.s, rtol=tol)


@pytest.mark.parametrize("method", METHODS)
def test_device(device, method, torch1):
    torch = torch1
    M, s = _mat("slow")
    Mt = torch.from_numpy(M).to(device)
    r = rsvd(Mt, 8, n_iter=3, method=method, seed=2)
    assert r.U.device.type == device and r.s.device.type == device
    assert r.U.shape == (M.shape[0], 8) and r.Vt.shape == (8, M.shape[1])
    a = rsvd(M, 8, n_iter=3, method=method, seed=2)
    np.testing.assert_allclose(r.s.cpu().numpy(), a.s, rtol=1e-8)
    # float32 on the device
    r32 = rsvd(Mt.float(), 8, n_iter=3, method=method, seed=2)
    assert r32.s.dtype == torch.float32
    np.testing.assert_allclose(r32.s.cpu().numpy(), a.s, rtol=1e-3)
    # matrix-free with torch callables on the device
    f = rsvd(
        None, 8, n_iter=3, method=method, seed=2, matvec=lambda X: Mt @ X,
        rmatvec=lambda Y: Mt.T @ Y, shape=M.shape, device=device,
    )  # fmt: skip
    assert f.U.device.type == device
    np.testing.assert_allclose(f.s.cpu().numpy(), a.s, rtol=1e-8)


# ------------------------------------------------------------------------ error estimate
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["fast", "slow", "flat_gap"])
def test_err_est_brackets_true_error(kind, method):
    """err_lower <= ||E|| <= err_est <= 4 ||E||.

    err_est >= ||E|| fails with probability <= 10^-5 (r = 5 probes; fixed seeds here);
    err_lower is a deterministic lower bound.
    """
    M, s = _mat(kind)
    for seed in range(3):
        r = rsvd(M, 10, n_oversamples=4, n_iter=1, method=method, seed=seed)
        true = residual_norm(M, r.U, r.s, r.Vt)
        assert r.err_lower <= true * (1 + 1e-9)
        assert r.err_lower >= 0.5 * true
        assert true <= r.err_est <= 4 * true
        assert r.rel_err_est == pytest.approx(r.err_est / r.s[0])
        assert r.err_fail_prob == pytest.approx(1e-5)


def test_err_est_t0_is_hmt_eq_4_3():
    M, _ = _mat("slow")
    r = rsvd(M, 10, n_iter=1, n_err_iter=0, n_err_probes=10, seed=1)
    true = residual_norm(M, r.U, r.s, r.Vt)
    assert r.n_passes_err == 1
    assert true <= r.err_est <= 10 * np.sqrt(2 / np.pi) * np.sqrt(M.shape[1]) * 1.2 * true
    assert r.err_fail_prob == pytest.approx(1e-10)


def test_exact_low_rank_and_rank_deficient():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((120, 4)) @ rng.standard_normal((4, 90))
    for method in METHODS:
        r = rsvd(A, 8, n_iter=3, method=method)
        _, sn, _ = naive_svd_topk(A, 8)
        np.testing.assert_allclose(r.s[:4], sn[:4], rtol=1e-12)
        assert np.all(r.s[4:] < 1e-12 * sn[0])
        assert residual_norm(A, r.U, r.s, r.Vt) < 1e-12 * sn[0]
        assert r.err_est < 1e-11 * sn[0]
        np.testing.assert_allclose(r.U.T @ r.U, np.eye(8), atol=1e-10)
    z = rsvd(np.zeros((30, 20)), 3)
    assert np.all(z.s == 0) and z.err_est == 0.0
    # exact structured zeros: the Krylov space is exhausted and the iteration stops early
    D = np.diag(np.r_[np.ones(3), np.zeros(57)])
    for method in METHODS:
        r = rsvd(D, 5, n_iter=2, method=method)
        np.testing.assert_allclose(r.s, [1, 1, 1, 0, 0], atol=1e-14)
        np.testing.assert_allclose(r.U.T @ r.U, np.eye(5), atol=1e-12)
        assert residual_norm(D, r.U, r.s, r.Vt) < 1e-14
    assert any("exhausted" in note for note in r.notes)


@pytest.mark.parametrize("method", METHODS)
def test_k_equal_min_shape_and_tiny(method):
    M, s = _mat("slow", m=40, n=25)
    r = rsvd(M, 25, method=method)  # l capped at min(m, n): exact up to rounding
    np.testing.assert_allclose(r.s, s, rtol=1e-10)
    one = rsvd(np.array([[3.0]]), 1, method=method)
    assert one.s[0] == pytest.approx(3.0) and abs(one.U[0, 0] * one.Vt[0, 0]) == pytest.approx(1)


def test_block_krylov_caps_blocks():
    M, _ = _mat("slow", m=100, n=60)
    r = rsvd(M, 10, n_oversamples=5, n_iter=7, method="block_krylov")
    assert r.n_iter == 60 // 15 - 2 and r.notes
    r2 = rsvd(M, 25, n_oversamples=10, n_iter=2, method="block_krylov")
    assert r2.method == "hmt" and r2.notes


def test_package_level_call_works_after_submodule_import():
    import fastinv
    import fastinv.linalg.randomized  # noqa: F401  (module named apart from the function)

    M, _ = _mat("slow")
    np.testing.assert_array_equal(fastinv.rsvd(M, 3, seed=1).s, rsvd(M, 3, seed=1).s)


def test_to_dict_is_json():
    M, _ = _mat("slow")
    r = rsvd(M, 5)
    assert isinstance(r, RSVDResult)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["method"] == "hmt" and len(d["s"]) == 5 and d["U_shape"] == [240, 5]
    assert d["n_passes"] == 16 and d["err_est"] > 0


# ------------------------------------------------------------------------------ svd_topk
def test_svd_topk_chooses():
    M, s = _mat("slow", m=300, n=260)
    U, sv, Vt, info = svd_topk(M, 5)
    assert info["method"] == "full" and "full_threshold" in info["reason"]
    np.testing.assert_allclose(sv, s[:5], rtol=1e-12)
    assert info["err_est"] == pytest.approx(s[5])
    U, sv, Vt, info = svd_topk(M, 5, full_threshold=100)
    assert info["method"] == "rsvd" and info["n_passes"] == 16
    assert U.shape == (300, 5) and Vt.shape == (5, 260)
    U, sv, Vt, info = svd_topk(M, 5, full_threshold=100, method="block_krylov")
    assert info["method"] == "block_krylov"
    U, sv, Vt, info = svd_topk(M, 80, full_threshold=100)
    assert info["method"] == "full" and "fraction" in info["reason"]
    U, sv, Vt, info = svd_topk(
        None, 5, matvec=lambda X: M @ X, rmatvec=lambda Y: M.T @ Y, shape=M.shape
    )
    assert info["method"] == "rsvd" and "matrix-free" in info["reason"]
    json.dumps(info)


def test_svd_topk_full_matches_naive():
    M, _ = _mat("flat_gap", m=50, n=70)
    U, s, Vt, info = svd_topk(M, 7)
    Un, sn, Vtn = naive_svd_topk(M, 7)
    np.testing.assert_allclose(s, sn, rtol=1e-12)
    np.testing.assert_allclose(np.abs(U.T @ Un), np.eye(7), atol=1e-8)
    U32, s32, _, _ = svd_topk(M.astype(np.float32), 7)
    assert s32.dtype == np.float32 and U32.dtype == np.float32


def test_svd_topk_torch_full(torch1):
    torch = torch1
    M, _ = _mat("flat_gap", m=50, n=70)
    U, s, Vt, info = svd_topk(torch.from_numpy(M), 7)
    assert isinstance(s, torch.Tensor) and info["method"] == "full"
    np.testing.assert_allclose(s.numpy(), naive_svd_topk(M, 7)[1], rtol=1e-12)


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs():
    M, _ = _mat("slow", m=30, n=20)
    good = {"matvec": lambda X: M @ X, "rmatvec": lambda Y: M.T @ Y, "shape": M.shape}
    with pytest.raises(FastinvError, match="k must be"):
        rsvd(M, 0)
    with pytest.raises(FastinvError, match="k must be"):
        rsvd(M, 21)
    with pytest.raises(FastinvError, match="integer"):
        rsvd(M, 2.5)
    with pytest.raises(FastinvError, match="k must be"):
        svd_topk(M, 21)
    bad = M.copy()
    bad[3, 4] = np.nan
    with pytest.raises(FastinvError, match="non-finite"):
        rsvd(bad, 3)
    with pytest.raises(FastinvError, match="non-finite"):
        svd_topk(bad, 3)
    bad[3, 4] = np.inf
    with pytest.raises(FastinvError, match="non-finite"):
        rsvd(bad, 3, method="block_krylov")
    with pytest.raises(FastinvError, match="matvec returned shape"):
        rsvd(None, 3, matvec=lambda X: (M @ X)[:-1], rmatvec=good["rmatvec"], shape=M.shape)
    with pytest.raises(FastinvError, match="rmatvec returned shape"):
        rsvd(None, 3, matvec=good["matvec"], rmatvec=lambda Y: M @ Y[:20], shape=M.shape)
    with pytest.raises(FastinvError, match="NaN or Inf"):
        rsvd(None, 3, matvec=lambda X: (M @ X) * np.nan, rmatvec=good["rmatvec"], shape=M.shape)
    with pytest.raises(FastinvError, match="either M or"):
        rsvd(M, 3, **good)
    with pytest.raises(FastinvError, match="either M or"):
        rsvd(None, 3, matvec=good["matvec"], shape=M.shape)
    with pytest.raises(FastinvError, match="shape must be"):
        rsvd(None, 3, matvec=good["matvec"], rmatvec=good["rmatvec"], shape=(30,))
    with pytest.raises(FastinvError, match="method"):
        rsvd(M, 3, method="lanczos")
    with pytest.raises(FastinvError, match="n_iter"):
        rsvd(M, 3, n_iter="many")
    with pytest.raises(FastinvError, match="n_iter"):
        rsvd(M, 3, n_iter=-1)
    with pytest.raises(FastinvError, match="n_oversamples"):
        rsvd(M, 3, n_oversamples=-2)
    with pytest.raises(FastinvError, match="seed"):
        rsvd(M, 3, seed=None)
    with pytest.raises(FastinvError, match="2-D"):
        rsvd(np.ones((3, 3, 3)), 1)
    with pytest.raises(FastinvError, match="real"):
        rsvd(M.astype(complex), 1)
    with pytest.raises(FastinvError, match="overflow"):
        rsvd(np.full((20, 20), 1e308), 2)


def test_cholqr_rows_keeps_the_span_and_refuses_rank_deficient_blocks(torch1):
    """The CUDA re-normalisation between power iterations (one Cholesky-QR sweep): rows
    orthonormal, spanning the block's row space; None (LU takes over) on a singular Gram."""
    from fastinv.linalg.randomized import _cholqr_rows

    torch = torch1
    rng = np.random.default_rng(9)
    X = rng.standard_normal((6, 50)) * np.logspace(0, -3, 6)[:, None]
    Q = _cholqr_rows(torch, torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(Q @ Q.T, np.eye(6), atol=1e-9)
    coef = np.linalg.lstsq(Q.T, X.T, rcond=None)[0]  # X's rows are combinations of Q's
    np.testing.assert_allclose(Q.T @ coef, X.T, atol=1e-12)
    np.testing.assert_allclose(np.linalg.cholesky(X @ X.T) @ Q, X, atol=1e-12)  # X = RᵀQ
    X[3] = X[1] + X[2]
    assert _cholqr_rows(torch, torch.from_numpy(X)) is None
