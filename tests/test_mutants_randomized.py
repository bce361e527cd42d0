"""Value tests that kill surviving mutants of fastinv.linalg.randomized (issue 15).

``auto_n_iter``: the rule in its docstring, at the boundary k = 0.1 min(shape), on both
orientations of the shape, for both methods.

``_cholqr_rows``, ``_ritz_lower_bound``, ``_orth_against``, ``_krylov_basis``,
``_krylov_ritz``: closed forms (exactly representable blocks, full-span probes, a diagonal
operator whose Krylov space is exhausted) and boundary cases of their thresholds, called
directly; block size one against ``naive_block_krylov``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from naive import matrix_with_spectrum, naive_block_krylov

from fastinv.linalg.randomized import auto_n_iter, rsvd


@pytest.mark.parametrize(
    "k, shape, method, q",
    [
        (9, (100, 200), "hmt", 7),  # 9 < 0.1 * 100
        (10, (100, 200), "hmt", 4),  # the boundary is not below
        (9, (200, 100), "hmt", 7),  # the smaller dimension counts
        (10, (300, 100), "hmt", 4),  # ... not the larger one
        (29, (300, 400), "hmt", 7),
        (9, (100, 200), "block_krylov", 4),
        (10, (100, 200), "block_krylov", 2),
        (10, (300, 100), "block_krylov", 2),
        (1, (11, 11), "block_krylov", 4),
        (2, (11, 11), "block_krylov", 2),
    ],
)
def test_auto_n_iter_rule(k, shape, method, q):
    assert auto_n_iter(k, shape, method) == q


def test_auto_n_iter_default_method_is_hmt():
    assert auto_n_iter(9, (100, 200)) == 7 and auto_n_iter(50, (100, 200)) == 4


# ------------------------------------------------------------------ _cholqr_rows
@pytest.fixture
def torch1():
    """torch with one intra-op thread for the test (restored afterwards): a threaded torch
    can hang in a forked worker (mutmut) and gains nothing on 2 x 5 blocks."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(n)


@pytest.mark.parametrize(
    "a, b, kept",
    [
        (1.0, 100.5 * 2.0**-26, True),  # pivot ratio just above 100 √ε: kept
        (1.0, 100.0 * 2.0**-26, False),  # ratio exactly 100 √ε: refused (strict >)
        (1e4, 1e-3, False),  # ratio 1e-7 with a large top pivot: refused
    ],
)
def test_cholqr_rows_pivot_ratio_boundary(a, b, kept, torch1):
    """_cholqr_rows keeps a block iff its smallest Cholesky pivot exceeds 100 √ε times the
    largest (orthogonal rows: the pivots are the row norms, exactly)."""
    from fastinv.linalg.randomized import _cholqr_rows

    torch = torch1

    X = np.zeros((2, 5))
    X[0, 0], X[1, 1] = a, b
    Q = _cholqr_rows(torch, torch.from_numpy(X))
    if kept:
        np.testing.assert_allclose(Q.numpy(), np.eye(5)[:2], rtol=0, atol=1e-15)
    else:
        assert Q is None


# ------------------------------------------------------------------ _ritz_lower_bound
def test_ritz_lower_bound_full_span_is_the_norm():
    """_ritz_lower_bound: with probes spanning the whole space the generalised Rayleigh
    quotient max ‖E X z‖ / ‖X z‖ is ‖E‖₂ exactly (largest generalised eigenvalue, not the
    best single probe nor another eigenvalue)."""
    from fastinv.linalg.randomized import _ritz_lower_bound

    rng = np.random.default_rng(1)
    U = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    V = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    E = U @ np.diag([3.0, 2.0, 1.0]) @ V.T
    xh = rng.standard_normal((3, 3))
    yh = xh @ E.T
    ny = np.linalg.norm(yh, axis=1)
    assert np.max(ny / np.linalg.norm(xh, axis=1)) < 2.9  # no single probe finds ‖E‖
    assert _ritz_lower_bound(yh, xh, ny) == pytest.approx(3.0, rel=1e-12)


def test_ritz_lower_bound_dependent_probes_fall_back_to_best_probe():
    """_ritz_lower_bound: when the probe Gram matrix is singular (a zero probe) the bound is
    the best single-probe ratio ‖E x_i‖ / ‖x_i‖ (probes of norm below 1, a zero probe
    counting 0)."""
    from fastinv.linalg.randomized import _ritz_lower_bound

    E = np.diag([3.0, 1.0])
    xh = np.array([[0.1, 0.0], [0.0, 0.2], [0.0, 0.0]])
    yh = xh @ E.T
    ny = np.linalg.norm(yh, axis=1)
    assert _ritz_lower_bound(yh, xh, ny) == pytest.approx(3.0, rel=1e-14)


# ------------------------------------------------------------------ block Krylov
class _CountingOp:
    """Dense operator in the rows layout of fastinv.linalg.randomized, counting passes."""

    def __init__(self, M):
        self.M = M
        self.shape = M.shape
        self.passes = 0

    def mv(self, xt):
        self.passes += 1
        return xt @ self.M.T

    def rmv(self, yt):
        self.passes += 1
        return yt @ self.M


def test_krylov_right_basis_exhausted_uses_one_explicit_pass():
    """_krylov_basis/_krylov_ritz: when Mᵀ Q₀ lies in span(P₀) exactly (a diagonal M probed
    with unit vectors) the basis stops after one block, says so, and the Ritz step makes one
    explicit pass Q₀ᵀ M: top-1 triplet (5, e₁, e₁) of diag(4, 5, ...)."""
    from fastinv.linalg.randomized import _krylov_basis, _krylov_ritz, _NumpyBackend

    be = _NumpyBackend(np.float64)
    M = np.diag([4.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.1, 0.05])
    op = _CountingOp(M)
    notes = []
    kb = _krylov_basis(op, be, np.eye(10)[:2].copy(), 2, notes)
    assert (kb.used, kb.explicit, op.passes) == (1, True, 2)
    assert notes == ["right Krylov basis exhausted at block 0; Rayleigh-Ritz by one explicit pass"]
    ut, s, vt = _krylov_ritz(op, be, kb, 1)
    assert op.passes == 3
    np.testing.assert_array_equal(s, [5.0])
    np.testing.assert_allclose(np.abs(ut), np.eye(10)[1:2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.abs(vt), np.eye(10)[1:2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ut.T @ (s[:, None] * vt), M * (M == 5.0), atol=1e-14)


def test_block_krylov_block_size_one_matches_naive():
    """rsvd(method="block_krylov") with blocks of one vector (k = 1, p = 0): every new
    vector is orthogonalised against a one-vector basis; same top triplet as the naive
    Krylov reference from the same Ω."""
    M = matrix_with_spectrum(1.0 / np.arange(1, 41), 60, 40, seed=2)
    Omega = np.random.default_rng(5).standard_normal((1, 40)).T
    Un, sn, Vn = naive_block_krylov(M, 1, Omega, 3)
    r = rsvd(M, 1, n_oversamples=0, n_iter=3, seed=5, method="block_krylov")
    assert r.krylov_blocks == 4
    np.testing.assert_allclose(r.s, sn, rtol=1e-12)
    np.testing.assert_allclose(np.abs(r.U[:, 0] @ Un[:, 0]), 1.0, rtol=1e-10)


# ------------------------------------------------------------------ _orth_against
def _split_block(n, l0, l, big, small, seed):
    """(basis, wt): ``l0`` orthonormal basis rows of length ``n`` and a block of ``l`` rows
    ``S basis + small * P`` with ``‖S‖_F = big`` and ``P`` orthonormal rows ⊥ basis."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((n, l0)))[0].T.copy()
    P = np.linalg.qr(np.hstack([basis.T, rng.standard_normal((n, l))]))[0][:, l0:].T
    S = rng.standard_normal((l, l0))
    return basis, big / np.linalg.norm(S) * S @ basis + small * P


def _orth(wt, basis, tol):
    from fastinv.linalg.randomized import _NumpyBackend, _orth_against

    return _orth_against(_NumpyBackend(np.float64), wt.copy(), basis, tol)


def test_orth_against_empty_basis_is_no_basis():
    """_orth_against: an empty basis (0 rows) is the no-basis case: plain orthonormalisation
    and no coefficient block."""
    basis, wt = _split_block(30, 2, 3, 1.0, 1.0, seed=0)
    q0, c0, r0, ok0 = _orth(wt, None, 1e-12)
    q1, c1, r1, ok1 = _orth(wt, basis[:0], 1e-12)
    assert c0 is None and c1 is None and ok0 and ok1
    np.testing.assert_array_equal(q1, q0)
    np.testing.assert_array_equal(r1, r0)
    np.testing.assert_allclose(r0.T @ q0, wt, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_orth_against_two_sweeps_orthogonal_under_cancellation(seed):
    """_orth_against: with 99 % of the block in span(basis) (below the third-sweep trigger)
    the two classical Gram–Schmidt sweeps leave Qt orthogonal to the basis to ~ε, and
    Qtᵀ R + basisᵀ C reproduces the block."""
    basis, wt = _split_block(2000, 12, 3, 100.0, 1.0, seed)
    qt, c, r, ok = _orth(wt, basis, 1e-12)
    assert ok
    assert np.max(np.abs(basis @ qt.T)) < 1e-15
    np.testing.assert_allclose(qt @ qt.T, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(c.T @ basis + r.T @ qt, wt, rtol=0, atol=1e-13)


def test_orth_against_third_sweep_tolerance_boundaries():
    """_orth_against on a block lying in span(basis) (all that is left after two sweeps is
    rounding noise): the third sweep runs iff the overlap max|basis Qtᵀ| exceeds tol strictly,
    and ok means the overlap after it is at most tol (inclusive)."""
    from fastinv.linalg.randomized import _NumpyBackend

    be = _NumpyBackend(np.float64)
    basis, wt = _split_block(500, 6, 2, 1.0, 0.0, seed=2)
    q_two, _, _, ok = _orth(wt, basis, math.inf)  # the two-sweep result, unchecked
    d = be.maxabs(basis @ q_two.T)
    q3, _, _, ok3 = _orth(wt, basis, 0.0)  # third sweep; its overlap is not <= 0
    e = be.maxabs(basis @ q3.T)
    assert ok and not ok3 and d > 10 * e > 0.0
    q_same, _, _, ok = _orth(wt, basis, d)  # overlap == tol: no third sweep
    assert ok
    np.testing.assert_array_equal(q_same, q_two)
    q3b, _, _, ok = _orth(wt, basis, e)  # overlap after the third sweep == tol: ok
    assert ok
    np.testing.assert_array_equal(q3b, q3)


@pytest.mark.parametrize(
    "ratio, third",
    [(2.0, False), (0.5, True)],
)
def test_orth_against_third_sweep_trigger(ratio, third):
    """_orth_against runs the third, checked sweep iff the smallest |R_ii| after two sweeps
    is at most 1e-3 ‖wt‖_F / √l (l = 3 rows of length 400, ‖wt‖_F ≈ 1e4): with tol = 0 a
    third sweep never reports ok (its overlap is rounding, not 0), two sweeps always do."""
    l, big = 3, 1e4
    small = ratio * 1e-3 * big / math.sqrt(l)  # ‖wt‖_F = big to 1e-7 relative
    basis, wt = _split_block(400, 8, l, big, small, seed=4)
    _, _, r, ok = _orth(wt, basis, 0.0)
    assert ok is not third
    np.testing.assert_allclose(np.abs(np.diag(r)), small, rtol=1e-9)
