"""Coefficients in A's singular bases without forming U or V (fastinv.problem.structured
SpectralBasis, Operator.spectral_basis): every structure against the matmuls with
exact_topk(None) / Operator.svd, round trips, a Tikhonov filter against the normal equations
on the dense A, and Parseval at n = 65536 with the dense singular vectors made impossible."""

from __future__ import annotations

import numpy as np
import pytest

import fastinv.problem.structured as structured
from fastinv.errors import FastinvError
from fastinv.problem.operators import Operator, make_operator
from fastinv.problem.structured import (
    DenseBasis,
    DiagonalMap,
    KroneckerMap,
    LinearMap,
    PeriodicConvolution,
    SpectralBasis,
)


def _periodic(H, W, seed):
    K = np.random.default_rng(seed).standard_normal((H, W))  # complex λ: U = V shifted by arg λ
    return Operator(PeriodicConvolution(K, image_shape=(H, W)), name=f"periodic {H}x{W}")


def _blur(H, W, boundary, psf="gaussian", **kw):
    return make_operator("blur2d", H * W, shape=f"{H},{W}", psf=psf, boundary=boundary, **kw)


def _diagonal():
    d = np.random.default_rng(3).standard_normal(40)
    d[::3] = 0.0  # a mask with zeros (σ = 0 ties) and negative entries (U = -V there)
    d[1] = -0.0
    return Operator(DiagonalMap(d, image_shape=(5, 8)), name="mask")


OPERATORS = {
    "periodic even 6x8": lambda: _periodic(6, 8, 0),
    "periodic odd 7x5": lambda: _periodic(7, 5, 1),
    "periodic odd-even 5x6": lambda: _periodic(5, 6, 2),
    "periodic even-odd 8x7": lambda: _periodic(8, 7, 3),
    "periodic motion blur 6x10": lambda: _blur(6, 10, "periodic", "motion", length=4.0, angle=30),
    "periodic blur1d": lambda: make_operator("blur1d", 30, boundary="periodic", sigma=1.5),
    "reflective gaussian 8x10": lambda: _blur(8, 10, "reflective", sigma=1.2),
    "reflective disk 7x9": lambda: _blur(7, 9, "reflective", "disk", radius=2.0),
    "kronecker blur 12x20": lambda: _blur(12, 20, "zero", sigma=1.2),
    "kronecker random 5x7": lambda: Operator(
        KroneckerMap(
            *np.random.default_rng(4).standard_normal((2, 5, 5))[:1],
            np.random.default_rng(5).standard_normal((7, 7)),
        ),
        name="kron",
    ),  # fmt: skip
    "diagonal with zeros": _diagonal,
    "inpaint": lambda: make_operator("inpaint", 64, fraction=0.4, seed=2),
    "dense shaw": lambda: make_operator("shaw", 48),
    "dense random": lambda: Operator.from_array(np.random.default_rng(6).standard_normal((30, 30))),
}


@pytest.fixture(params=list(OPERATORS), scope="module")
def case(request):
    op = OPERATORS[request.param]()
    U, s, Vt = op.svd  # exact_topk(None) for a structured map, LAPACK for a dense one
    return op, op.spectral_basis, U, s, Vt


def _close(got, want, rtol=1e-12):
    """Equal to ``rtol`` relative to the size of ``want`` (Frobenius norms, row by row)."""
    assert got.shape == want.shape
    err = np.linalg.norm(got - want, axis=-1)
    assert np.all(err <= rtol * np.linalg.norm(want, axis=-1) + 1e-300), err.max()


def _rows(b, width, seed=0):
    return np.random.default_rng(seed).standard_normal((b, width))


def test_the_basis_is_the_exact_svd_of_the_map(case):
    op, B, U, s, Vt = case
    assert isinstance(B, SpectralBasis) and B.shape == op.shape and B.r == min(op.shape)
    assert isinstance(B, DenseBasis) == (op.structure == "dense")
    if op.linear_map.exact_svd:  # the very arrays of exact_topk(None)
        U0, s0, Vt0 = op.linear_map.exact_topk(None)
        np.testing.assert_array_equal(U, U0)
        np.testing.assert_array_equal(Vt, Vt0)
        np.testing.assert_array_equal(B.sigma, s0)
    np.testing.assert_array_equal(B.sigma, op.singular_values)
    np.testing.assert_array_equal(B.sigma, s)
    Y, X, W = _rows(5, op.m, 1), _rows(5, op.n, 2), _rows(5, B.r, 3)
    _close(B.left(Y), Y @ U)
    _close(B.right(X), X @ Vt.T)
    _close(B.synth_right(W), W @ Vt)
    _close(B.synth_left(W), W @ U.T)


def test_round_trips_and_a_truncated_basis(case):
    op, B, U, s, Vt = case
    X, Y = _rows(4, op.n, 7), _rows(4, op.m, 8)
    _close(B.synth_right(B.right(X)), X)
    _close(B.synth_left(B.left(Y)), Y)
    k = max(1, B.r // 3)  # the first k vectors only (ends inside a conjugate pair or not)
    for kk in (k, k + 1):
        _close(B.left(Y, k=kk), Y @ U[:, :kk])
        _close(B.right(X, k=kk), X @ Vt[:kk].T)
        W = _rows(4, kk, kk)
        _close(B.synth_right(W), W @ Vt[:kk])
        _close(B.synth_left(W), W @ U[:, :kk].T)
    # one row as a 1-D array
    _close(B.left(Y[0]), Y[0] @ U)
    assert B.synth_right(B.right(X[1])).shape == (op.n,)


def test_tikhonov_through_the_basis_equals_the_normal_equations(case):
    """x_λ = V diag(s / (s² + λ)) Uᵀ y, against V diag(·) Uᵀ y with the dense SVD and against
    (AᵀA + λI)⁻¹ Aᵀ y solved on the dense A itself (no SVD: also checks U, s, V are A's)."""
    op, B, U, s, Vt = case
    A = op.A
    lam = 1e-2 * s[0] ** 2
    Y = _rows(3, op.m, 9)
    f = s / (s**2 + lam)
    got = B.synth_right(B.left(Y) * f)
    _close(got, (Y @ U * f) @ Vt)
    want = np.linalg.solve(A.T @ A + lam * np.eye(op.n), A.T @ Y.T).T
    _close(got, want, rtol=1e-10)
    _close(B.synth_left(B.right(got) * s), got @ A.T, rtol=1e-10)  # A x through the basis


def test_chunks_give_the_same_rows(case, monkeypatch):
    op, B, U, s, Vt = case
    Y = _rows(7, op.m, 10)
    whole = B.left(Y), B.synth_right(Y[:, : B.r])
    monkeypatch.setattr(structured, "BASIS_CHUNK_BYTES", 1)  # one row per chunk
    _close(B.left(Y), whole[0], rtol=1e-14)  # a GEMM and its GEMV rows round differently
    _close(B.synth_right(Y[:, : B.r]), whole[1], rtol=1e-14)


def test_operator_spectral_basis_is_cached_and_none_without_an_exact_svd():
    op = _blur(6, 7, "reflective", sigma=1.0)
    assert op.spectral_basis is op.spectral_basis
    assert "svd" not in op.__dict__  # the structured basis never needed the dense SVD
    zero = structured.ZeroConvolution(np.arange(15.0).reshape(3, 5), (6, 7))
    assert Operator(zero, name="Z").spectral_basis is None
    import scipy.sparse

    assert Operator(structured.SparseMap(scipy.sparse.eye(9)), name="S").spectral_basis is None
    assert LinearMap((3, 3)).spectral_basis() is None


def test_bad_input_gets_one_clear_message():
    B = _periodic(4, 5, 0).spectral_basis
    with pytest.raises(FastinvError, match=r"left input must be of shape \(20,\) or \(batch, 20\)"):
        B.left(np.ones((2, 19)))
    with pytest.raises(FastinvError, match="right input must be a real array"):
        B.right(np.ones((2, 20), dtype=complex))
    with pytest.raises(FastinvError, match=r"k must be .*, got 21"):
        B.left(np.ones(20), k=21)
    with pytest.raises(FastinvError, match=r"synth_right input must be of shape .*k <= 20"):
        B.synth_right(np.ones((2, 21)))
    with pytest.raises(FastinvError, match="DenseBasis"):
        DenseBasis(np.eye(3), np.ones(4), np.eye(3))


def test_periodic_blur_at_n_65536_without_dense_vectors(monkeypatch):
    """256 × 256 periodic Gaussian blur: left() of 4 rows with vectors() and to_dense() made to
    fail; Parseval ||Y U|| = ||Y||, selected coefficients against explicit singular vectors."""
    op = _blur(256, 256, "periodic", sigma=2.0)
    lm = op.linear_map

    def refuse(*args, **kwargs):
        raise AssertionError("a dense matrix or dense singular vectors were formed")

    monkeypatch.setattr(PeriodicConvolution, "vectors", refuse)
    monkeypatch.setattr(PeriodicConvolution, "to_dense", refuse)
    B = op.spectral_basis
    Y = _rows(4, op.n, 11)
    C = B.left(Y)
    assert C.shape == (4, 65536)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), np.linalg.norm(Y, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(B.sigma, op.singular_values)
    _close(B.synth_left(C), Y)
    monkeypatch.undo()
    order = np.argsort(-lm.sigma_items(), kind="stable")
    j = np.r_[0:6, 1000, 1001, 30001, 65535]  # leading pairs, the middle, the smallest σ
    U, V = lm.vectors(order[j])  # 10 columns only
    _close(C[:, j], Y @ U)
    _close(B.right(Y[:2], k=65535)[:, j[:-1]], Y[:2] @ V[:, :-1])
