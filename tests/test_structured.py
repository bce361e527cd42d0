"""Structured image operators (fastinv.problem.structured and the catalogue's blur2d, inpaint,
periodic blur1d): definitions entry by entry against tests/naive.py, exact FFT/DCT/Kronecker
SVDs against LAPACK, apply/adjoint against dense products, adjoint tests, the dense-size
guards and the matrix-free top-k SVD."""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest
import scipy.linalg

from fastinv.errors import FastinvError
from fastinv.problem.operators import Operator, make_operator
from fastinv.problem.structured import KroneckerMap, PeriodicConvolution, ZeroConvolution

PSFS = [
    ("gaussian", {"sigma": 1.5}),
    ("disk", {"radius": 2.0}),
    ("motion", {"length": 5.0, "angle": 30.0}),
    ("motion", {"length": 4.0, "angle": 90.0}),
]


def _blur(H, W, psf, kw, boundary):
    return make_operator("blur2d", H * W, shape=f"{H},{W}", psf=psf, boundary=boundary, **kw)


# --------------------------------------------------------------------------------------
# definitions, entry by entry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("psf, kw", PSFS)
@pytest.mark.parametrize("H, W", [(6, 8), (7, 5)])
def test_periodic_convention_entry_by_entry(H, W, psf, kw):
    op = _blur(H, W, psf, kw, "periodic")
    assert op.structure == "fft2" and op.image_shape == (H, W) and op.shape == (H * W, H * W)
    np.testing.assert_allclose(op.A, naive.blur2d_periodic(H, W, psf, **kw), rtol=0, atol=1e-15)


def test_issue_example_entries():
    """make_operator("blur2d", n=1024, shape=(32, 32), psf="gaussian", sigma=1.5,
    boundary="periodic"): A[i, j] = psf(Δr mod 32, Δc mod 32) at the minimal image."""
    op = make_operator(
        "blur2d", n=1024, shape=(32, 32), psf="gaussian", sigma=1.5, boundary="periodic"
    )
    d = np.arange(-16, 16)
    total = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * 1.5**2)).sum()
    for (r1, c1), (r2, c2) in [((0, 0), (0, 0)), ((0, 1), (31, 0)), ((5, 30), (7, 2))]:
        dr = min(abs(r1 - r2), 32 - abs(r1 - r2))
        dc = min(abs(c1 - c2), 32 - abs(c1 - c2))
        want = math.exp(-(dr**2 + dc**2) / (2 * 1.5**2)) / total
        assert op.A[r1 * 32 + c1, r2 * 32 + c2] == pytest.approx(want, rel=1e-13)
    assert op.A.sum(axis=1) == pytest.approx(np.ones(1024), rel=1e-13)


@pytest.mark.parametrize("psf, kw", PSFS)
@pytest.mark.parametrize("boundary", ["reflective", "zero"])
def test_bounded_blurs_entry_by_entry(boundary, psf, kw):
    if boundary == "reflective" and kw.get("angle") == 30.0:
        with pytest.raises(FastinvError, match="doubly symmetric"):
            _blur(6, 7, psf, kw, boundary)
        return
    op = _blur(6, 7, psf, kw, boundary)
    want = naive.blur2d_bounded(6, 7, psf, boundary, **kw)
    np.testing.assert_allclose(op.A, want, rtol=0, atol=1e-15)
    expected = {"reflective": "dct2", "zero": "kronecker" if psf == "gaussian" else "matrix-free"}
    assert op.structure == expected[boundary]


def test_blur1d_periodic_and_inpaint_definitions():
    op = make_operator("blur1d", 20, sigma=2.0, boundary="periodic")
    assert op.image_shape is None and op.structure == "fft2" and op.params["band"] == 8
    np.testing.assert_allclose(op.A, naive.blur1d_periodic(20, 8, 2.0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(op.b, op.A @ op.x, atol=1e-14)
    assert make_operator("blur1d", 12).structure == "dense"  # the default stays dense

    op = make_operator("inpaint", 100, fraction=0.3, seed=4)
    keep = np.random.default_rng(4).permutation(100)[:30]
    want = np.zeros(100)
    want[keep] = 1
    np.testing.assert_array_equal(op.A, np.diag(want))
    assert op.image_shape == (10, 10) and op.singular
    assert make_operator("inpaint", 10).image_shape is None  # not a square: a 1-D mask


def test_shape_parameter_and_errors():
    for shape in ("4,6", "4x6", "(4, 6)", [4, 6], (4, 6)):
        assert make_operator("blur2d", 24, shape=shape).image_shape == (4, 6)
    assert make_operator("blur2d", 36).image_shape == (6, 6)
    cases = [
        ({}, "not a square, so give the image shape, e.g. shape=4,6"),
        ({"shape": "5,5"}, "shape 5x5 has 25 pixels but n=24"),
        ({"shape": "a,b"}, "two integers H,W"),
        ({"shape": "4,6", "psf": "box"}, "parameter psf must be 'gaussian' or 'disk' or 'motion'"),
        ({"shape": "4,6", "boundary": "wrap"}, "parameter boundary must be"),
        ({"shape": "4,6", "sigma": -1}, "sigma must be > 0"),
    ]
    for params, msg in cases:
        with pytest.raises(FastinvError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            make_operator("blur2d", 24, **params)


# --------------------------------------------------------------------------------------
# exact SVDs against LAPACK
# --------------------------------------------------------------------------------------


def _clusters(s, rtol=1e-8):
    """Index ranges of (nearly) equal singular values, sorted descending."""
    out, start = [], 0
    for i in range(1, len(s) + 1):
        if i == len(s) or s[i - 1] - s[i] > rtol * s[0]:
            out.append((start, i))
            start = i
    return out


def _check_exact_svd(op, A, min_checked=3):
    U, s, Vt = op.svd
    U0, s0, Vt0 = scipy.linalg.svd(A)
    np.testing.assert_allclose(s, s0, rtol=0, atol=1e-10 * s0[0])  # 1e-10 relative to σ_1
    n = A.shape[0]
    np.testing.assert_allclose(U.T @ U, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-13)
    checked = 0
    for lo, hi in _clusters(s0)[:40]:  # subspaces of well-separated (possibly repeated) σ
        gap_lo = s0[lo - 1] - s0[lo] if lo else np.inf
        gap_hi = s0[hi - 1] - s0[hi] if hi < n else np.inf
        if min(gap_lo, gap_hi) < 1e-4 * s0[0] or s0[lo] < 1e-6 * s0[0]:
            continue
        ang = scipy.linalg.subspace_angles(Vt[lo:hi].T, Vt0[lo:hi].T)
        assert ang.max() < 1e-7, (lo, hi, ang.max())
        ang = scipy.linalg.subspace_angles(U[:, lo:hi], U0[:, lo:hi])
        assert ang.max() < 1e-7, (lo, hi, ang.max())
        checked += 1
    assert checked >= min_checked
    return s0


def test_fft2_svd_equals_dense_at_n_1024():
    op = make_operator("blur2d", 1024, shape="32,32", sigma=1.5)
    d = (np.arange(32) + 16) % 32 - 16  # minimal images; A from the convention directly
    K = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * 1.5**2))
    r, c = np.divmod(np.arange(1024), 32)
    A = K[(r[:, None] - r[None, :]) % 32, (c[:, None] - c[None, :]) % 32] / K.sum()
    U, s, Vt = op.svd
    s0 = scipy.linalg.svdvals(A)
    np.testing.assert_allclose(s, s0, rtol=0, atol=1e-10 * s0[0])
    np.testing.assert_allclose(U.T @ U, np.eye(1024), atol=1e-12)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(1024), atol=1e-12)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-13)
    # conjugate pairs: most singular values come twice
    assert np.sum(np.abs(np.diff(s0)) < 1e-12 * s0[0]) > 400
    assert op.cond == pytest.approx(s0[0] / s0[-1], rel=1e-5)  # σ_min ≈ 1e-9: LAPACK's error
    # subspaces (pairs of repeated σ) by principal angles, at n = 256
    op = make_operator("blur2d", 256, sigma=1.5)
    _check_exact_svd(op, naive.blur2d_periodic(16, 16, "gaussian"))


@pytest.mark.parametrize(
    "H, W, psf, kw",
    [(7, 9, "motion", {"length": 4.0, "angle": 30.0}), (6, 10, "disk", {"radius": 2.0})],
)
def test_fft2_svd_odd_even_and_nonsymmetric(H, W, psf, kw):
    op = _blur(H, W, psf, kw, "periodic")
    _check_exact_svd(op, naive.blur2d_periodic(H, W, psf, **kw))


def test_fft2_svd_of_a_kernel_without_symmetry():
    """A random kernel: λ = fft2(K) is complex, so U is V's modes shifted by arg λ."""
    H, W = 6, 7
    K = np.random.default_rng(5).standard_normal((H, W))
    op = Operator(PeriodicConvolution(K, image_shape=(H, W)), name="K")
    A = np.zeros((H * W, H * W))
    for i in range(H * W):
        for j in range(H * W):
            (ri, ci), (rj, cj) = divmod(i, W), divmod(j, W)
            A[i, j] = K[(ri - rj) % H, (ci - cj) % W]
    np.testing.assert_allclose(op.A, A, atol=1e-14)
    _check_exact_svd(op, A, min_checked=1)
    _adjoint_test_of(op)


def test_zero_boundary_convolution_with_an_asymmetric_psf():
    H, W = 6, 7
    P = np.random.default_rng(6).standard_normal((3, 5))  # offsets -1..1 by -2..2
    op = Operator(ZeroConvolution(P, (H, W)), name="P")
    A = np.zeros((H * W, H * W))
    for r in range(H):
        for c in range(W):
            for a in range(-1, 2):
                for b in range(-2, 3):
                    if 0 <= r - a < H and 0 <= c - b < W:
                        A[r * W + c, (r - a) * W + c - b] += P[a + 1, b + 2]
    X = np.random.default_rng(0).standard_normal((3, H * W))
    np.testing.assert_allclose(op.apply(X), X @ A.T, atol=1e-13)
    np.testing.assert_allclose(op.adjoint(X), X @ A, atol=1e-13)
    _adjoint_test_of(op)


def _adjoint_test_of(op):
    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((4, op.n)), rng.standard_normal((4, op.m))
    lhs = np.sum(op.apply(X) * Y, axis=1)
    rhs = np.sum(X * op.adjoint(Y), axis=1)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-13 * np.abs(lhs).max())


def test_fft_svd_of_periodic_blur1d():
    op = make_operator("blur1d", 64, sigma=1.0, boundary="periodic")
    _check_exact_svd(op, naive.blur1d_periodic(64, 4, 1.0))


def test_dct2_svd_equals_dense():
    op = _blur(16, 16, "gaussian", {"sigma": 1.0}, "reflective")
    _check_exact_svd(op, op.linear_map.to_dense())
    op = _blur(8, 10, "disk", {"radius": 2.0}, "reflective")
    _check_exact_svd(op, naive.blur2d_bounded(8, 10, "disk", "reflective", radius=2.0))


def test_kronecker_svd_equals_dense():
    op = _blur(12, 20, "gaussian", {"sigma": 1.2}, "zero")
    assert op.structure == "kronecker"
    _check_exact_svd(op, op.linear_map.to_dense())
    rng = np.random.default_rng(0)
    Ar, Ac = rng.standard_normal((5, 5)), rng.standard_normal((7, 7))
    op = Operator(KroneckerMap(Ar, Ac, image_shape=(5, 7)), name="kron")
    np.testing.assert_allclose(op.A, np.kron(Ar, Ac), atol=1e-15)
    U, s, Vt = op.svd
    np.testing.assert_allclose(s, scipy.linalg.svdvals(np.kron(Ar, Ac)), rtol=1e-12)
    np.testing.assert_allclose((U * s) @ Vt, np.kron(Ar, Ac), atol=1e-12)


def test_diagonal_svd():
    op = make_operator("inpaint", 64, fraction=0.25, seed=1)
    U, s, Vt = op.svd
    np.testing.assert_array_equal(s, np.r_[np.ones(16), np.zeros(48)])
    np.testing.assert_array_equal((U * s) @ Vt, op.A)
    np.testing.assert_array_equal(U.T @ U, np.eye(64))


# --------------------------------------------------------------------------------------
# apply / adjoint
# --------------------------------------------------------------------------------------

STRUCTURED = [
    ("blur2d", 64, {"shape": "8,8", "boundary": "periodic", "psf": "motion", "angle": 30}),
    ("blur2d", 63, {"shape": "7,9", "boundary": "reflective", "psf": "disk"}),
    ("blur2d", 63, {"shape": "7,9", "boundary": "zero", "psf": "disk"}),
    ("blur2d", 63, {"shape": "7,9", "boundary": "zero", "psf": "motion", "angle": 30}),
    ("blur2d", 63, {"shape": "7,9", "boundary": "zero"}),
    ("blur1d", 30, {"boundary": "periodic", "sigma": 1.5}),
    ("inpaint", 49, {"fraction": 0.6}),
]


def _naive_matrix(name, n, p):
    if name == "blur1d":
        return naive.blur1d_periodic(n, max(3, math.ceil(4 * p["sigma"])), p["sigma"])
    if name == "inpaint":
        return make_operator(name, n, **p).A  # checked against its definition above
    H, W = (int(v) for v in p["shape"].split(","))
    kw = {k: v for k, v in p.items() if k in ("angle", "sigma", "radius", "length")}
    psf = p.get("psf", "gaussian")
    if p["boundary"] == "periodic":
        return naive.blur2d_periodic(H, W, psf, **kw)
    return naive.blur2d_bounded(H, W, psf, p["boundary"], **kw)


@pytest.mark.parametrize("name, n, p", STRUCTURED)
def test_apply_adjoint_match_dense_and_pass_the_adjoint_test(name, n, p):
    op = make_operator(name, n, **p)
    A = _naive_matrix(name, n, p)
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((5, n)), rng.standard_normal((5, n))
    np.testing.assert_allclose(op.apply(X), X @ A.T, atol=1e-14)
    np.testing.assert_allclose(op.adjoint(Y), Y @ A, atol=1e-14)
    np.testing.assert_allclose(op.apply(X[0]), A @ X[0], atol=1e-14)
    # adjoint test: <A x, y> = <x, A^T y> to rounding
    lhs = np.sum(op.apply(X) * Y, axis=1)
    rhs = np.sum(X * op.adjoint(Y), axis=1)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-13 * np.abs(lhs).max())
    assert op.b == pytest.approx(A @ op.x, abs=1e-13)


def test_apply_keeps_dtype_numpy_and_torch():
    torch = pytest.importorskip("torch")
    for name, n, p in [STRUCTURED[0], ("shaw", 16, {})]:
        op = make_operator(name, n, **p)
        A = op.A
        X = np.random.default_rng(0).standard_normal((3, n))
        for dt, tol in ((np.float32, 1e-5), (np.float64, 1e-13)):
            out = op.apply(X.astype(dt))
            assert out.dtype == dt
            np.testing.assert_allclose(out, X @ A.T, atol=tol * np.abs(A).sum(1).max())
            t = torch.as_tensor(X, dtype=getattr(torch, np.dtype(dt).name))
            out_t = op.adjoint(t)
            assert out_t.dtype == t.dtype and isinstance(out_t, torch.Tensor)
            np.testing.assert_allclose(out_t.numpy(), X @ A, atol=tol * np.abs(A).sum(0).max())
    with pytest.raises(FastinvError, match=r"must have shape \(64,\) or \(batch, 64\)"):
        make_operator(*STRUCTURED[0][:2], **STRUCTURED[0][2]).apply(np.ones((2, 5)))


# --------------------------------------------------------------------------------------
# size guards, svd_topk
# --------------------------------------------------------------------------------------


def test_to_dense_refused_above_the_limit_while_matrix_free_works():
    op = make_operator("blur2d", 256 * 256, sigma=2.0)  # a dense A would take 32 GiB
    with pytest.raises(FastinvError, match=r"about 32 GiB, above the limit") as e:
        op.to_dense()
    assert "\n" not in str(e.value)
    with pytest.raises(FastinvError, match="matrix-free interface"):
        _ = op.A
    with pytest.raises(FastinvError, match="the full SVD"):
        _ = op.svd
    small = make_operator("blur2d", 64)
    with pytest.raises(FastinvError, match="above the limit"):
        small.to_dense(max_bytes=1000)
    U, s, Vt, info = op.svd_topk(4)
    assert info["method"] == "exact" and U.shape == (65536, 4) and Vt.shape == (4, 65536)
    assert s[0] == pytest.approx(1.0, rel=1e-12)  # the PSF sums to 1: σ_1 = |PSF^(0)| = 1
    x = Vt[1]
    np.testing.assert_allclose(op.apply(x), s[1] * U[:, 1], atol=1e-12)
    assert op.cond > 1 and not math.isnan(op.cond)  # from the spectrum alone


def test_catalogue_size_guard_refuses_before_allocating():
    for name, n in (("shaw", 10**12), ("blur2d", 10**14), ("random", 10**7)):
        with pytest.raises(FastinvError, match=r"needs about .* GiB .* choose a smaller n") as e:
            make_operator(name, n)
        assert f"{name} at n={n}" in str(e.value)


def test_svd_topk_exact_randomized_and_dense():
    op = _blur(16, 16, "disk", {"radius": 2.0}, "zero")  # matrix-free
    s0 = scipy.linalg.svdvals(naive.blur2d_bounded(16, 16, "disk", "zero", radius=2.0))
    U, s, Vt, info = op.svd_topk(6, n_iter=10)
    assert info["method"] == "rsvd"
    np.testing.assert_allclose(s, s0[:6], rtol=1e-6)  # σ_5, σ_6 differ by 5e-6 only
    np.testing.assert_allclose(op.apply(Vt), (U * s).T, atol=1e-3)

    op = _blur(12, 12, "gaussian", {"sigma": 1.0}, "reflective")
    U, s, Vt, info = op.svd_topk(10)
    assert info == {"method": "exact", "structure": "dct2", "k": 10}
    np.testing.assert_allclose(s, scipy.linalg.svdvals(op.linear_map.to_dense())[:10], rtol=1e-12)
    np.testing.assert_allclose(op.apply(Vt), (U * s).T, atol=1e-13)

    op = make_operator("shaw", 32)
    U, s, Vt, info = op.svd_topk(5)
    np.testing.assert_allclose(s, scipy.linalg.svdvals(op.A)[:5], rtol=1e-12)
    with pytest.raises(FastinvError, match="k must be"):
        op.svd_topk(33)


def test_operators_command_lists_the_new_entries():
    from click.testing import CliRunner

    from fastinv.cli import main

    res = CliRunner().invoke(main, ["operators"])
    assert res.exit_code == 0, res.output
    for s in ("blur2d", "inpaint", "boundary='periodic'", "psf='gaussian'", "n = H*W"):
        assert s in res.output, s
