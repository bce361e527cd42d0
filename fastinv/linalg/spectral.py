"""Comparing a matrix M (a surrogate C, a mean Jacobian, a reference inverse) with A's SVD.

What is compared, and why (docs/science.md §3):

- *Filter factors* F = Vᵀ M U S: diag(F) says how much of A's singular direction i M inverts
  (1 like A⁻¹, 0 suppressed) — this pairs M's action with A's singular *vectors*, not with
  sorted singular values; ‖offdiag F‖_F/‖F‖_F says how far M is from any spectral filter of A.
- *Singular values* on a log scale, with the Weyl (|σ_i(M) − σ_i(B)| <= ‖M − B‖₂) and Mirsky
  (‖σ(M) − σ(B)‖₂ <= ‖M − B‖_F) bounds beside them: spectra never tell more than the norm of
  the difference.
- *Principal angles* between top-k singular subspaces (single vectors inside clusters of
  near-equal σ are not identifiable, subspaces are; the spectral gaps are reported).
- *Operator distances* ‖M − B‖/‖B‖ and the residual ‖MA − I‖.
- *Eigenvalues* only together with Henrici's departure from normality of both matrices: the
  eigenvalues of non-normal matrices mislead (I and I − N, N nilpotent, share all
  eigenvalues but differ by ‖N‖₂).

All computation is in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import scipy.linalg as sla

from fastinv._validation import check_finite, check_int, check_matrix
from fastinv.errors import FastinvError
from fastinv.io import to_jsonable
from fastinv.linalg.estimators import check_svd, numerical_rank, resolve_operator, thin_svd

_EPS = float(np.finfo(np.float64).eps)

#: relative Henrici departure below which eigenvalues are reported as meaningful (see
#: :func:`eigen_report`)
EIG_NORMALITY_THRESHOLD = 1e-3
#: |φ − 1| <= this: direction counted as inverted; |φ| <= this: counted as suppressed
PHI_TOL = 0.1
#: default subspace dimensions for principal angles
DEFAULT_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)

__all__ = [
    "split_filter_matrix",
    "phi_summary",
    "DEFAULT_KS",
    "EIG_NORMALITY_THRESHOLD",
    "PHI_TOL",
    "Comparison",
    "angles_within_rank",
    "compare",
    "eigen_report",
    "filter_factor_matrix",
    "filter_factors",
    "henrici_departure",
    "operator_distance",
    "per_k",
    "principal_angles",
    "residual_identity",
    "singular_values",
    "spectral_norm",
    "sv_distance",
    "top_svd",
]


def _square(M: np.ndarray, what: str) -> None:
    if M.shape[0] != M.shape[1]:
        raise FastinvError(f"{what} must be square for eigenvalues, got shape {M.shape}")


# --------------------------------------------------------------------------------------------
# filter factors


def filter_factor_matrix(M, U, s, Vt) -> np.ndarray:
    """F = Vᵀ M U S, the matrix M in A's singular bases, scaled so that M = A⁻¹ gives F = I.

    Parameters
    ----------
    M : ndarray of shape (n, m)
        Maps measurements (m) to signals (n).
    U : ndarray of shape (m, r)
    s : ndarray of shape (r,)
    Vt : ndarray of shape (r, n)
        (Thin) SVD of A (m, n); a top-r SVD gives F restricted to those directions.

    Returns
    -------
    ndarray of shape (r, r)
    """
    U, s, Vt = check_svd((U, s, Vt), None, complete=False)
    M = check_matrix(M, "M")
    if M.shape != (Vt.shape[1], U.shape[0]):
        raise FastinvError(
            f"M has shape {M.shape} but A's SVD needs ({Vt.shape[1]}, {U.shape[0]}) "
            "(M maps measurements to signals)"
        )
    return (Vt @ (M @ U)) * s[None, :]


def filter_factors(M, U, s, Vt) -> tuple[np.ndarray, float]:
    """Filter factors φ = diag(Vᵀ M U S) of M and its off-diagonal share.

    Parameters
    ----------
    M : ndarray of shape (n, m)
    U, s, Vt : SVD of A, shapes (m, r), (r,), (r, n)

    Returns
    -------
    phi : ndarray of shape (r,)
        φ_i = σ_i v_iᵀ M u_i (1: direction inverted as by A⁻¹; 0: suppressed).
    offdiag_share : float
        ‖F − diag(φ)‖_F / ‖F‖_F (0: M is a spectral filter of A; 0 also when F = 0).
    """
    return split_filter_matrix(filter_factor_matrix(M, U, s, Vt))


def split_filter_matrix(F) -> tuple[np.ndarray, float]:
    """(φ = diag(F), ‖F − diag(φ)‖_F / ‖F‖_F) of a filter-factor matrix F = Vᵀ M U S (0 also
    when F = 0); F is left unchanged."""
    F = np.asarray(F, dtype=np.float64)
    phi = np.diag(F).copy()
    total = float(np.linalg.norm(F))
    off = float(np.linalg.norm(F - np.diag(phi)))
    return phi, (off / total if total > 0 else 0.0)


# --------------------------------------------------------------------------------------------
# singular values


def singular_values(M) -> np.ndarray:
    """All singular values of M, descending (LAPACK gesdd, gesvd if it fails).

    Parameters
    ----------
    M : ndarray of shape (p, q)

    Returns
    -------
    ndarray of shape (min(p, q),)
    """
    M = check_matrix(M, "M")
    try:
        return sla.svd(M, compute_uv=False, lapack_driver="gesdd", check_finite=False)
    except np.linalg.LinAlgError:  # pragma: no cover
        return sla.svd(M, compute_uv=False, lapack_driver="gesvd", check_finite=False)


def _spectrum(s, what: str) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise FastinvError(f"{what} must be a non-empty 1-D array of singular values")
    check_finite(s, what)
    if np.any(s < 0):
        raise FastinvError(f"{what} holds negative values; singular values are >= 0")
    return s


def sv_distance(
    s1,
    s2,
    *,
    norm2_diff: float | None = None,
    fro_diff: float | None = None,
    tiny: float | None = None,
) -> dict:
    """Distance of two spectra on a log scale, with the Weyl and Mirsky checks.

    Parameters
    ----------
    s1, s2 : ndarray of shape (k,)
        Singular values, descending (the same k leading ones of two matrices M1, M2).
    norm2_diff : float, optional
        ‖M1 − M2‖₂; with it the Weyl bound max_i |s1_i − s2_i| <= ‖M1 − M2‖₂ is checked.
    fro_diff : float, optional
        ‖M1 − M2‖_F; with it the Mirsky bound ‖s1 − s2‖₂ <= ‖M1 − M2‖_F is checked (it holds
        for any leading k as well).
    tiny : float, optional
        Entries compared on the log scale are those with both values > tiny; default
        max(s1_1, s2_1)·k·eps.

    Returns
    -------
    dict
        ``max_log10`` and ``rms_log10`` (|log10 s1 − log10 s2| over the compared entries:
        0.3 means a factor 2), ``n_compared``, ``n_total``, ``max_abs`` (Weyl's side),
        ``l2_abs`` (Mirsky's side), and where the norms were given ``weyl_bound``,
        ``weyl_holds``, ``mirsky_bound``, ``mirsky_holds`` (a relative slack of 1e-10 plus
        10·k·eps·max σ absorbs rounding).
    """
    s1 = _spectrum(s1, "s1")
    s2 = _spectrum(s2, "s2")
    if s1.shape != s2.shape:
        raise FastinvError(
            f"the spectra have lengths {s1.size} and {s2.size}; compare the same number of "
            "leading singular values"
        )
    k = s1.size
    scale = max(float(s1.max()), float(s2.max()))
    if tiny is None:
        tiny = scale * k * _EPS
    mask = (s1 > tiny) & (s2 > tiny)
    out: dict = {"n_total": int(k), "n_compared": int(mask.sum())}
    if mask.any():
        d = np.abs(np.log10(s1[mask]) - np.log10(s2[mask]))
        out["max_log10"] = float(d.max())
        out["rms_log10"] = float(np.sqrt(np.mean(d * d)))
    else:
        out["max_log10"] = out["rms_log10"] = None
    diff = s1 - s2
    out["max_abs"] = float(np.abs(diff).max())
    out["l2_abs"] = float(np.linalg.norm(diff))
    slack = 10 * k * _EPS * scale
    if norm2_diff is not None:
        out["weyl_bound"] = float(norm2_diff)
        out["weyl_holds"] = bool(out["max_abs"] <= norm2_diff * (1 + 1e-10) + slack)
    if fro_diff is not None:
        out["mirsky_bound"] = float(fro_diff)
        out["mirsky_holds"] = bool(out["l2_abs"] <= fro_diff * (1 + 1e-10) + slack)
    return out


# --------------------------------------------------------------------------------------------
# subspaces


def _ks(ks, kmax: int) -> list[int]:
    if isinstance(ks, (int, np.integer)):
        ks = [int(ks)]
    try:
        out = [int(k) for k in ks]
    except (TypeError, ValueError):
        raise FastinvError(f"ks must be an integer or a list of integers, got {ks!r}") from None
    if not out:
        raise FastinvError("ks is empty; give at least one subspace dimension")
    bad = [k for k in out if k < 1 or k > kmax]
    if bad:
        raise FastinvError(f"subspace dimensions must lie in [1, {kmax}], got {bad}")
    return out


def _gap(s: np.ndarray, k: int) -> float | None:
    """(σ_k − σ_{k+1}) / σ_1 (None when σ_{k+1} is not available)."""
    if k >= s.size or s[0] == 0:
        return None
    return float((s[k - 1] - s[k]) / s[0])


def _subspace_angles(Q1: np.ndarray, Q2: np.ndarray) -> np.ndarray:
    """Principal angles (radians, descending) between the spans of orthonormal Q1, Q2 (p, k).

    The algorithm of scipy.linalg.subspace_angles (Knyazev & Argentati 2002: cosines from
    svd(Q1ᵀQ2), sines from svd(Q2 − Q1 Q1ᵀQ2) for the small angles, which keeps them
    accurate), without its orthonormalisation of the inputs: singular vectors already are.
    The sines are taken where the angle is below 45°: the mask is read in the angles' order
    (descending), i.e. on the reversed cosines (scipy's reads it in the cosines' order, so
    when angles above and below 45° mix, the small ones come from arccos and lose accuracy).
    """
    C = Q1.T @ Q2
    sigma = sla.svdvals(C, check_finite=False)
    mask = sigma[::-1] ** 2 >= 0.5
    if mask.any():
        R = Q2 - Q1 @ C
        mu = np.arcsin(np.clip(sla.svdvals(R, check_finite=False), -1.0, 1.0))
    else:
        mu = 0.0
    return np.where(mask, mu, np.arccos(np.clip(sigma[::-1], -1.0, 1.0)))


def per_k(a: dict, what: str, ks) -> np.ndarray:
    """``a[what]`` of a :func:`principal_angles` result (given for ``a["k"]``) laid out on
    ``ks``, NaN where a k is missing."""
    vals = dict(zip(a["k"], a[what], strict=True))
    return np.array([vals.get(k, np.nan) for k in ks], dtype=float)


def principal_angles(
    M1,
    M2,
    ks,
    *,
    side: str = "left",
    svd1=None,
    svd2=None,
) -> dict:
    """Principal angles between the top-k singular subspaces of two matrices.

    Parameters
    ----------
    M1, M2 : ndarray of shape (p, q), or None when ``svd1``/``svd2`` is given
    ks : int or sequence of int
        Subspace dimensions, 1 <= k <= number of available singular vectors.
    side : {"left", "right"}
        Left: span of the leading left singular vectors (column space, p-dimensional, M's
        output); right: of the right singular vectors (q-dimensional, M's input).
    svd1, svd2 : tuple (U, s, Vt), optional
        Precomputed (possibly top-k) SVDs; default a full SVD of M1, M2.

    Returns
    -------
    dict
        ``side``, ``k`` (list), ``max_deg`` and ``mean_deg`` (per k, degrees), ``angles_deg``
        (per k, all k angles, descending), ``gap_1``/``gap_2`` ((σ_k − σ_{k+1})/σ_1 of each
        matrix, None where unavailable: a small gap means the top-k subspace itself is
        ill-determined, Davis–Kahan/Wedin). Angles are invariant to scaling either matrix.
    """
    if side not in ("left", "right"):
        raise FastinvError(f"side must be 'left' or 'right', got {side!r}")
    svds = []
    for M, sv, what in ((M1, svd1, "M1"), (M2, svd2, "M2")):
        if sv is None:
            if M is None:
                raise FastinvError(f"give {what} or its SVD")
            sv = thin_svd(check_matrix(M, what))
        else:
            sv = check_svd(sv, None, complete=False)
        svds.append(sv)
    (U1, s1, V1t), (U2, s2, V2t) = svds
    dim1 = U1.shape[0] if side == "left" else V1t.shape[1]
    dim2 = U2.shape[0] if side == "left" else V2t.shape[1]
    if dim1 != dim2:
        raise FastinvError(
            f"the {side} singular vectors live in spaces of dimension {dim1} and {dim2}; the "
            "matrices must have the same shape"
        )
    kmax = min(s1.size, s2.size)
    ks = _ks(ks, kmax)
    out: dict = {"side": side, "k": ks, "max_deg": [], "mean_deg": [], "angles_deg": []}
    out["gap_1"] = [_gap(s1, k) for k in ks]
    out["gap_2"] = [_gap(s2, k) for k in ks]
    for k in ks:
        if side == "left":
            B1, B2 = U1[:, :k], U2[:, :k]
        else:
            B1, B2 = V1t[:k].T, V2t[:k].T
        ang = np.degrees(_subspace_angles(B1, B2))
        out["angles_deg"].append(ang)
        out["max_deg"].append(float(ang.max()))
        out["mean_deg"].append(float(ang.mean()))
    return out


def _no_angles(side: str) -> dict:
    return {"side": side, "k": [], "max_deg": [], "mean_deg": []}


def angles_within_rank(svd1, svd2, ks, shape, *, sides=("left", "right")) -> dict[str, dict]:
    """:func:`principal_angles` of two SVDs for the ``ks`` up to both numerical ranks.

    Subspaces beyond a matrix's numerical rank are arbitrary, so those k are left out; when
    none is left the entry is empty (``k``, ``max_deg``, ``mean_deg`` empty lists).

    Parameters
    ----------
    svd1, svd2 : tuple (U, s, Vt)
        (Top-k) SVDs of two matrices of shape ``shape``.
    ks : list of int
        Subspace dimensions, ascending.
    shape : (p, q)
        Shape of the matrices (for the numerical rank, :func:`numerical_rank`).
    sides : tuple of {"left", "right"}

    Returns
    -------
    dict
        Per side, the :func:`principal_angles` result (or the empty entry).
    """
    avail = min(numerical_rank(svd1[1], *shape), numerical_rank(svd2[1], *shape))
    kk = [q for q in ks if q <= avail]
    out = {}
    for side in sides:
        if kk:
            out[side] = principal_angles(None, None, kk, side=side, svd1=svd1, svd2=svd2)
        else:
            out[side] = _no_angles(side)
    return out


def _call_svd_fn(svd_fn, M, k):
    res = svd_fn(M, k)
    if not isinstance(res, (tuple, list)) or len(res) not in (3, 4):
        raise FastinvError("svd_fn must return (U, s, Vt) or (U, s, Vt, info)")
    U, s, Vt = (np.asarray(x, dtype=np.float64) for x in res[:3])
    info = res[3] if len(res) == 4 else {}
    return U[:, :k], s[:k], Vt[:k], info


def top_svd(M, k: int, svd_fn: Callable | None = None):
    """The leading ``k`` singular triplets of M, in float64.

    Parameters
    ----------
    M : ndarray of shape (p, q)
    k : int
    svd_fn : callable (M, k) -> (U, s, Vt[, info]), optional
        Top-k SVD (a randomized one for large matrices); default the full LAPACK SVD
        (:func:`fastinv.linalg.estimators.thin_svd`), truncated.

    Returns
    -------
    U : ndarray of shape (p, k)
    s : ndarray of shape (k,)
    Vt : ndarray of shape (k, q)
    """
    if svd_fn is None:
        U, s, Vt = thin_svd(M)
        return U[:, :k], s[:k], Vt[:k]
    return _call_svd_fn(svd_fn, M, k)[:3]


def spectral_norm(M, svd_fn: Callable | None = None) -> float:
    """‖M‖₂, the largest singular value: :func:`singular_values` or ``svd_fn(M, 1)``."""
    if svd_fn is None:
        return float(singular_values(M)[0])
    return float(_call_svd_fn(svd_fn, M, 1)[1][0])


# --------------------------------------------------------------------------------------------
# operator distances


def _norm2(D: np.ndarray, norm2: Callable | None) -> float:
    if norm2 is not None:
        return float(norm2(D))
    return float(singular_values(D)[0])


def operator_distance(M, B, *, norm2: Callable[[np.ndarray], float] | None = None) -> dict:
    """Distance of M from a reference B in the 2-norm and the Frobenius norm.

    Parameters
    ----------
    M, B : ndarray of shape (p, q)
    norm2 : callable, optional
        Computes a matrix 2-norm (default: largest singular value, full SVD).

    Returns
    -------
    dict
        ``rel_2`` = ‖M − B‖₂/‖B‖₂, ``rel_fro`` = ‖M − B‖_F/‖B‖_F (None if B = 0), ``abs_2``,
        ``abs_fro``, ``norm2_B``, ``fro_B``.
    """
    M = check_matrix(M, "M")
    B = check_matrix(B, "B")
    if M.shape != B.shape:
        raise FastinvError(f"M has shape {M.shape} but B has {B.shape}; they must match")
    D = M - B
    a2, af = _norm2(D, norm2), float(np.linalg.norm(D))
    b2, bf = _norm2(B, norm2), float(np.linalg.norm(B))
    return _distance(a2, af, b2, bf)


def _distance(a2: float, af: float, b2: float, bf: float) -> dict:
    """The :func:`operator_distance` dict from ‖M − B‖₂, ‖M − B‖_F, ‖B‖₂ and ‖B‖_F."""
    return {
        "rel_2": a2 / b2 if b2 > 0 else None,
        "rel_fro": af / bf if bf > 0 else None,
        "abs_2": a2,
        "abs_fro": af,
        "norm2_B": b2,
        "fro_B": bf,
    }


def residual_identity(M, A, *, norm2: Callable[[np.ndarray], float] | None = None) -> dict:
    """How far M is from a left inverse of A: ‖MA − I‖₂ and ‖MA − I‖_F/√n.

    Parameters
    ----------
    M : ndarray of shape (n, m)
    A : ndarray of shape (m, n)

    Returns
    -------
    dict
        ``{"2": ‖MA − I‖₂, "fro": ‖MA − I‖_F/√n}`` (the latter an RMS over directions: 1 for
        M = 0).
    """
    M = check_matrix(M, "M")
    A = check_matrix(A, "A")
    if M.shape != (A.shape[1], A.shape[0]):
        raise FastinvError(
            f"M has shape {M.shape} but A has {A.shape}; M must be ({A.shape[1]}, {A.shape[0]})"
        )
    R = M @ A
    R[np.diag_indices(R.shape[0])] -= 1.0
    return {"2": _norm2(R, norm2), "fro": float(np.linalg.norm(R) / np.sqrt(R.shape[0]))}


# --------------------------------------------------------------------------------------------
# eigenvalues, with non-normality beside them


def _schur_eigs(M: np.ndarray) -> tuple[np.ndarray, float]:
    """Eigenvalues and relative Henrici departure from the real Schur form M = Z T Zᵀ.

    dep(M)² ‖M‖_F² = ‖M‖_F² − Σ|λ_i|² is read off T without cancellation: the entries above
    the (quasi-)diagonal blocks, plus for each 2 × 2 block [[a, b], [c, d]] (complex pair,
    bc < 0) its own departure (a − d)² + (b + c)². Exactly normal matrices thus give O(eps),
    not O(sqrt(eps)), and the real Schur form costs a fraction of the complex one.
    """
    T = sla.schur(M, output="real", check_finite=False)[0]
    n = T.shape[0]
    lam = np.diag(T).astype(complex)
    sub = np.diag(T, -1)
    starts = np.nonzero(sub != 0)[0] if n > 1 else np.zeros(0, dtype=int)
    upper = np.triu(T, 1)
    block2 = 0.0
    if starts.size:
        a, d = T[starts, starts], T[starts + 1, starts + 1]
        b, c = T[starts, starts + 1], T[starts + 1, starts]
        upper[starts, starts + 1] = 0.0
        block2 = float(np.sum((a - d) ** 2 + (b + c) ** 2))
        half = 0.5 * (a + d)
        root = np.sqrt((0.25 * (a - d) ** 2 + b * c).astype(complex))
        lam[starts], lam[starts + 1] = half + root, half - root
    fro = float(np.linalg.norm(M))
    dep = float(np.sqrt(np.sum(upper * upper) + block2)) / fro if fro > 0 else 0.0
    return lam, dep


def henrici_departure(M) -> float:
    """Henrici's relative departure from normality sqrt(‖M‖_F² − Σ|λ_i|²)/‖M‖_F.

    0 for normal matrices (symmetric, orthogonal, ...), up to 1 (nilpotent). Computed from the
    real Schur form without cancellation (see :func:`_schur_eigs`); M = 0 gives 0.

    Parameters
    ----------
    M : ndarray of shape (n, n)

    Returns
    -------
    float
    """
    M = check_matrix(M, "M")
    _square(M, "M")
    return _schur_eigs(M)[1]


def _match_eigs(lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """|λ_i − μ_π(i)| for the matching π that minimises Σ|λ_i − μ_π(i)|."""
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(lam[:, None] - mu[None, :])
    if not np.isfinite(cost).all():
        raise FastinvError(
            "the eigenvalues of M and B cannot be compared in float64 (largest |λ| "
            f"{np.abs(lam).max():.3g}, |μ| {np.abs(mu).max():.3g}: they or their differences "
            "overflow); rescale the matrices"
        )
    r, c = linear_sum_assignment(cost)
    return cost[r, c]


def eigen_report(
    M,
    B,
    *,
    threshold: float = EIG_NORMALITY_THRESHOLD,
    norm2: Callable[[np.ndarray], float] | None = None,
    distance: dict | None = None,
) -> dict:
    """Eigenvalue distance of M and B, never without their non-normality and operator distance.

    Eigenvalues are paired by an optimal assignment (minimum total |λ − μ|). The flag
    ``eigenvalues_meaningful`` is true only when both relative Henrici departures are below
    ``threshold`` (default 1e-3). Why 1e-3: writing M = N + R with N normal and the same
    eigenvalues, ‖R‖_F = dep·‖M‖_F, so below the threshold each matrix is within 0.1 % (in
    Frobenius norm) of a normal matrix whose eigenvalue moduli are its singular values (Weyl:
    |σ_i(M) − |λ|_(i)| <= dep·‖M‖_F) — the eigenvalues then describe the operator's action to
    the precision at which the report quotes spectra. The threshold is far above the rounding
    floor of the Schur-based measure (~n·eps, 1e-12 at n = 4096), so exactly normal matrices
    pass, and far below the departures of the misleading cases (I − N with N nilpotent:
    ‖N‖_F/‖I − N‖_F, typically 0.1–1). Even when both are nearly normal, equal eigenvalues
    do not imply equal matrices (eigenvectors may differ); the operator distance beside them
    says how far apart the matrices are.

    Parameters
    ----------
    M, B : ndarray of shape (n, n)
    threshold : float
        Largest relative departure from normality for which eigenvalues are called
        meaningful.
    norm2 : callable, optional
        Matrix 2-norm for the operator distance.
    distance : dict, optional
        A precomputed :func:`operator_distance` (M, B) to report instead of recomputing it.

    Returns
    -------
    dict
        ``eig_max_abs_diff``, ``eig_max_rel_diff`` (divided by max |μ|), ``eig_fro_rel``
        (sqrt(Σ|λ − μ|²)/‖B‖_F), ``departure_M``, ``departure_B``, ``threshold``,
        ``eigenvalues_meaningful``, ``operator_distance`` (:func:`operator_distance`), ``note``.
    """
    M, B = _eigen_pair(M, B, threshold)
    lam, dep_m = _schur_eigs(M)
    mu, dep_b = _schur_eigs(B)
    d = _match_eigs(lam, mu)
    mu_max = float(np.abs(mu).max())
    fro_b = float(np.linalg.norm(B))
    meaningful = bool(dep_m < threshold and dep_b < threshold)
    od = operator_distance(M, B, norm2=norm2) if distance is None else dict(distance)
    return {
        "eig_max_abs_diff": float(d.max()),
        "eig_max_rel_diff": float(d.max() / mu_max) if mu_max > 0 else None,
        "eig_fro_rel": float(np.sqrt(np.sum(d * d)) / fro_b) if fro_b > 0 else None,
        "departure_M": dep_m,
        "departure_B": dep_b,
        "threshold": float(threshold),
        "eigenvalues_meaningful": meaningful,
        "operator_distance": od,
        "note": _EIGEN_NOTES[meaningful],
    }


_EIGEN_NOTES = {
    True: (
        "both matrices are nearly normal: eigenvalues describe their action; the operator "
        "distance still decides how close they are"
    ),
    False: (
        "at least one matrix is far from normal (Henrici departure >= threshold): its "
        "eigenvalues do not describe its action; use singular values and the operator "
        "distance"
    ),
}


def _eigen_pair(M, B, threshold) -> tuple[np.ndarray, np.ndarray]:
    """M and B as float64, both square and of one shape, and a positive threshold."""
    M = check_matrix(M, "M")
    B = check_matrix(B, "B")
    _square(M, "M")
    _square(B, "B")
    if M.shape != B.shape:
        raise FastinvError(f"M has shape {M.shape} but B has {B.shape}; they must match")
    if not (np.isfinite(threshold) and threshold > 0):
        raise FastinvError(f"threshold must be a positive number, got {threshold}")
    return M, B


# --------------------------------------------------------------------------------------------
# everything at once


@dataclass
class Comparison:
    """All spectral comparisons of one matrix M with A and reference inverses.

    Attributes
    ----------
    n, m : int
        M has shape (n, m) (A has shape (m, n)).
    rank_A : int
        Numerical rank of A.
    s_A : ndarray of shape (r,)
        Singular values of A.
    phi : ndarray of shape (r,)
        Filter factors of M in A's basis.
    offdiag_share : float
        ‖offdiag(Vᵀ M U S)‖_F / ‖Vᵀ M U S‖_F.
    singular_values : ndarray of shape (k,)
        Leading k singular values of M (all when ``topk`` is None).
    sv_A_inv : ndarray of shape (k,)
        Leading k singular values of A⁺ (1/σ_i of A, ascending σ).
    distances : dict of str -> dict
        Per reference: :func:`operator_distance` output.
    sv_distances : dict of str -> dict
        Per reference: :func:`sv_distance` output (with Weyl/Mirsky checks).
    phi_refs : dict of str -> ndarray
        Filter factors of each reference.
    ref_offdiag : dict of str -> float
        Off-diagonal share of each reference.
    ref_singular_values : dict of str -> ndarray
        Leading k singular values of each reference.
    angles : dict of str -> dict
        Key "<ref>_left" / "<ref>_right": :func:`principal_angles` of M against the reference.
    ks : list of int
        Subspace dimensions of the angles.
    residual : dict
        :func:`residual_identity` (‖MA − I‖).
    eigen : dict or None
        :func:`eigen_report` against A⁻¹ (None when skipped; ``info`` says why).
    info : dict
        How the numbers were computed (SVD method, exactness, skipped parts).
    """

    n: int
    m: int
    rank_A: int
    s_A: np.ndarray = field(repr=False)
    phi: np.ndarray = field(repr=False)
    offdiag_share: float
    singular_values: np.ndarray = field(repr=False)
    sv_A_inv: np.ndarray = field(repr=False)
    distances: dict
    sv_distances: dict
    phi_refs: dict = field(repr=False)
    ref_offdiag: dict
    ref_singular_values: dict = field(repr=False)
    angles: dict = field(repr=False)
    ks: list
    residual: dict
    eigen: dict | None
    info: dict

    def phi_summary(self) -> dict:
        """Counts of inverted/suppressed/amplified directions and where they lie.

        ``n_inverted``: length of the leading run with |φ − 1| <= 0.1 (those directions are
        inverted within 10 % of A⁻¹); ``first_suppressed``: first index (0-based) with
        |φ| <= 0.1 (at least 90 % of the component removed), None if none;
        ``suppressed_fraction_after``: share of the directions from there on that are
        suppressed too; ``n_amplified``: φ > 1.1; ``n_negative``: φ < −0.1; ``dof`` = Σφ
        (effective number of inverted directions, the trace of the influence matrix).
        """
        return phi_summary(self.phi)

    def to_dict(self) -> dict:
        """JSON-ready summary (no n-length arrays except φ when n <= 64)."""
        angles = {
            key: {k: v for k, v in a.items() if k != "angles_deg"} for key, a in self.angles.items()
        }
        out = {
            "n": self.n,
            "m": self.m,
            "rank_A": self.rank_A,
            "offdiag_share": self.offdiag_share,
            "phi_summary": self.phi_summary(),
            "singular_values": self._singular_value_summary(),
            "references": {name: self._reference_summary(name) for name in self.distances},
            "principal_angles": {"ks": list(self.ks), **angles},
            "residual_identity": self.residual,
            "eigen": self.eigen,
            "info": self.info,
        }
        return to_jsonable(out)

    def _singular_value_summary(self) -> dict:
        sv = self.singular_values
        return {
            "k": int(sv.size),
            "max": float(sv[0]),
            "min_of_k": float(sv[-1]),
            "cond": float(sv[0] / sv[-1]) if sv[-1] > 0 else None,
            "A_inv_max": float(self.sv_A_inv[0]) if self.sv_A_inv.size else None,
            **({"values": sv.tolist()} if sv.size <= 64 else {}),
        }

    def _reference_summary(self, name: str) -> dict:
        """Distances, spectrum distance and filter-factor difference of M from one reference."""
        entry = dict(self.distances[name])
        if name in self.sv_distances:
            entry["sv"] = self.sv_distances[name]
        if name in self.phi_refs:
            dphi = self.phi - self.phi_refs[name]
            entry["phi_max_abs_diff"] = float(np.abs(dphi).max())
            entry["phi_rms_diff"] = float(np.sqrt(np.mean(dphi * dphi)))
            entry["ref_offdiag_share"] = self.ref_offdiag.get(name)
        return entry

    def angles_arrays(self) -> dict[str, np.ndarray]:
        """Largest principal angle (degrees) per k, key "<ref>_<side>", NaN where unavailable."""
        out = {}
        for key, a in self.angles.items():
            out[key] = per_k(a, "max_deg", self.ks)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays behind the summary, for npz saving."""
        out = {
            "s_A": self.s_A,
            "phi": self.phi,
            "sv": self.singular_values,
            "sv_A_inv": self.sv_A_inv,
            "ks": np.asarray(self.ks, dtype=np.int64),
        }
        for name, v in self.phi_refs.items():
            out[f"phi_ref_{name}"] = v
        for name, v in self.ref_singular_values.items():
            out[f"sv_ref_{name}"] = v
        for key, v in self.angles_arrays().items():
            out[f"angles_max_deg_{key}"] = v
        for key, a in self.angles.items():
            out[f"angles_mean_deg_{key}"] = per_k(a, "mean_deg", self.ks)
        return out


def phi_summary(phi) -> dict:
    """Counts of inverted/suppressed/amplified directions of the filter factors ``phi``
    (descending σ) and where they lie; see :meth:`Comparison.phi_summary`."""
    phi = np.asarray(phi, dtype=np.float64)
    inv = np.abs(phi - 1.0) <= PHI_TOL
    sup = np.abs(phi) <= PHI_TOL
    n_lead = int(np.argmin(inv)) if not inv.all() else int(phi.size)
    first = int(np.argmax(sup)) if sup.any() else None
    out = {
        "n_inverted": n_lead,
        "n_inverted_total": int(inv.sum()),
        "first_suppressed": first,
        "suppressed_fraction_after": None if first is None else float(sup[first:].mean()),
        "n_suppressed": int(sup.sum()),
        "n_amplified": int(np.sum(phi > 1.0 + PHI_TOL)),
        "n_negative": int(np.sum(phi < -PHI_TOL)),
        "dof": float(phi.sum()),
        "min": float(phi.min()),
        "median": float(np.median(phi)),
        "max": float(phi.max()),
        "tol": PHI_TOL,
    }
    if phi.size <= 64:
        out["phi"] = phi.tolist()
    return out


def compare(
    M,
    A_or_svd,
    *,
    references: Mapping[str, np.ndarray] | None = None,
    ks: Sequence[int] | None = None,
    topk: int | None = None,
    svd_fn: Callable | None = None,
    eig: bool | str = "auto",
    eig_max_n: int = 1024,
    eig_threshold: float = EIG_NORMALITY_THRESHOLD,
) -> Comparison:
    """Compare M with A's SVD, with A⁻¹ (A⁺) and with any reference inverses.

    Parameters
    ----------
    M : ndarray of shape (n, m)
        The matrix to audit (surrogate C, mean Jacobian, ...).
    A_or_svd : ndarray (m, n), Operator or tuple (U, s, Vt)
        The forward operator or its full thin SVD.
    references : dict of str -> ndarray of shape (n, m), optional
        Reference inverses. "A_inv" (the pseudo-inverse, from A's SVD) is always included;
        a supplied "A_inv" is used for the distances.
    ks : sequence of int, optional
        Subspace dimensions for principal angles; default those of (1, 2, 5, 10, 20, ...)
        up to the available rank. Dimensions beyond a matrix's rank (or ``topk``) give NaN.
    topk : int, optional
        Compare only the leading ``topk`` singular values/vectors (default all).
    svd_fn : callable (M, k) -> (U, s, Vt[, info]), optional
        Top-k SVD used for M's and the references' spectra and for 2-norms of differences
        (pass a randomized SVD for large n). Default: full LAPACK SVD (exact).
    eig : bool or "auto"
        Eigenvalue report against A⁻¹ (square only); "auto": when n <= ``eig_max_n``.
    eig_max_n : int
    eig_threshold : float
        See :func:`eigen_report`.

    Returns
    -------
    Comparison
    """
    Aarr, (U, s, Vt), _ = resolve_operator(A_or_svd)
    M = _audited_matrix(M, U.shape[0], Vt.shape[1])
    if Aarr is None:
        Aarr = (U * s) @ Vt
    r = numerical_rank(s, U.shape[0], Vt.shape[1])
    k = min(M.shape) if topk is None else check_int(topk, "topk", lo=1, hi=min(M.shape))
    ks_list = _angle_ks(ks, k, r, min(M.shape))
    info: dict = {
        "svd": "full LAPACK SVD" if svd_fn is None else "svd_fn (top-k)",
        "exact": svd_fn is None,
        "topk": k,
    }
    phi, off = filter_factors(M, U, s, Vt)
    inverse = _PseudoInverse.from_svd(U, s, Vt, r, k)
    refs = _references(references, M.shape, U, s, Vt, r)
    svd_M = top_svd(M, k, svd_fn)
    parts = _against_references(M, svd_M, refs, inverse, (U, s, Vt), ks_list, svd_fn)
    norm2 = partial(spectral_norm, svd_fn=svd_fn)
    residual = residual_identity(M, Aarr, norm2=norm2)
    eigen, skipped = _eigen_step(
        M, refs["A_inv"], parts.distances["A_inv"], eig, eig_max_n, eig_threshold
    )
    if skipped:
        info["eigen"] = skipped
    return Comparison(
        n=M.shape[0],
        m=M.shape[1],
        rank_A=r,
        s_A=s,
        phi=phi,
        offdiag_share=off,
        singular_values=svd_M[1],
        sv_A_inv=inverse.sv,
        **vars(parts),  # distances, sv_distances, phi_refs, ref_offdiag, ... angles
        ks=ks_list,
        residual=residual,
        eigen=eigen,
        info=info,
    )


def _audited_matrix(M, m_a: int, n_a: int) -> np.ndarray:
    """M as float64, of the shape (n, m) that maps A's measurements to its signals."""
    M = check_matrix(M, "M")
    if M.shape != (n_a, m_a):
        raise FastinvError(
            f"M has shape {M.shape} but A has shape ({m_a}, {n_a}); M must be ({n_a}, {m_a})"
        )
    return M


def _angle_ks(ks, k: int, r: int, kfull: int) -> list[int]:
    """The subspace dimensions of :func:`compare`: given (validated), or DEFAULT_KS up to
    min(k, rank)."""
    if ks is None:
        return [q for q in DEFAULT_KS if q <= min(k, max(r, 1))]
    ks_list = sorted({int(q) for q in np.atleast_1d(np.asarray(ks))})
    if not ks_list or ks_list[0] < 1 or ks_list[-1] > kfull:
        raise FastinvError(f"ks must lie in [1, {kfull}], got {ks_list}")
    return ks_list


@dataclass
class _PseudoInverse:
    """A⁺ from A's SVD: σ_i(A⁺) = 1/σ_i(A), left vectors v_i, right vectors u_i (reversed)."""

    svd: tuple
    sv: np.ndarray  # its leading k singular values, zero-padded beyond the rank
    norm2: float

    @classmethod
    def from_svd(cls, U, s, Vt, r: int, k: int) -> _PseudoInverse:
        inv_s = 1.0 / s[:r][::-1]
        svd = (Vt[:r][::-1].T, inv_s, U[:, :r][:, ::-1].T)
        sv = np.zeros(k)
        sv[: min(k, r)] = inv_s[:k]
        return cls(svd, sv, float(inv_s[0]) if r else 0.0)


def _references(references, shape, U, s, Vt, r: int) -> dict:
    """The references as float64 matrices of M's shape, "A_inv" first unless supplied."""
    refs = dict(references or {})
    for name, B in refs.items():
        B = check_matrix(B, f"reference {name!r}")
        if B.shape != shape:
            raise FastinvError(f"reference {name!r} has shape {B.shape}; it must be {shape}")
        refs[name] = B
    if "A_inv" not in refs:
        refs = {"A_inv": (Vt[:r].T / s[:r]) @ U[:, :r].T, **refs}
    return refs


@dataclass
class _ReferenceParts:
    """The per-reference fields of :class:`Comparison` (same names)."""

    distances: dict = field(default_factory=dict)
    sv_distances: dict = field(default_factory=dict)
    phi_refs: dict = field(default_factory=dict)
    ref_offdiag: dict = field(default_factory=dict)
    ref_singular_values: dict = field(default_factory=dict)
    angles: dict = field(default_factory=dict)


def _against_references(M, svd_M, refs, inverse, svd_A, ks, svd_fn) -> _ReferenceParts:
    """Distances, spectra, filter factors and principal angles of M against each reference.

    A⁺'s spectrum and singular vectors come from A's SVD; the other references are
    factorised by ``svd_fn`` (or LAPACK) to the same k as M.
    """
    k = svd_M[1].shape[0]
    out = _ReferenceParts()
    for name, B in refs.items():
        D = M - B
        a2, af = spectral_norm(D, svd_fn), float(np.linalg.norm(D))
        if name == "A_inv":
            b2, sB, svd_B = inverse.norm2, inverse.sv, inverse.svd
        else:
            svd_B = top_svd(B, k, svd_fn)
            b2, sB = float(svd_B[1][0]), svd_B[1]
        out.distances[name] = _distance(a2, af, b2, float(np.linalg.norm(B)))
        out.sv_distances[name] = sv_distance(svd_M[1], sB, norm2_diff=a2, fro_diff=af)
        out.phi_refs[name], out.ref_offdiag[name] = filter_factors(B, *svd_A)
        out.ref_singular_values[name] = sB
        for side, a in angles_within_rank(svd_M, svd_B, ks, M.shape).items():
            out.angles[f"{name}_{side}"] = a
    return out


def _eigen_step(M, A_inv, distance, eig, eig_max_n, eig_threshold):
    """(:func:`eigen_report` of M against A⁻¹, None), or (None, why it was skipped)."""
    square = M.shape[0] == M.shape[1]
    if (eig is True or (eig == "auto" and M.shape[0] <= eig_max_n)) and square:
        return eigen_report(M, A_inv, threshold=eig_threshold, distance=distance), None
    if not square:
        return None, "skipped: M is not square"
    if eig == "auto":
        return None, f"skipped: n = {M.shape[0]} > eig_max_n = {eig_max_n}"
    return None, "skipped (eig=False)"
