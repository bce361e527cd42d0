"""Slow, obviously correct references for fastinv.randomized (plain NumPy, QR everywhere).

- ``naive_svd_topk``: truncated ``numpy.linalg.svd`` (the ground truth).
- ``naive_hmt``: HMT Alg. 4.4 (randomized subspace iteration) with Householder QR after
  every product, given the test matrix ``Omega``.
- ``naive_block_krylov``: Musco & Musco block Krylov: stack the blocks
  ``M Ω, (M Mᵀ) M Ω, …`` (each orthonormalised), QR the stack, SVD of ``Qᵀ M``.
- ``naive_pl``: ``P @ L`` of a partially pivoted LU (scipy.linalg.lu), the reference of
  the ``_pl_rows`` kernel.
- Test matrices with known spectra: ``U diag(s) Vᵀ`` with Haar-distributed ``U``, ``V``.
- ``hmt_tail_bound``: the error bound the tests check (see its docstring).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla


def naive_svd_topk(M, k):
    U, s, Vt = np.linalg.svd(np.asarray(M, dtype=np.float64), full_matrices=False)
    return U[:, :k], s[:k], Vt[:k]


def naive_hmt(M, k, Omega, q):
    """HMT Alg. 4.4 with QR re-orthonormalisation; Omega (n, l). Returns U, s, Vt."""
    Q, _ = np.linalg.qr(M @ Omega)
    for _ in range(q):
        W, _ = np.linalg.qr(M.T @ Q)
        Q, _ = np.linalg.qr(M @ W)
    B = Q.T @ M
    Ub, s, Vt = np.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[:, :k], s[:k], Vt[:k]


def naive_block_krylov(M, k, Omega, q):
    """Randomized block Krylov (Musco & Musco 2015, Alg. 2) with Rayleigh-Ritz."""
    blocks = []
    Y, _ = np.linalg.qr(M @ Omega)
    blocks.append(Y)
    for _ in range(q):
        Y, _ = np.linalg.qr(M @ (M.T @ Y))
        blocks.append(Y)
    Q, _ = np.linalg.qr(np.hstack(blocks))
    B = Q.T @ M
    Ub, s, Vt = np.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[:, :k], s[:k], Vt[:k]


def naive_pl(Y):
    """P @ L of the partially pivoted LU factorisation Y = P L U (Y of shape (N, l))."""
    PL, _ = sla.lu(Y, permute_l=True)
    return PL


def haar(n, rng, r=None):
    """n x r matrix with orthonormal columns, Haar distributed (QR of a Gaussian, signs fixed)."""
    r = n if r is None else r
    Q, R = np.linalg.qr(rng.standard_normal((n, r)))
    return Q * np.sign(np.diag(R))


def spectrum(kind, r, k=10):
    """Singular values: 'fast' 2^-i, 'slow' 1/i, 'flat_gap' 1 (i <= k) then 1e-3 / i."""
    i = np.arange(1, r + 1, dtype=np.float64)
    if kind == "fast":
        return 2.0 ** -(i - 1)
    if kind == "slow":
        return 1.0 / i
    if kind == "flat_gap":
        return np.where(i <= k, 1.0, 1e-3 / np.maximum(i - k, 1.0))
    raise ValueError(kind)


def matrix_with_spectrum(s, m, n, seed=0):
    """M = U diag(s) Vᵀ of shape (m, n), U and V Haar with len(s) <= min(m, n) columns."""
    rng = np.random.default_rng(seed)
    r = len(s)
    U = haar(m, rng, r)
    V = haar(n, rng, r)
    return np.ascontiguousarray((U * s) @ V.T)


def residual_norm(M, U, s, Vt):
    """||M - U diag(s) Vt||_2 by a dense SVD."""
    return float(np.linalg.norm(np.asarray(M, np.float64) - (U * s) @ Vt, 2))


def hmt_tail_bound(s, k, p, q, m, n):
    """Bound on ||M - [Q Qᵀ M]_k||_2 holding with probability >= 1 - 6 p^(-p) (p >= 4).

    HMT (2011) eq. (1.9)/(10.9)-type simplified tail bound for a Gaussian test matrix with
    k + p columns: ||(I - P_Y) B|| <= (1 + 11 sqrt((k+p) min(m,n))) σ_{k+1}(B) except with
    probability 6 p^-p. Applied to B = (M Mᵀ)^q M (singular values σ^(2q+1)) and combined
    with HMT Thm 9.2, ||(I - P_Y) M|| <= ||(I - P_Y) B||^(1/(2q+1)), it gives
    ||(I - P_Y) M|| <= (1 + 11 sqrt((k+p) min(m,n)))^(1/(2q+1)) σ_{k+1}.
    Truncating to rank k adds at most σ_{k+1} (HMT §9.4). A block Krylov space contains
    range(Y), so the same bound holds for it.
    """
    sk1 = float(s[k]) if k < len(s) else 0.0
    factor = (1.0 + 11.0 * math.sqrt((k + p) * min(m, n))) ** (1.0 / (2 * q + 1))
    return sk1 + factor * sk1
