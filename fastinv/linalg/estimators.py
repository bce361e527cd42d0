"""The classical reference inverses a trained network is compared with, and their parameters.

Every estimator returns the matrix C that maps a measurement to a reconstruction,
x̂ = C y (+ b for LMMSE). With the thin SVD A = U diag(s) Vᵀ (s descending), all spectral
estimators have the form

    C = V diag(φ_i / σ_i) Uᵀ,

where φ_i are the *filter factors* (φ = 1: direction i is inverted as by A⁻¹; φ = 0: it is
suppressed). The functions accept the operator ``A`` as an ndarray of shape (m, n), an object
with ``.A`` and a cached ``.svd`` (a :class:`fastinv.problem.operators.Operator`), or
``svd=(U, s, Vt)``
so that one SVD serves every estimator. C has shape (n, m) (n × n for the square operators of
fastinv). Computation is in float64; the result has the dtype ``float_dtype(A.dtype)``
(float32 in, float32 out).

Parameter choice (:func:`gcv_lambda`, :func:`lcurve_lambda`, :func:`oracle_lambda`,
:func:`gcv_k`, :func:`oracle_k`) works in the SVD basis: the right-hand sides are projected
once (Uᵀy) and each criterion is evaluated for the whole grid with O(grid · n) work; no n × n
matrix is formed per λ. Each returns a :class:`ParameterChoice` holding the chosen value and the
criterion curve (for plots). See docs/science.md §2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

from fastinv._device import float_dtype
from fastinv._validation import (
    check_2d,
    check_finite,
    check_float,
    check_int,
    check_matrix,
    check_real_array,
)
from fastinv.errors import FastinvError

_EPS = float(np.finfo(np.float64).eps)

__all__ = [
    "ParameterChoice",
    "Projection",
    "check_svd",
    "numerical_rank",
    "resolve_operator",
    "thin_svd",
    "pinv",
    "tikhonov",
    "tsvd",
    "landweber",
    "landweber_noisy",
    "lmmse",
    "lmmse_from_samples",
    "filter_factors_tikhonov",
    "filter_factors_tsvd",
    "filter_factors_landweber",
    "spectral_gains",
    "gcv_lambda",
    "lcurve_lambda",
    "oracle_lambda",
    "gcv_k",
    "oracle_k",
    "default_lambda_grid",
]


# --------------------------------------------------------------------------------------------
# input handling


def thin_svd(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of a finite real matrix in float64 (LAPACK gesdd, gesvd if gesdd fails).

    Parameters
    ----------
    A : ndarray of shape (m, n)

    Returns
    -------
    U : ndarray of shape (m, r)
    s : ndarray of shape (r,), descending, r = min(m, n)
    Vt : ndarray of shape (r, n)
    """
    A = check_matrix(A, "A")
    try:
        return sla.svd(A, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    except np.linalg.LinAlgError:  # pragma: no cover - gesdd rarely fails to converge
        return sla.svd(A, full_matrices=False, lapack_driver="gesvd", check_finite=False)


def check_svd(svd, shape: tuple[int, int] | None, *, complete: bool = True):
    """Validate ``svd = (U, s, Vt)``; return float64 (U (m, r), s (r,), Vt (r, n)).

    Parameters
    ----------
    svd : tuple (U, s, Vt) or (U, s, Vt, info)
        Thin SVD, s descending and >= 0 (extra columns of U / rows of Vt are dropped).
    shape : (m, n) or None
        The shape of A it must fit, if known.
    complete : bool
        Require all min(m, n) triplets (False accepts a top-k SVD).
    """
    if not isinstance(svd, (tuple, list)) or len(svd) not in (3, 4):
        raise FastinvError(
            "svd must be a tuple (U, s, Vt) as returned by scipy.linalg.svd or Operator.svd"
        )
    U, s, Vt = (np.asarray(x, dtype=np.float64) for x in svd[:3])
    if U.ndim != 2 or s.ndim != 1 or Vt.ndim != 2:
        raise FastinvError(
            f"svd must hold U (2-D), s (1-D) and Vt (2-D), got shapes {U.shape}, {s.shape}, "
            f"{Vt.shape}"
        )
    r = s.shape[0]
    if U.shape[1] < r or Vt.shape[0] < r:
        raise FastinvError(
            f"svd parts do not fit together: U {U.shape}, s {s.shape}, Vt {Vt.shape}; give "
            "U (m, r), s (r,), Vt (r, n)"
        )
    U, Vt = U[:, :r], Vt[:r]
    if shape is not None and (U.shape[0] != shape[0] or Vt.shape[1] != shape[1]):
        raise FastinvError(
            f"svd has U {U.shape} and Vt {Vt.shape}, which do not match A of shape {shape}"
        )
    if complete and r != min(U.shape[0], Vt.shape[1]):
        raise FastinvError(
            f"svd holds {r} singular triplets but this needs all min(m, n) = "
            f"{min(U.shape[0], Vt.shape[1])}; pass the full thin SVD, not a top-k one"
        )
    for arr, what in ((U, "svd U"), (s, "svd s"), (Vt, "svd Vt")):
        check_finite(arr, what)
    if np.any(s < 0) or np.any(np.diff(s) > 1e-12 * max(float(s[0]) if r else 0.0, 1e-300)):
        raise FastinvError(
            "svd singular values must be non-negative and sorted in descending order"
        )
    return U, s, Vt


def resolve_operator(A, svd=None, *, complete: bool = True):
    """(A float64 or None, (U, s, Vt), output dtype) from any accepted form of A.

    Parameters
    ----------
    A : ndarray (m, n), Operator (``.A`` and a cached ``.svd``), tuple (U, s, Vt) or None
    svd : tuple (U, s, Vt), optional
        Thin SVD of A (computed from A when not given).
    complete : bool
        See :func:`check_svd`.

    Returns
    -------
    A : ndarray of shape (m, n) or None
        None when only an SVD was given.
    svd : tuple (U, s, Vt)
        Validated, float64.
    dtype : numpy dtype
        The dtype of results: ``float_dtype(A.dtype)``, float64 without A.
    """
    dtype = np.dtype(np.float64)
    if A is not None and not isinstance(A, np.ndarray) and hasattr(A, "svd") and hasattr(A, "A"):
        if svd is None:
            svd = A.svd
        A = A.A
    if isinstance(A, tuple) and len(A) in (3, 4) and svd is None:  # an SVD, not a matrix
        A, svd = None, A
    Aarr = None
    if A is not None:
        dtype = float_dtype(np.asarray(A).dtype) if np.asarray(A).dtype.kind == "f" else dtype
        Aarr = check_matrix(A, "A")
    if svd is None:
        if Aarr is None:
            raise FastinvError("give the operator A or its SVD svd=(U, s, Vt)")
        svd = thin_svd(Aarr)
    U, s, Vt = check_svd(svd, None if Aarr is None else Aarr.shape, complete=complete)
    return Aarr, (U, s, Vt), dtype


def _matrix_and_dtype(A) -> tuple[np.ndarray, np.dtype]:
    """A (ndarray or Operator) as float64 plus the output dtype float_dtype(A.dtype)."""
    if A is not None and not isinstance(A, np.ndarray) and hasattr(A, "A"):
        A = A.A
    if A is None:
        raise FastinvError("give the operator A as a 2-D array")
    kind = np.asarray(A).dtype.kind
    dtype = float_dtype(np.asarray(A).dtype) if kind == "f" else np.dtype(np.float64)
    return check_matrix(A, "A"), dtype


def _as_svd(A_or_svd, *, complete: bool = True):
    """(U, s, Vt) from an ndarray A, an Operator-like object or a tuple (U, s, Vt)."""
    return resolve_operator(A_or_svd, None, complete=complete)[1]


def _real(x, what: str, **bounds) -> float:
    """:func:`check_float`, accepting a 0-d real array too (``np.array(1e-3)``)."""
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iuf":
        x = x.item()
    return check_float(x, what, **bounds)


def _singular_values_arg(s) -> np.ndarray:
    s = check_real_array(s, "singular values", ndim=1)
    check_finite(s, "singular values")
    if np.any(s < 0):
        raise FastinvError("singular values must be non-negative")
    return s


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0, else 0 (the convention for σ = 0 directions)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def spectral_gains(phi, s) -> np.ndarray:
    """d = φ / σ (0 where σ = 0): the gains of the spectral filter x̂ = V diag(d) Uᵀ y with
    filter factors φ."""
    return _safe_div(phi, s)


def _apply(U: np.ndarray, d: np.ndarray, Vt: np.ndarray, dtype) -> np.ndarray:
    """V diag(d) Uᵀ as an (n, m) matrix of the requested dtype."""
    C = (Vt.T * d) @ U.T
    return np.ascontiguousarray(C, dtype=dtype)


def numerical_rank(s: np.ndarray, m: int, n: int, rcond: float | None = None) -> int:
    """Number of singular values above ``rcond``·σ_1 (default rcond = max(m, n)·eps).

    Parameters
    ----------
    s : ndarray of shape (r,)
        Singular values, descending, of an (m, n) matrix (a leading part is enough).
    m, n : int
        The matrix's shape.
    rcond : float, optional
        Relative cutoff.

    Returns
    -------
    int
        0 for an empty spectrum or σ_1 = 0; top-k subspaces beyond it are arbitrary.
    """
    if s.size == 0 or s[0] <= 0:
        return 0
    tol = (max(m, n) * _EPS if rcond is None else rcond) * s[0]
    return int(np.count_nonzero(s > tol))


# --------------------------------------------------------------------------------------------
# filter factors


def filter_factors_tikhonov(s, lam: float) -> np.ndarray:
    """Tikhonov filter factors φ_i = σ_i² / (σ_i² + λ) (0 where σ_i = λ = 0).

    Parameters
    ----------
    s : ndarray of shape (r,)
        Singular values of A.
    lam : float
        Regularization parameter λ >= 0 (the λ of (AᵀA + λI)⁻¹Aᵀ, not its square root).

    Returns
    -------
    ndarray of shape (r,)
    """
    s = _singular_values_arg(s)
    lam = _real(lam, "lam", lo=0)
    s2 = s * s
    return _safe_div(s2, s2 + lam)


def filter_factors_tsvd(s, k: int) -> np.ndarray:
    """TSVD filter factors: 1 for the k largest singular values (i < k), 0 for the others.

    Parameters
    ----------
    s : ndarray of shape (r,)
    k : int, 0 <= k <= r

    Returns
    -------
    ndarray of shape (r,)
    """
    s = _singular_values_arg(s)
    k = check_int(k, "k", lo=0, hi=s.shape[0], integral_float=True)
    phi = np.zeros(s.shape[0])
    phi[:k] = 1.0
    return phi


def _landweber_args(eta, t, noise_var) -> tuple[float, int, float]:
    """The step η > 0, the iteration count t >= 0 and the noise variance ν >= 0, checked."""
    return (
        _real(eta, "eta", lo=0, lo_open=True),
        check_int(t, "t", lo=0, integral_float=True),
        _real(noise_var, "noise_var", lo=0),
    )


def _landweber_conv(q: np.ndarray, t: int) -> np.ndarray:
    """1 − (1 − q)^t, computed stably (expm1/log1p) where 0 < q < 1 (elsewhere directly)."""
    out = np.zeros_like(q)
    ok = (q > 0) & (q < 1)
    out[ok] = -np.expm1(t * np.log1p(-q[ok]))
    bad = ~ok & (q != 0)
    if np.any(bad):
        with np.errstate(over="ignore", invalid="ignore"):
            out[bad] = 1.0 - np.power(1.0 - q[bad], t)
    return out


def filter_factors_landweber(s, eta: float, t: int, noise_var: float = 0.0) -> np.ndarray:
    """Filter factors of t full-batch gradient steps from zero (Landweber), see :func:`landweber`.

    φ_i = [σ_i² / (σ_i² + ν)] · [1 − (1 − η(σ_i² + ν))^t], with ν = ``noise_var`` (ν = 0:
    φ_i = 1 − (1 − ησ_i²)^t). Computed as −expm1(t·log1p(−q)) where 0 < q < 1 so that tiny
    σ_i keep full relative accuracy; σ_i = 0 (and ν = 0) gives φ_i = 0.

    Parameters
    ----------
    s : ndarray of shape (r,)
    eta : float > 0
        Step size. The iteration converges iff η(σ_1² + ν) < 2.
    t : int >= 0
        Number of steps.
    noise_var : float >= 0
        Variance ν of white measurement noise (whitened signal, Σ_x = I).

    Returns
    -------
    ndarray of shape (r,)
    """
    s = _singular_values_arg(s)
    eta, t, nv = _landweber_args(eta, t, noise_var)
    s2 = s * s
    phi = _safe_div(s2, s2 + nv) * _landweber_conv(eta * (s2 + nv), t)
    _check_landweber_finite(phi, eta, s, nv)
    return phi


def _check_landweber_finite(vals, eta, s, nv):
    if not np.all(np.isfinite(vals)):
        q = eta * (float(s[0]) ** 2 + nv)
        raise FastinvError(
            f"the gradient iteration diverges (eta * (sigma_max^2 + noise_var) = {q:.3g} >= 2) "
            "and overflows; use eta < 2 / (sigma_max^2 + noise_var) or fewer steps"
        )


# --------------------------------------------------------------------------------------------
# estimators


def pinv(A=None, *, svd=None, rcond: float | None = None) -> np.ndarray:
    """Moore–Penrose pseudo-inverse A⁺ = V diag(1/σ_i) Uᵀ over σ_i > rcond·σ_1.

    Parameters
    ----------
    A : ndarray of shape (m, n) or Operator, optional if ``svd`` is given
    svd : tuple (U, s, Vt), optional
        Thin SVD of A (computed if not given).
    rcond : float, optional
        Relative cutoff; default max(m, n)·eps (as numpy.linalg.pinv).

    Returns
    -------
    ndarray of shape (n, m)
        Equals A⁻¹ when A is square and well conditioned.
    """
    _, (U, s, Vt), dtype = resolve_operator(A, svd)
    if rcond is not None:
        rcond = _real(rcond, "rcond", lo=0)
    r = numerical_rank(s, U.shape[0], Vt.shape[1], rcond)
    d = np.zeros_like(s)
    d[:r] = 1.0 / s[:r]
    return _apply(U, d, Vt, dtype)


def tikhonov(A=None, lam: float = 0.0, *, svd=None) -> np.ndarray:
    """Tikhonov inverse (AᵀA + λI)⁻¹Aᵀ = V diag(σ_i / (σ_i² + λ)) Uᵀ.

    Filter factors σ_i² / (σ_i² + λ) (:func:`filter_factors_tikhonov`). λ = 0 gives A⁺
    without any cutoff (use :func:`pinv` for one). With Σ_x = s²I and Σ_e = σ²I this is the
    LMMSE estimator for λ = σ²/s², and ‖C‖₂ <= 1/(2√λ).

    Parameters
    ----------
    A : ndarray of shape (m, n) or Operator, optional if ``svd`` is given
    lam : float >= 0
    svd : tuple (U, s, Vt), optional

    Returns
    -------
    ndarray of shape (n, m)
    """
    _, (U, s, Vt), dtype = resolve_operator(A, svd)
    lam = _real(lam, "lam", lo=0)
    return _apply(U, _safe_div(s, s * s + lam), Vt, dtype)


def tsvd(A=None, k: int = 1, *, svd=None) -> np.ndarray:
    """Truncated-SVD inverse Σ_{i<k} v_i u_iᵀ / σ_i (filter factors 1 for i < k, else 0).

    Directions with σ_i = 0 inside the top k are left out (as in A⁺).

    Parameters
    ----------
    A : ndarray of shape (m, n) or Operator, optional if ``svd`` is given
    k : int, 0 <= k <= min(m, n)
    svd : tuple (U, s, Vt), optional

    Returns
    -------
    ndarray of shape (n, m)
    """
    _, (U, s, Vt), dtype = resolve_operator(A, svd)
    k = check_int(k, "k", lo=0, hi=s.shape[0], integral_float=True)
    d = np.zeros_like(s)
    d[:k] = _safe_div(1.0, s[:k])
    return _apply(U, d, Vt, dtype)


def landweber(A=None, eta: float = 1.0, t: int = 1, *, svd=None) -> np.ndarray:
    """The matrix a bias-free linear model reaches after t full-batch gradient steps from zero.

    Convention (the trainer's, fastinv.nets.training): the objective is
    1/(2N) Σ_i ‖W y_i − x_i‖², so full-batch gradient descent with step η is

        W_{t+1} = W_t − η (W_t YᵀY/N − XᵀY/N),   W_0 = 0,

    with samples as rows of X (N, n) and Y (N, m). On whitened noise-free data
    (XᵀX/N = I, Y = X Aᵀ) this is the Landweber iteration W_{t+1} = W_t − η(W_t AAᵀ − Aᵀ),
    whose closed form is

        W_t = V diag(φ_i / σ_i) Uᵀ,   φ_i = 1 − (1 − ησ_i²)^t

    (:func:`filter_factors_landweber`; σ_i = 0 gives 0). It converges to A⁺ iff ησ_1² < 2;
    early stopping acts like Tikhonov with λ ≈ 1/(ηt).

    Parameters
    ----------
    A : ndarray of shape (m, n) or Operator, optional if ``svd`` is given
    eta : float > 0
        Step size (the trainer's learning rate).
    t : int >= 0
        Number of full-batch steps.
    svd : tuple (U, s, Vt), optional

    Returns
    -------
    ndarray of shape (n, m)
    """
    return landweber_noisy(A, eta, t, 0.0, svd=svd)


def landweber_noisy(
    A=None, eta: float = 1.0, t: int = 1, noise_var: float = 0.0, *, svd=None
) -> np.ndarray:
    """Expected gradient-descent matrix for whitened signals (Σ_x = I) and white noise ν I.

    Same convention as :func:`landweber`; with the population moments YᵀY/N → AAᵀ + νI and
    XᵀY/N → Aᵀ the iteration W_{t+1} = W_t − η(W_t(AAᵀ + νI) − Aᵀ) from W_0 = 0 gives

        W_t = V diag(φ_i / σ_i) Uᵀ,
        φ_i = [σ_i² / (σ_i² + ν)] · [1 − (1 − η(σ_i² + ν))^t]     (docs/science.md §2),

    which tends to the LMMSE/Tikhonov estimator with λ = ν as t → ∞ (if η(σ_1² + ν) < 2).

    Parameters
    ----------
    A : ndarray of shape (m, n) or Operator, optional if ``svd`` is given
    eta : float > 0
    t : int >= 0
    noise_var : float >= 0
        Noise variance ν per measurement component.
    svd : tuple (U, s, Vt), optional

    Returns
    -------
    ndarray of shape (n, m)
    """
    _, (U, s, Vt), dtype = resolve_operator(A, svd)
    eta, t, nv = _landweber_args(eta, t, noise_var)
    s2 = s * s
    # φ_i / σ_i = σ_i / (σ_i² + ν) · conv_i, with no division by a tiny σ_i
    d = _safe_div(s, s2 + nv) * _landweber_conv(eta * (s2 + nv), t)
    _check_landweber_finite(d, eta, s, nv)
    return _apply(U, d, Vt, dtype)


def _cov_parts(c, dim: int, what: str):
    """Classify a covariance argument: ("scalar", v) | ("diag", (dim,)) | ("full", (dim, dim))."""
    if c is None:
        raise FastinvError(f"{what} is missing; give a variance, a vector of variances or a matrix")
    arr = np.asarray(c)
    if arr.dtype.kind not in "iuf":
        raise FastinvError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    check_finite(arr, what)
    if arr.ndim == 0:
        if arr < 0:
            raise FastinvError(f"{what} must be >= 0, got {float(arr)}")
        return "scalar", float(arr)
    if arr.ndim == 1:
        if arr.shape[0] != dim:
            raise FastinvError(
                f"{what} as a vector of variances must have length {dim}, got {arr.shape[0]}"
            )
        if np.any(arr < 0):
            raise FastinvError(f"{what} holds negative variances; variances must be >= 0")
        return "diag", arr
    if arr.shape != (dim, dim):
        raise FastinvError(
            f"{what} must be a scalar, a vector ({dim},) or a matrix ({dim}, {dim}), "
            f"got shape {arr.shape}"
        )
    asym = np.linalg.norm(arr - arr.T)
    if asym > 1e-10 * max(np.linalg.norm(arr), 1e-300):
        raise FastinvError(
            f"{what} is not symmetric (‖S − Sᵀ‖_F/‖S‖_F = {asym / np.linalg.norm(arr):.2g}); "
            "give a symmetric covariance"
        )
    if np.any(np.diag(arr) < 0):
        raise FastinvError(f"{what} has negative diagonal entries; a covariance must be PSD")
    return "full", 0.5 * (arr + arr.T)


def _vector(v, dim: int, what: str) -> np.ndarray:
    if v is None:
        return np.zeros(dim)
    arr = np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind in "iuf" else None
    if arr is None:
        raise FastinvError(f"{what} must hold real numbers")
    if arr.ndim == 0:
        arr = np.full(dim, float(arr))
    if arr.shape != (dim,):
        raise FastinvError(f"{what} must be a scalar or have shape ({dim},), got {arr.shape}")
    check_finite(arr, what)
    return arr


def lmmse(
    A,
    prior_mean=None,
    prior_cov=1.0,
    noise_cov=0.0,
    *,
    noise_mean=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear minimum-mean-square-error (Wiener) estimator x̂ = C y + b.

    C = Σ_x Aᵀ (A Σ_x Aᵀ + Σ_e)⁻¹,  b = μ − C (A μ + μ_e),

    the best affine estimator of x from y = A x + e for any prior with mean μ and covariance
    Σ_x and noise independent of x with mean μ_e (default 0) and covariance Σ_e. With
    Σ_x = s²I, Σ_e = σ²I it equals :func:`tikhonov` with λ = σ²/s². The solve uses a Cholesky
    factorization of K = A Σ_x Aᵀ + Σ_e.

    Parameters
    ----------
    A : ndarray of shape (m, n) or Operator
    prior_mean : float or ndarray of shape (n,), optional
        μ (default 0).
    prior_cov : float, ndarray of shape (n,) or (n, n)
        Σ_x: a scalar s² (meaning s²I), a vector of variances (diagonal) or a symmetric matrix.
    noise_cov : float, ndarray of shape (m,) or (m, m)
        Σ_e, in the same three forms.
    noise_mean : float or ndarray of shape (m,), optional
        μ_e (default 0).

    Returns
    -------
    C : ndarray of shape (n, m)
    b : ndarray of shape (n,)

    Raises
    ------
    FastinvError
        When K is singular (or not positive definite) to working precision, e.g. noise-free
        data with a singular or very ill-conditioned A: give a positive noise level.
    """
    A, dtype = _matrix_and_dtype(A)
    m, n = A.shape
    mu = _vector(prior_mean, n, "prior_mean")
    mu_e = _vector(noise_mean, m, "noise_mean")
    kx, Sx = _cov_parts(prior_cov, n, "prior_cov")
    ke, Se = _cov_parts(noise_cov, m, "noise_cov")
    # SxAt = Σ_x Aᵀ (n, m)
    if kx == "scalar":
        SxAt = Sx * A.T
    elif kx == "diag":
        SxAt = Sx[:, None] * A.T
    else:
        SxAt = Sx @ A.T
    K = A @ SxAt
    if ke == "scalar":
        K[np.diag_indices(m)] += Se
    elif ke == "diag":
        K[np.diag_indices(m)] += Se
    else:
        K += Se
    K = 0.5 * (K + K.T)
    hint = (
        "A Σ_x Aᵀ + Σ_e is singular to working precision{}; give a positive noise level "
        "(noise_cov > 0) or a prior covariance that makes it positive definite"
    )
    try:
        cf, low = sla.cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise FastinvError(hint.format(" (it is not positive definite)")) from None
    anorm = float(np.abs(K).sum(axis=0).max())
    rcond, info = sla.lapack.dpocon(cf, anorm, uplo="L")
    if info != 0 or not rcond > m * _EPS:
        raise FastinvError(hint.format(f" (reciprocal condition number {rcond:.2g})"))
    C = sla.cho_solve((cf, low), SxAt.T, check_finite=False).T  # (K⁻¹ A Σ_x)ᵀ
    b = mu - C @ (A @ mu + mu_e)
    return np.ascontiguousarray(C, dtype=dtype), b.astype(dtype)


def lmmse_from_samples(A, X, noise, *, ddof: int = 1) -> tuple[np.ndarray, np.ndarray, dict]:
    """LMMSE estimator with the prior's mean and covariance estimated from signal samples.

    μ = mean of the rows of X and Σ_x = their plain sample covariance
    (X − μ)ᵀ(X − μ)/(N − ddof) — no shrinkage (no Ledoit–Wolf), so with N <= n it is
    rank-deficient and the estimator only acts on the span of the samples (``info`` says so).

    Parameters
    ----------
    A : ndarray of shape (m, n) or Operator
    X : ndarray of shape (N, n)
        Signal samples as rows, N >= 2.
    noise : float, ndarray of shape (m,) or ndarray of shape (N_e, m)
        A noise variance σ² (Σ_e = σ²I, analytic), a vector of per-component variances
        (diagonal, analytic), or noise samples as rows (mean and sample covariance are
        estimated from them, N_e >= 2). To pass a full noise covariance use :func:`lmmse`.
    ddof : int
        Delta degrees of freedom of the sample covariances (1: unbiased).

    Returns
    -------
    C : ndarray of shape (n, m)
    b : ndarray of shape (n,)
    info : dict
        ``{"prior_mean", "prior_cov", "noise_cov", "n_samples", "prior_cov_rank_max",
        "warning"}``, saying which moments are analytic and which estimated.
    """
    A, _ = _matrix_and_dtype(A)
    m, n = A.shape
    X = check_2d(X, "X", shape=(None, n))
    check_finite(X, "X")
    N = X.shape[0]
    ddof = check_int(ddof, "ddof", lo=0, integral_float=True)
    if N - ddof < 1:
        raise FastinvError(
            f"X has {N} sample(s); give at least {ddof + 1} to estimate a covariance"
        )
    X = np.asarray(X, dtype=np.float64)
    mu = X.mean(axis=0)
    Xc = X - mu
    Sx = (Xc.T @ Xc) / (N - ddof)
    info: dict = {
        "prior_mean": f"estimated from {N} samples",
        "prior_cov": f"estimated from {N} samples",
        "prior_cov_method": f"plain sample covariance (ddof={ddof}), no shrinkage",
        "n_samples": N,
        "prior_cov_rank_max": int(min(N - 1, n)),
    }
    noise_mean = None
    arr = np.asarray(noise)
    if arr.ndim == 2:
        E = check_2d(arr, "noise samples", shape=(None, m))
        check_finite(E, "noise samples")
        Ne = E.shape[0]
        if Ne - ddof < 1:
            raise FastinvError(f"noise samples hold {Ne} row(s); give at least {ddof + 1}")
        E = np.asarray(E, dtype=np.float64)
        noise_mean = E.mean(axis=0)
        Ec = E - noise_mean
        Se = (Ec.T @ Ec) / (Ne - ddof)
        info["noise_cov"] = f"estimated from {Ne} samples"
        info["noise_mean"] = f"estimated from {Ne} samples"
    else:
        Se = noise
        info["noise_cov"] = "analytic (σ² I)" if arr.ndim == 0 else "analytic (diagonal)"
    if N - 1 < n:
        info["warning"] = (
            f"N - 1 = {N - 1} < n = {n}: the sample covariance is rank-deficient, the estimator "
            "ignores directions the samples do not span"
        )
    C, b = lmmse(A, mu, Sx, Se, noise_mean=noise_mean)
    return C, b, info


# --------------------------------------------------------------------------------------------
# choosing λ and k


@dataclass
class ParameterChoice:
    """A regularization parameter chosen by a criterion, with the criterion's curve.

    Attributes
    ----------
    method : str
        "gcv", "lcurve" or "oracle".
    parameter : str
        "lambda" (Tikhonov) or "k" (TSVD).
    value : float or int
        The chosen parameter (refined between grid points for λ when ``refine``).
    grid : ndarray of shape (L,)
        The parameter grid (ascending).
    curve : ndarray of shape (L,)
        The criterion on the grid: GCV function (minimised), L-curve curvature (maximised) or
        relative error (minimised).
    index : int
        Index of the best grid point.
    at_boundary : bool
        The best grid point is the first or last one: widen the grid.
    error : float or None
        Relative error ‖X̂ − X‖_F/‖X‖_F at ``value`` (oracle only).
    extra : dict of str -> ndarray
        Further curves (L-curve: residual and solution norms on the grid).
    """

    method: str
    parameter: str
    value: float | int
    grid: np.ndarray = field(repr=False)
    curve: np.ndarray = field(repr=False)
    index: int
    at_boundary: bool
    error: float | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = {
            "method": self.method,
            "parameter": self.parameter,
            "value": int(self.value) if self.parameter == "k" else float(self.value),
            "index": int(self.index),
            "at_boundary": bool(self.at_boundary),
            "grid_min": float(self.grid[0]),
            "grid_max": float(self.grid[-1]),
            "n_grid": int(self.grid.shape[0]),
        }
        if self.error is not None:
            d["error"] = float(self.error)
        return d

    def arrays(self) -> dict[str, np.ndarray]:
        return {"grid": self.grid, "curve": self.curve, **self.extra}


def default_lambda_grid(s, *, m: int | None = None, n: int | None = None, num: int = 100):
    """``num`` log-spaced λ in [σ_min²·1e-2, σ_max²], σ_min guarded below by σ_max·max(m,n)·eps.

    Parameters
    ----------
    s : ndarray of shape (r,)
        Singular values (descending).

    Returns
    -------
    ndarray of shape (num,)
    """
    s = _singular_values_arg(s)
    if s.size == 0 or s[0] == 0:
        raise FastinvError("A is the zero matrix; no regularization parameter can be chosen")
    size = max(m or s.size, n or s.size)
    smin = max(float(s[-1]), float(s[0]) * size * _EPS)
    return np.logspace(2 * np.log10(smin) - 2, 2 * np.log10(s[0]), num)


def _lambda_grid(lambdas, s, m, n) -> np.ndarray:
    if lambdas is None:
        return default_lambda_grid(s, m=m, n=n)
    g = np.asarray(lambdas, dtype=np.float64).ravel()
    if g.size == 0:
        raise FastinvError("lambdas is empty; give at least one λ > 0")
    check_finite(g, "lambdas")
    if np.any(g <= 0):
        raise FastinvError("lambdas must all be > 0 (the criteria are searched on a log scale)")
    return np.unique(g)


def _rhs(Y, m: int, what: str) -> np.ndarray:
    arr = np.asarray(Y)
    if arr.ndim == 1:
        arr = arr[None, :]
    arr = check_2d(arr, what, shape=(None, m))
    if arr.shape[0] == 0:
        raise FastinvError(f"{what} holds no samples; give at least one row")
    check_finite(arr, what)
    return np.asarray(arr, dtype=np.float64)


@dataclass
class Projection:
    """Measurements (and targets) in A's singular bases: all that the parameter choices need.

    Built by :meth:`from_svd` from a dense SVD, or directly from coefficients computed some
    other way (by FFT for a structured operator, or on A's top-k singular directions only),
    so that λ and k are chosen without an m x r matrix U.

    Attributes
    ----------
    s : ndarray of shape (r,)
        Singular values, descending (all of them, or the leading r).
    B : ndarray of shape (N, r)
        Coefficients Y U (row j holds Uᵀ y_j).
    perp : float
        ‖Y − B Uᵀ‖_F², the energy of Y outside the r directions (counted as σ = 0).
    shape : (int, int)
        A's shape (m, n).
    G : ndarray of shape (N, r), optional
        Target coefficients X V (row j holds Vᵀ x_j), for the oracle choices.
    perp_x : float
        ‖X − G Vᵀ‖_F², the targets' energy outside the r directions (no filter on the r
        directions reconstructs it).
    """

    s: np.ndarray
    B: np.ndarray = field(repr=False)
    perp: float
    shape: tuple
    G: np.ndarray | None = field(default=None, repr=False)
    perp_x: float = 0.0

    @classmethod
    def from_svd(cls, svd, Y, X=None) -> Projection:
        """Project the rows of Y (and X) on ``svd = (U, s, Vt)``."""
        U, s, Vt = svd
        m, n = U.shape[0], Vt.shape[1]
        Y = _rhs(Y, m, "Y" if X is None else "Y_val")
        B = Y @ U
        perp = float(np.linalg.norm(Y - B @ U.T) ** 2) if U.shape[0] > U.shape[1] else 0.0
        if X is None:
            return cls(s, B, perp, (m, n))
        X = _rhs(X, n, "X_val")
        if X.shape[0] != Y.shape[0]:
            raise FastinvError(
                f"Y_val has {Y.shape[0]} rows but X_val has {X.shape[0]}; give matching pairs"
            )
        G = X @ Vt.T
        perp_x = float(np.linalg.norm(X - G @ Vt) ** 2) if Vt.shape[1] > Vt.shape[0] else 0.0
        return cls(s, B, perp, (m, n), G, perp_x)

    @property
    def energies(self) -> np.ndarray:
        """Σ_j (u_iᵀ y_j)² per direction i."""
        return np.einsum("ij,ij->j", self.B, self.B)

    def target_norm(self) -> float:
        """‖X‖_F (refusing a missing or zero X)."""
        if self.G is None:
            raise FastinvError("the oracle needs targets X_val; none were projected")
        nx = math.sqrt(float(np.sum(self.G * self.G)) + self.perp_x)
        if nx == 0:
            raise FastinvError("X_val is zero; the relative error is undefined")
        return nx


def _projection(A_or_svd, Y, X=None) -> Projection:
    """A :class:`Projection` given as such, or made from an SVD and the rows Y (and X)."""
    if isinstance(A_or_svd, Projection):
        if Y is not None:
            raise FastinvError("pass either a Projection or (A, Y), not both")
        return A_or_svd
    if Y is None:
        raise FastinvError("give the measurements Y (or a Projection instead of A)")
    return Projection.from_svd(_as_svd(A_or_svd), Y, X)


def _refine_log(fun, grid: np.ndarray, i: int, *, maximize: bool = False):
    """Bounded scalar refinement of fun(λ) on log λ between the grid neighbours of i."""
    from scipy.optimize import minimize_scalar

    if i == 0 or i == grid.size - 1:
        return float(grid[i]), float(fun(np.array([grid[i]]))[0])
    sign = -1.0 if maximize else 1.0
    lo, hi = np.log(grid[i - 1]), np.log(grid[i + 1])

    def f(tau):
        v = float(fun(np.array([np.exp(tau)]))[0])
        return sign * v if np.isfinite(v) else np.inf

    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    best = float(fun(np.array([grid[i]]))[0])
    if np.isfinite(res.fun) and res.fun < sign * best:  # res.fun is sign * value
        return float(np.exp(res.x)), sign * float(res.fun)
    return float(grid[i]), best


def _gcv_fun(s, w, perp, m, N):
    s2 = s * s

    def G(lams):
        phi = _safe_div(s2[None, :], s2[None, :] + lams[:, None])
        num = ((1.0 - phi) ** 2) @ w + perp
        den = (m - phi.sum(axis=1)) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, (num / N) / den, np.inf)

    return G


def gcv_lambda(A_or_svd, Y=None, *, lambdas=None, refine: bool = True) -> ParameterChoice:
    """Tikhonov λ by generalized cross-validation (Hansen's SVD form).

    G(λ) = ‖A x_λ − y‖² / trace(I − A A_λ^#)², with A A_λ^# the influence matrix, so
    ‖A x_λ − y‖² = Σ_i (1 − φ_i)² (u_iᵀy)² + ‖y − UUᵀy‖² and trace = m − Σ_i φ_i. For a batch
    of right-hand sides (rows of Y) the numerators are summed (averaged over the N rows) over
    the common denominator.

    Parameters
    ----------
    A_or_svd : ndarray (m, n), Operator or tuple (U, s, Vt)
    Y : ndarray of shape (m,) or (N, m)
        Measurements (rows).
    lambdas : array_like, optional
        Grid of λ > 0; default :func:`default_lambda_grid` (100 points).
    refine : bool
        Refine the minimiser between the neighbouring grid points (bounded, on log λ).

    Returns
    -------
    ParameterChoice
        ``curve`` is G on the grid.
    """
    p = _projection(A_or_svd, Y)
    (m, n), s = p.shape, p.s
    grid = _lambda_grid(lambdas, s, m, n)
    G = _gcv_fun(s, p.energies, p.perp, m, p.B.shape[0])
    curve = G(grid)
    if not np.any(np.isfinite(curve)):
        raise FastinvError("the GCV function is undefined on the whole grid; choose other lambdas")
    i = int(np.nanargmin(np.where(np.isfinite(curve), curve, np.nan)))
    value = _refine_log(G, grid, i)[0] if refine else float(grid[i])
    return ParameterChoice("gcv", "lambda", value, grid, curve, i, i in (0, grid.size - 1))


def _lcurve_fun(s, w, perp):
    """Norms and curvature of the L-curve (log‖Ax−y‖, log‖x‖) as functions of λ."""
    s2 = s * s
    ws2 = _safe_div(w, s2)  # energy of the naive solution per direction

    def parts(lams):
        f = _safe_div(s2[None, :], s2[None, :] + lams[:, None])
        g = 1.0 - f
        rho = (g * g) @ w + perp  # Σ ‖A x − y‖²
        eta = (f * f) @ ws2  # Σ ‖x‖²
        # derivatives with respect to τ = log λ (df/dτ = −f(1 − f))
        rho1 = 2.0 * (f * g * g) @ w
        rho2 = -2.0 * (f * g * g * (1.0 - 3.0 * f)) @ w
        eta1 = -2.0 * (f * f * g) @ ws2
        eta2 = 2.0 * (f * f * g * (2.0 - 3.0 * f)) @ ws2
        with np.errstate(divide="ignore", invalid="ignore"):
            x1, y1 = rho1 / rho, eta1 / eta
            x2, y2 = rho2 / rho - x1 * x1, eta2 / eta - y1 * y1
            # curvature of (½ log ρ, ½ log η) = (log‖r‖, log‖x‖): twice that of (log ρ, log η)
            kappa = 2.0 * (x1 * y2 - x2 * y1) / (x1 * x1 + y1 * y1) ** 1.5
        return kappa, np.sqrt(rho), np.sqrt(eta)

    return parts


def lcurve_lambda(A_or_svd, Y=None, *, lambdas=None, refine: bool = True) -> ParameterChoice:
    """Tikhonov λ at the L-curve corner: maximum curvature of (log‖A x_λ − y‖, log‖x_λ‖).

    The curvature is computed analytically from the SVD expansion (derivatives of the
    squared norms with respect to log λ, equivalent to Hansen's formula), so the grid need not
    be fine. For a batch the squared norms are summed over the rows of Y.

    Parameters
    ----------
    A_or_svd : ndarray (m, n), Operator or tuple (U, s, Vt)
    Y : ndarray of shape (m,) or (N, m)
    lambdas : array_like, optional
        Grid of λ > 0; default :func:`default_lambda_grid`.
    refine : bool
        Refine the maximiser between neighbouring grid points.

    Returns
    -------
    ParameterChoice
        ``curve`` is the curvature; ``extra`` holds ``residual_norm`` and ``solution_norm``.
    """
    p = _projection(A_or_svd, Y)
    (m, n), s, w = p.shape, p.s, p.energies
    grid = _lambda_grid(lambdas, s, m, n)
    if not np.any(w > 0):
        raise FastinvError("Y has no component in the range of A; the L-curve is undefined")
    parts = _lcurve_fun(s, w, p.perp)
    kappa, rn, sn = parts(grid)
    if not np.any(np.isfinite(kappa)):
        raise FastinvError(
            "the L-curve curvature is undefined on the whole grid; choose other lambdas"
        )
    i = int(np.nanargmax(np.where(np.isfinite(kappa), kappa, np.nan)))
    if refine:
        value = _refine_log(lambda lam: parts(lam)[0], grid, i, maximize=True)[0]
    else:
        value = float(grid[i])
    return ParameterChoice(
        "lcurve",
        "lambda",
        value,
        grid,
        kappa,
        i,
        i in (0, grid.size - 1),
        extra={"residual_norm": rn, "solution_norm": sn},
    )


def _oracle_parts(p: Projection):
    """Per-direction sufficient statistics of ‖Y Cᵀ − X‖_F² for C = V diag(d) Uᵀ.

    err²(d) = Σ_i [bb_i (d_i − c_i)² + res_i] + perp_x, with bb = Σ_j β_ji², c = bg/bb and
    res = gg − bg²/bb >= 0 (no cancellation in the d-dependent term).
    """
    B, G = p.B, p.G
    bb = np.einsum("ij,ij->j", B, B)
    bg = np.einsum("ij,ij->j", B, G)
    gg = np.einsum("ij,ij->j", G, G)
    c = _safe_div(bg, bb)
    res = np.maximum(gg - c * bg, 0.0)
    return bb, c, res


def _oracle_projection(A_or_svd, Y_val, X_val) -> tuple[Projection, float]:
    """The validation pairs projected (or the Projection given), and ‖X_val‖_F."""
    if isinstance(A_or_svd, Projection):
        if Y_val is not None or X_val is not None:
            raise FastinvError("pass either a Projection or (A, Y_val, X_val), not both")
        p = A_or_svd
    else:
        if Y_val is None or X_val is None:
            raise FastinvError("give the validation pairs Y_val and X_val")
        p = Projection.from_svd(_as_svd(A_or_svd), Y_val, X_val)
    return p, p.target_norm()


def oracle_lambda(
    A_or_svd, Y_val=None, X_val=None, *, lambdas=None, refine: bool = True
) -> ParameterChoice:
    """Tikhonov λ with the least relative error ‖X̂ − X‖_F/‖X‖_F on held-out pairs.

    X̂ = Y C_λᵀ with C_λ = (AᵀA + λI)⁻¹Aᵀ (no intercept). The error is evaluated in the SVD
    basis for the whole grid at once.

    Parameters
    ----------
    A_or_svd : ndarray (m, n), Operator or tuple (U, s, Vt)
    Y_val : ndarray of shape (N, m)
    X_val : ndarray of shape (N, n)
    lambdas : array_like, optional
    refine : bool

    Returns
    -------
    ParameterChoice
        ``curve`` is the relative error on the grid, ``error`` the one at ``value``.
    """
    p, nx = _oracle_projection(A_or_svd, Y_val, X_val)
    (m, n), s = p.shape, p.s
    grid = _lambda_grid(lambdas, s, m, n)
    bb, c, res = _oracle_parts(p)
    base = float(res.sum()) + p.perp_x
    s2 = s * s

    def err(lams):
        d = _safe_div(s[None, :], s2[None, :] + lams[:, None])
        e2 = ((d - c) ** 2) @ bb + base
        return np.sqrt(np.maximum(e2, 0.0)) / nx

    curve = err(grid)
    i = int(np.argmin(curve))
    value = _refine_log(err, grid, i)[0] if refine else float(grid[i])
    d = _safe_div(s, s2 + value)
    exact = np.sqrt(np.linalg.norm(p.B * d - p.G) ** 2 + p.perp_x) / nx
    return ParameterChoice(
        "oracle", "lambda", value, grid, curve, i, i in (0, grid.size - 1), error=float(exact)
    )


def _k_grid(ks, kmax: int) -> np.ndarray:
    if kmax < 1:
        raise FastinvError(
            f"no truncation k can be chosen: the candidates 1..{kmax} are empty (k is at most "
            "the numerical rank of A, and at most m − 1 for GCV)"
        )
    if ks is None:
        return np.arange(1, kmax + 1)
    g = np.unique(np.asarray(ks).ravel())
    if g.size == 0 or g.dtype.kind not in "iu" and not np.all(np.mod(g, 1) == 0):
        raise FastinvError("ks must be a non-empty list of integers")
    g = g.astype(np.int64)
    if g[0] < 1 or g[-1] > kmax:
        raise FastinvError(
            f"ks must lie in [1, {kmax}] (the numerical rank / m − 1), got {g[0]}..{g[-1]}"
        )
    return g


def gcv_k(A_or_svd, Y=None, *, ks=None) -> ParameterChoice:
    """TSVD truncation k by GCV: G(k) = (Σ_{i>k} (u_iᵀy)² + ‖y − UUᵀy‖²) / (m − k)².

    Parameters
    ----------
    A_or_svd : ndarray (m, n), Operator or tuple (U, s, Vt)
    Y : ndarray of shape (m,) or (N, m)
    ks : array_like of int, optional
        Candidates; default 1 .. min(numerical rank, m − 1).

    Returns
    -------
    ParameterChoice
    """
    p = _projection(A_or_svd, Y)
    (m, n), s, w = p.shape, p.s, p.energies
    grid = _k_grid(ks, min(numerical_rank(s, m, n), m - 1))
    tail = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])  # tail[k] = Σ_{i>=k} w_i
    curve = ((tail[grid] + p.perp) / p.B.shape[0]) / (m - grid) ** 2.0
    i = int(np.argmin(curve))
    return ParameterChoice("gcv", "k", int(grid[i]), grid, curve, i, i in (0, grid.size - 1))


def oracle_k(A_or_svd, Y_val=None, X_val=None, *, ks=None) -> ParameterChoice:
    """TSVD truncation k with the least relative error on held-out pairs (no intercept).

    Parameters
    ----------
    A_or_svd : ndarray (m, n), Operator or tuple (U, s, Vt)
    Y_val : ndarray of shape (N, m)
    X_val : ndarray of shape (N, n)
    ks : array_like of int, optional
        Candidates; default 1 .. numerical rank.

    Returns
    -------
    ParameterChoice
    """
    p, nx = _oracle_projection(A_or_svd, Y_val, X_val)
    (m, n), s = p.shape, p.s
    r = numerical_rank(s, m, n)
    grid = _k_grid(ks, r)
    bb, c, res = _oracle_parts(p)
    perp = p.perp_x
    inv = _safe_div(1.0, s)
    kept = bb * (inv - c) ** 2 + res  # error of direction i when it is inverted
    dropped = bb * c * c + res  # ... when it is suppressed (d_i = 0)
    pre = np.concatenate([[0.0], np.cumsum(kept)])
    tail = np.concatenate([np.cumsum(dropped[::-1])[::-1], [0.0]])
    curve = np.sqrt(np.maximum(pre[grid] + tail[grid] + perp, 0.0)) / nx
    i = int(np.argmin(curve))
    return ParameterChoice(
        "oracle", "k", int(grid[i]), grid, curve, i, i in (0, grid.size - 1), error=float(curve[i])
    )
