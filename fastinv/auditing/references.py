"""The reference inverses a model is compared with, built once in A's SVD basis.

:func:`build_references` makes all of the audit's: A⁻¹ (the pseudo-inverse when A is
singular), Tikhonov with λ by GCV, the L-curve and the oracle, TSVD with k by GCV and the
oracle, Landweber with the oracle number of steps, and the LMMSE (Wiener) estimator. Spectral
filters x̂ = V diag(φ/σ) Uᵀ y are kept as their filter factors φ: no n x n matrix is formed for
them except the best Tikhonov (their errors are computed in A's SVD basis).

The LMMSE steps are public on their own for callers that need only those (the sweep):
:func:`prior_moments` / :func:`sample_moments` give the prior's mean and covariance,
:func:`noise_covariance` the noise variance of fastinv's noise models, and
:func:`lmmse_reference` the estimator, or why it could not be computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastinv.errors import FastinvError
from fastinv.linalg import estimators

__all__ = [
    "LABELS",
    "PARAM_ROWS",
    "LMMSEReference",
    "References",
    "build_references",
    "lmmse_reference",
    "noise_covariance",
    "prior_moments",
    "sample_moments",
]

#: display names of the estimators, for the verdict and the report
LABELS = {
    "C": "C (network's affine surrogate)",
    "A_inv": "A⁻¹",
    "lmmse": "LMMSE / Wiener",
    "tikhonov_gcv": "Tikhonov (GCV λ)",
    "tikhonov_lcurve": "Tikhonov (L-curve λ)",
    "tikhonov_oracle": "Tikhonov (oracle λ)",
    "tsvd_gcv": "TSVD (GCV k)",
    "tsvd_oracle": "TSVD (oracle k)",
    "landweber_oracle": "Landweber (oracle t)",
    "mean_jacobian": "mean Jacobian J̄",
}


def is_rectangular(metrics: dict) -> bool:
    """Whether the audited A was rectangular (``metrics["audit"]`` records m ≠ n)."""
    a = metrics.get("audit") or {}
    return a.get("m") is not None and a.get("m") != a.get("n")


def inverse_wording(text: str, metrics: dict) -> str:
    """``text`` with A⁻¹ written A⁺ when A is rectangular: the reference is then the
    pseudo-inverse (the verdict and the report say A⁻¹ for the square case)."""
    return text.replace("A⁻¹", "A⁺") if is_rectangular(metrics) else text


#: rows used to choose λ, k and t (GCV, L-curve, oracle); enough for a stable choice
PARAM_ROWS = 4096

_NO_LMMSE = (
    "LMMSE was not computed: it needs the prior's mean and covariance (a prior or training "
    "targets) and the noise level"
)


@dataclass
class References:
    """The reference inverses of one audit.

    Attributes
    ----------
    matrices : dict of str -> ndarray of shape (n, m)
        Dense references: "A_inv", the best Tikhonov (:attr:`best_tikhonov`), "lmmse".
    offsets : dict of str -> ndarray of shape (n,)
        Offsets b of the affine references (x̂ = B y + b): "lmmse".
    filters : dict of str -> ndarray of shape (r,)
        Filter factors φ of the spectral filters ("tikhonov_gcv", "tsvd_oracle", ...).
    info : dict of str -> dict
        Per reference, its parameters and where they came from (JSON-ready).
    curves : dict of str -> ParameterChoice
        The λ criteria ("gcv", "lcurve", "oracle") with their curves.
    best_tikhonov : str
        "tikhonov_oracle" when test or validation targets exist, else "tikhonov_gcv".
    notes : list of str
        What could not be built, and why.
    """

    matrices: dict = field(default_factory=dict, repr=False)
    offsets: dict = field(default_factory=dict, repr=False)
    filters: dict = field(default_factory=dict, repr=False)
    info: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict, repr=False)
    best_tikhonov: str = "tikhonov_gcv"
    notes: list = field(default_factory=list)

    def compared(self) -> dict[str, np.ndarray]:
        """The dense references the spectra are compared with: A⁻¹, LMMSE, best Tikhonov."""
        names = ("A_inv", "lmmse", self.best_tikhonov)
        return {k: self.matrices[k] for k in names if k in self.matrices}


def build_references(
    A: np.ndarray,
    svd: tuple,
    *,
    singular: bool,
    probes: np.ndarray,
    validation: tuple,
    prior=None,
    noise: dict | None = None,
    train_X: np.ndarray | None = None,
) -> References:
    """Build the audit's reference inverses.

    Parameters
    ----------
    A : ndarray of shape (m, n)
    svd : tuple (U, s, Vt)
        A's full thin SVD.
    singular : bool
        A is numerically singular (A⁻¹ is then reported as the pseudo-inverse).
    probes : ndarray of shape (N, m)
        Measurements on which GCV and the L-curve choose λ and k (the first
        :data:`PARAM_ROWS`).
    validation : (Y_val, X_val or None)
        Pairs on which the oracle λ, k and t are chosen (the first :data:`PARAM_ROWS`);
        without X_val there are no oracle references.
    prior : Prior, optional
        Its analytic mean and covariance serve the LMMSE; else they are estimated from
        ``train_X``, or else from X_val.
    noise : dict, optional
        ``{"level": float, "type": "relative"|"absolute"}`` (:func:`noise_covariance`).
    train_X : ndarray of shape (N, n), optional

    Returns
    -------
    References
    """
    refs = References()
    refs.matrices["A_inv"] = estimators.pinv(A, svd=svd)
    refs.info["A_inv"] = {"kind": "pseudo-inverse" if singular else "inverse"}
    Y_par = probes[:PARAM_ROWS]
    Y_val, X_val = validation
    if X_val is not None:
        Y_val, X_val = Y_val[:PARAM_ROWS], X_val[:PARAM_ROWS]
    _add_tikhonov(refs, svd, Y_par, Y_val, X_val)
    _add_tsvd(refs, svd, Y_par, Y_val, X_val)
    if X_val is not None:
        _add_landweber(refs, svd, Y_val, X_val)
    best = "tikhonov_oracle" if "tikhonov_oracle" in refs.filters else "tikhonov_gcv"
    refs.best_tikhonov = best
    refs.matrices[best] = _spectral_apply(*svd, refs.filters[best])
    _add_lmmse(refs, A, prior, noise, train_X if train_X is not None else X_val)
    return refs


def _add_tikhonov(refs: References, svd, Y_par, Y_val, X_val) -> None:
    """Tikhonov λ by GCV, the L-curve and (with targets) the oracle, as filter factors."""
    gcv = estimators.gcv_lambda(svd, Y_par)
    lc = estimators.lcurve_lambda(svd, Y_par)
    lam = {"gcv": float(gcv.value), "lcurve": float(lc.value)}
    refs.curves.update(gcv=gcv, lcurve=lc)
    if X_val is not None:
        orc = estimators.oracle_lambda(svd, Y_val, X_val)
        lam["oracle"] = float(orc.value)
        refs.curves["oracle"] = orc
    for how, lv in lam.items():
        refs.filters[f"tikhonov_{how}"] = estimators.filter_factors_tikhonov(svd[1], lv)
        refs.info[f"tikhonov_{how}"] = {"lambda": lv, "chosen_by": how}


def _add_tsvd(refs: References, svd, Y_par, Y_val, X_val) -> None:
    """TSVD k by GCV and (with targets) the oracle, as filter factors."""
    ks = {}
    try:  # GCV needs k <= m - 1: nothing to choose when m = 1
        ks["gcv"] = int(estimators.gcv_k(svd, Y_par).value)
    except FastinvError as e:
        refs.notes.append(f"TSVD with k by GCV was not computed: {e}")
    if X_val is not None:
        ks["oracle"] = int(estimators.oracle_k(svd, Y_val, X_val).value)
    for how, kv in ks.items():
        refs.filters[f"tsvd_{how}"] = estimators.filter_factors_tsvd(svd[1], kv)
        refs.info[f"tsvd_{how}"] = {"k": kv, "chosen_by": how}


def _add_landweber(refs: References, svd, Y_val, X_val) -> None:
    """Landweber (step 1/σ_1²) with the number of steps of least validation error."""
    U, s, Vt = svd
    eta = 1.0 / s[0] ** 2
    grid = np.unique(np.round(np.logspace(0, 7, 57)).astype(np.int64))
    t_best, _, _ = _filter_oracle(
        Y_val @ U,
        X_val @ Vt.T,
        s,
        lambda ss, t: estimators.filter_factors_landweber(ss, eta, t),
        grid,
    )
    refs.filters["landweber_oracle"] = estimators.filter_factors_landweber(s, eta, int(t_best))
    refs.info["landweber_oracle"] = {"eta": eta, "t": int(t_best), "chosen_by": "oracle"}


def _add_lmmse(refs: References, A, prior, noise, samples) -> None:
    """The LMMSE with the prior's moments (analytic, else from ``samples``), or a note."""
    moments = prior_moments(prior, samples)
    if moments is None:
        refs.notes.append(_NO_LMMSE)
        return
    ref = lmmse_reference(A, *moments, noise)
    if ref.noise_var is None:
        refs.notes.append(_NO_LMMSE)
    elif ref.C is None:
        refs.notes.append(f"LMMSE was not computed: {ref.error}")
    else:
        refs.matrices["lmmse"], refs.offsets["lmmse"] = ref.C, ref.b
        refs.info["lmmse"] = ref.info


def _filter_oracle(Z, XV, s, phi_fn, grid):
    """Least test error over ``grid`` for the spectral filter x̂ = V diag(φ/σ) Uᵀ y.

    Z = Y U (rows: Uᵀ y), XV = X Vᵀᵀ (rows: Vᵀ x); the error is computed in the SVD basis
    (V orthogonal), so no n x n matrix is formed per grid point.
    """
    norm_x = np.linalg.norm(XV)
    inv_s = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)
    errs = np.empty(len(grid))
    for j, p in enumerate(grid):
        d = phi_fn(s, p) * inv_s
        errs[j] = np.linalg.norm(Z * d - XV) / norm_x
    j = int(np.argmin(errs))
    return grid[j], float(errs[j]), errs


def _spectral_apply(U, s, Vt, phi):
    """V diag(φ/σ) Uᵀ as a dense matrix."""
    inv_s = np.where(s > 0, phi / np.where(s > 0, s, 1.0), 0.0)
    return (Vt.T * inv_s) @ U.T


# --------------------------------------------------------------------------------------------
# the LMMSE, step by step


def prior_moments(prior=None, samples: np.ndarray | None = None):
    """The prior's mean and covariance, and where they come from.

    Parameters
    ----------
    prior : Prior, optional
        Used when it defines a covariance (``prior.cov()`` is not None): "analytic (prior)".
    samples : ndarray of shape (N, n), optional
        Otherwise the moments are estimated from these rows (N >= 2).

    Returns
    -------
    (mean, cov, source) or None
        None when neither gives them.
    """
    cov = None if prior is None else prior.cov()
    if cov is not None:
        return prior.mean(), cov, "analytic (prior)"
    if samples is not None and samples.shape[0] > 1:
        mu, Sx = sample_moments(samples)
        return mu, Sx, f"estimated from {samples.shape[0]} samples"
    return None


def sample_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (n,) and sample covariance (n, n) (ddof 1, no shrinkage) of the rows of X."""
    n = X.shape[1]
    return X.mean(0), np.cov(X, rowvar=False).reshape(n, n)


def noise_covariance(noise: dict | None, A, prior_mean, prior_cov):
    """The noise variance σ² (Σ_e = σ² I) of fastinv's noise models, for LMMSE.

    ``noise`` is ``{"level": float, "type": "relative"|"absolute"}``; returns None when it
    cannot be derived (relative noise without a prior covariance).
    """
    if not noise:
        return None
    level = float(noise.get("level", 0.0))
    kind = noise.get("type", "relative")
    n = A.shape[0]
    if level == 0:
        return 0.0
    if kind == "absolute":
        return level**2
    if prior_cov is None:
        return None
    # relative: e = level ‖Ax‖ z/‖z‖ with z/‖z‖ uniform on the sphere and independent of x,
    # so E[e] = 0, E[x eᵀ] = 0 and E[e eᵀ] = level² E‖Ax‖² I / n.
    AS = A @ prior_cov
    e_ax2 = float(np.einsum("ij,ij->", AS, A)) + float(np.sum((A @ prior_mean) ** 2))
    return level**2 * e_ax2 / n


@dataclass
class LMMSEReference:
    """The LMMSE estimator x̂ = C y + b for one prior and noise level, or why it is missing.

    Attributes
    ----------
    C : ndarray of shape (n, m) or None
    b : ndarray of shape (n,) or None
    noise_var : float or None
        σ² of Σ_e = σ² I; None when it could not be derived.
    prior_cov : str
        Where the prior's moments came from.
    error : str or None
        :func:`fastinv.linalg.estimators.lmmse`'s message when it refused.
    exact_inverse : bool
        Noise-free with an invertible A: C is A⁻¹ itself (see :func:`lmmse_reference`).
    """

    C: np.ndarray | None = field(repr=False)
    b: np.ndarray | None = field(repr=False)
    noise_var: float | None
    prior_cov: str
    error: str | None = None
    exact_inverse: bool = False

    @property
    def note(self) -> str | None:
        """Why C is missing or special, in a few words (None when it is the plain LMMSE)."""
        if self.noise_var is None:
            return "the noise covariance could not be derived"
        if self.exact_inverse:
            return "noise-free and A invertible: the LMMSE is A⁻¹"
        if self.error is not None:
            return f"not computed: {self.error}"
        return None

    @property
    def info(self) -> dict:
        """``{"prior_cov", "noise_var"}``, plus ``"note"`` when there is one."""
        out = {
            "prior_cov": self.prior_cov,
            "noise_var": None if self.noise_var is None else float(self.noise_var),
        }
        if self.note is not None:
            out["note"] = self.note
        return out


def lmmse_reference(
    A: np.ndarray,
    prior_mean,
    prior_cov,
    prior_source: str,
    noise: dict | None,
    *,
    exact_inverse: np.ndarray | None = None,
) -> LMMSEReference:
    """The LMMSE estimator for a prior's moments and one of fastinv's noise models.

    Parameters
    ----------
    A : ndarray of shape (m, n)
    prior_mean, prior_cov : ndarray of shape (n,), (n, n)
    prior_source : str
        Where the moments came from (third item of :func:`prior_moments`).
    noise : dict or None
        ``{"level": float, "type": "relative"|"absolute"}`` (:func:`noise_covariance`).
    exact_inverse : ndarray of shape (n, m), optional
        A⁻¹, to be returned (with b = 0) instead of solving when the noise is zero; pass it
        only for an invertible A.

    Returns
    -------
    LMMSEReference
        ``C`` None when the noise variance cannot be derived or
        :func:`fastinv.linalg.estimators.lmmse` refuses (``error`` says why).
    """
    nv = noise_covariance(noise, A, prior_mean, prior_cov)
    if nv is None:
        return LMMSEReference(None, None, None, prior_source)
    if nv == 0 and exact_inverse is not None:
        return LMMSEReference(exact_inverse, np.zeros(A.shape[0]), nv, prior_source, None, True)
    try:
        C, b = estimators.lmmse(A, prior_mean, prior_cov, nv)
    except FastinvError as e:
        return LMMSEReference(None, None, nv, prior_source, error=str(e))
    return LMMSEReference(C, b, nv, prior_source)
