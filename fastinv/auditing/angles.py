"""Comparisons where the data live: estimators weighed by the probes' covariance Σ_y.

With R_y = Σ_y^½, ‖(C − B) R_y‖_F / ‖B R_y‖_F is the RMS difference of two estimators' outputs
on the probe distribution (relative to B's), and the left singular vectors of M R_y are the
principal components of the outputs M y. Unlike the plain distances and angles, these ignore
what C does along directions in which the probes do not vary, where a surrogate fitted from
the probes is not determined.
"""

from __future__ import annotations

import numpy as np

from fastinv.linalg import spectral
from fastinv.linalg.stats import relative_error

__all__ = [
    "weighted_rel_error",
    "ON_DATA_PREFIX",
    "cov_sqrt",
    "on_data_distances",
    "output_angles",
    "weighted_products",
]

#: prefix of the arrays holding the on-data principal angles (largest angle per k) between
#: C Σ_y^½ and B Σ_y^½; the plain angles are "angles_<ref>_<side>"
ON_DATA_PREFIX = "angles_on_data_"


def cov_sqrt(Y: np.ndarray) -> np.ndarray:
    """R = Σ^½ = Q diag(√w) of the sample covariance Σ = Q diag(w) Qᵀ of the rows of Y.

    R Rᵀ = Σ, so ‖M R‖_F² = E‖M (y − ȳ)‖² over the rows and the left singular vectors of M R
    are the principal components of M y (negative rounding-level eigenvalues are set to 0).
    """
    Y = np.asarray(Y, dtype=np.float64)
    n = Y.shape[1]
    w, Q = np.linalg.eigh(np.cov(Y, rowvar=False).reshape(n, n))
    return Q * np.sqrt(np.clip(w, 0, None))


def weighted_rel_error(M: np.ndarray, C: np.ndarray, R: np.ndarray) -> float:
    """‖(M − C) R‖_F / ‖C R‖_F with R = Σ^½ (:func:`cov_sqrt`): the difference of M and C
    where the inputs vary."""
    return float(np.linalg.norm((M - C) @ R) / max(np.linalg.norm(C @ R), 1e-300))


def weighted_products(C: np.ndarray, refs: dict, R_y: np.ndarray):
    """C R_y and B R_y per reference B (n x n each, formed once and reused)."""
    return C @ R_y, {name: B @ R_y for name, B in refs.items()}


def on_data_distances(CR: np.ndarray, BR: dict) -> dict[str, float]:
    """‖(C − B) Σ_y^½‖_F / ‖B Σ_y^½‖_F for B = A⁻¹ and LMMSE (those present in ``BR``)."""
    return {
        name: relative_error(CR, BR[name], floor=1e-300)
        for name in ("A_inv", "lmmse")
        if name in BR
    }


def output_angles(CR, BR: dict, ks, *, svd_fn=None, k_svd: int | None = None) -> dict:
    """Principal angles between the top-k principal components of two estimators' outputs.

    With R_y = Σ_y^½ (Σ_y the covariance of the probes y), the left singular vectors of
    M R_y are the eigenvectors of M Σ_y Mᵀ = Cov(M y): the principal components of the
    outputs M y over the probe distribution. The angles between those top-k subspaces of
    C R_y and of B R_y say whether C and B put their outputs on typical data in the same
    dominant directions. Unlike the angles between the singular subspaces of C and B
    themselves, they ignore what C does along directions in which the probes do not vary,
    where a surrogate fitted from the probes is not determined.

    Parameters
    ----------
    CR : ndarray of shape (n, m)
        C R_y.
    BR : dict of str -> ndarray of shape (n, m)
        B R_y per reference B.
    ks : sequence of int
        Subspace dimensions; those beyond the numerical rank of either product are left out.
    svd_fn : callable (M, k) -> (U, s, Vt[, info]), optional
        Top-k SVD (default: full LAPACK SVD). C R_y is factorised once for all references.
    k_svd : int, optional
        Number of singular triplets asked of ``svd_fn`` (default max(ks) + 1, so that the
        gap after the largest k is known).

    Returns
    -------
    dict
        Key "<ref>_left": :func:`fastinv.linalg.spectral.principal_angles` output (``k`` the
        dimensions compared, ``max_deg``, ``mean_deg``, ``angles_deg``, ``gap_1`` of C R_y,
        ``gap_2`` of B R_y).
    """
    ks = sorted({int(q) for q in np.atleast_1d(np.asarray(ks))})
    # one triplet beyond max(ks) by default, for the spectral gap at the largest k
    kk_svd = min(max(ks) + 1, min(CR.shape)) if k_svd is None else int(k_svd)
    svd_c = spectral.top_svd(CR, kk_svd, svd_fn)
    out = {}
    for name, X in BR.items():
        svd_b = spectral.top_svd(X, kk_svd, svd_fn)
        pair = spectral.angles_within_rank(svd_c, svd_b, ks, CR.shape, sides=("left",))
        out[f"{name}_left"] = pair["left"]
    return out
