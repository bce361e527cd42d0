"""The top-k audit: the network on A's k leading singular directions, never an n x n matrix.

With A = U S Vᵀ, z = U_kᵀ y and w = V_kᵀ x̂, the affine fit w ≈ G z + c is identifiable once
the fitted rows N ≫ k, at any n. G equals V_kᵀ C U_k of the full least-squares C when the
probes' covariance is block-diagonal between span(U_k) and its complement (white probes, or
Fourier-stationary probes with a Fourier-diagonal A), or when C is a spectral filter of A;
otherwise it is the best affine map from the projected inputs (docs/science.md, "The top-k
audit"). Filter factors are φ_i = σ_i G_ii.

The steps, in the order :func:`audit_topk` runs them: A's top-k triplets
(:func:`top_basis`: exact from the structure, randomized otherwise), the probes and the
network's outputs projected in chunks (:func:`project_probes`), the projected fit
(:func:`fit_projected`), the network on the test set (:func:`network_on_test`), the reference
filters with their parameters chosen on coefficients (:func:`topk_references`), the test
errors on the k directions and, where the operator's SVD is known exactly, in full
(:func:`test_errors`), the filter factors side by side (:func:`filter_comparison`), the
Jacobians by Jacobian-vector products (:func:`projected_jacobian_audit`), and the metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fastinv._validation import check_int, check_model_output
from fastinv.auditing import images
from fastinv.auditing.angles import cov_sqrt, weighted_rel_error
from fastinv.auditing.references import PARAM_ROWS, References
from fastinv.errors import FastinvError
from fastinv.io import check_memory
from fastinv.linalg import estimators
from fastinv.linalg.spectral import phi_summary, split_filter_matrix
from fastinv.linalg.stats import relative_error

__all__ = [
    "DENSE_BASIS_MAX",
    "JVP_BUDGET",
    "RANK_CAP",
    "ROWS_PER_DIRECTION",
    "TopBasis",
    "TopTest",
    "default_rank",
    "filter_comparison",
    "forward_chunk",
    "fit_projected",
    "network_on_test",
    "network_outputs",
    "project_probes",
    "projected_jacobian_audit",
    "test_errors",
    "top_basis",
    "tikhonov_gain",
    "topk_arrays",
    "topk_image_arrays",
    "topk_metrics",
    "topk_references",
    "check_rank",
    "check_topk_memory",
    "chunks_through",
    "topk_bytes",
    "noise_variance",
    "oracle_filter_error",
    "param_rows",
    "phi_standard_errors",
    "prior_variances",
    "sigma_max_per_probe",
    "singular_values_k",
    "WHAT_G",
]

#: the default k is at most this
RANK_CAP = 256
#: the default k leaves at least this many fitted rows per direction (N_fit >= 8 k)
ROWS_PER_DIRECTION = 8
#: Jacobian-vector products of the top-k Jacobian audit (probes x k), at most
JVP_BUDGET = 1024
#: a dense A up to this size gets its full SVD (then every reference's error is over all of
#: x); above it, only its k leading triplets (randomized)
DENSE_BASIS_MAX = 2048
#: rows of (N, n) coefficients held at once when the full spectral basis is used
_COEF_BYTES = 1 << 28


def default_rank(n_fit: int, n: int, cap: int = RANK_CAP) -> int:
    """k = min(cap, n, N_fit // 8): what the fitted rows support (at least 1)."""
    return max(1, min(cap, n, n_fit // ROWS_PER_DIRECTION))


# --------------------------------------------------------------------------------------------
# A's leading singular directions


@dataclass
class TopBasis:
    """A's k leading singular triplets, and its whole spectral basis where one is known.

    Attributes
    ----------
    U : ndarray of shape (m, k)
    s : ndarray of shape (k,)
        Descending.
    Vt : ndarray of shape (k, n)
    full : SpectralBasis or None
        All of A's singular directions by fast transforms (FFT, DCT, Kronecker, diagonal,
        dense), or None for a matrix-free operator without structure.
    method : str
        How the triplets were computed.
    """

    U: np.ndarray = field(repr=False)
    s: np.ndarray
    Vt: np.ndarray = field(repr=False)
    full: object = field(default=None, repr=False)
    method: str = ""

    @property
    def k(self) -> int:
        return int(self.s.size)

    @property
    def sigma_all(self) -> np.ndarray | None:
        """All singular values (descending) when the full basis is known."""
        return None if self.full is None else np.asarray(self.full.sigma)


def top_basis(op, k: int, *, seed: int = 0) -> TopBasis:
    """A's k leading singular triplets (``op.svd_topk``) and its full spectral basis
    (``op.spectral_basis``) when the structure gives one."""
    full = None
    if op.structure != "dense" or max(op.shape) <= DENSE_BASIS_MAX:
        full = getattr(op, "spectral_basis", None)
    if full is None and op.structure != "dense":
        op.check_adjoint()  # the randomized SVD below needs a true adjoint
    # block Krylov: clustered singular values (2-D blurs) need it; 4e-11 relative on a
    # zero-boundary disk blur where the default subspace iteration gives 3e-6
    U, s, Vt, info = op.svd_topk(k, seed=seed, method="block_krylov")
    method = info.get("method", "")
    if method == "exact":
        method = f"exact ({op.structure})"
    elif method in ("full",):
        method = "full SVD"
    else:
        method = f"randomized ({method}) SVD on apply/adjoint"
    return TopBasis(
        np.asarray(U, np.float64),
        np.asarray(s, np.float64),
        np.asarray(Vt, np.float64),
        full,
        method,
    )


# --------------------------------------------------------------------------------------------
# the probes and the network's outputs, projected


#: a chunk of rows through the network holds at most about this much (its activations)
_FORWARD_BYTES = 1 << 29


def _chunk_rows(n: int, N: int) -> int:
    """Rows per chunk so that one chunk of inputs and outputs takes about 64 MiB."""
    return int(max(16, min(N, (1 << 26) // max(1, 16 * n))))


def forward_chunk(model, Y) -> int | None:
    """Rows per forward chunk of a torch model, from its activations on one row (measured
    with forward hooks: :func:`fastinv.linalg.jacobians.activation_row_bytes`) so that a
    chunk holds about 512 MiB; None for a model that is not a torch module."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(model, torch.nn.Module):
        return None
    from fastinv.linalg.jacobians import activation_row_bytes

    per_row = max(1, activation_row_bytes(model, np.asarray(Y[0], dtype=np.float64)))
    return int(max(1, min(_chunk_rows(Y.shape[1], Y.shape[0]), _FORWARD_BYTES // per_row)))


def _checked_outputs(Xc, shape, n_out: int, what: str) -> np.ndarray:
    Xc = np.asarray(Xc, dtype=np.float64)
    check_model_output(Xc.shape, shape, n_out)
    if not np.all(np.isfinite(Xc)):
        raise FastinvError(f"the model's outputs on the {what} are not all finite (NaN or Inf)")
    return Xc


def chunks_through(
    f, Y, *, what: str, n_out: int | None = None, chunk: int | None = None, progress=None
):
    """Yield ``(lo, hi, Y[lo:hi], f(Y[lo:hi]))`` chunk by chunk (float64, the outputs'
    shape — ``n_out`` columns, default Y's — and finiteness checked); ``progress`` is called
    with the rows done after each."""
    N, m = Y.shape
    n_out = m if n_out is None else n_out
    chunk = chunk or _chunk_rows(max(m, n_out), N)
    for lo in range(0, N, chunk):
        hi = min(N, lo + chunk)
        Yc = np.asarray(Y[lo:hi], dtype=np.float64)
        yield lo, hi, Yc, _checked_outputs(f(Yc), Yc.shape, n_out, what)
        if progress is not None:
            progress(hi - lo)


def project_probes(f, Y, top: TopBasis, *, chunk: int | None = None, progress=None):
    """(Z, W): the probes' coefficients Y U_k and the network's outputs' f(Y) V_k, (N, k)
    each, computed chunk by chunk (the (N, n) outputs are never held whole); ``progress``
    is called with the number of rows done after each chunk."""
    Z = np.empty((Y.shape[0], top.k))
    W = np.empty((Y.shape[0], top.k))
    n = top.Vt.shape[1]
    for lo, hi, Yc, Xc in chunks_through(
        f, Y, what="probes", n_out=n, chunk=chunk, progress=progress
    ):
        Z[lo:hi] = Yc @ top.U
        W[lo:hi] = Xc @ top.Vt.T
    return Z, W


def fit_projected(Z, W, *, seed: int, notes: list):
    """The affine fit W ≈ Z Gᵀ + c (20 % of rows held out for R² when there are >= 50), and
    a note when the fitted rows do not identify G (N_fit < k + 1)."""
    from fastinv.linalg.surrogate import fit_linear

    N, k = Z.shape
    holdout = 0.2 if N >= 50 else 0.0
    if not holdout:
        notes.append(f"only {N} probes: R² is in-sample (no probes held out)")
    fit = fit_linear(Z, W, holdout=holdout, seed=seed)
    if fit.n_samples < k + 1:
        notes.append(
            f"the projected fit is rank-deficient: {fit.n_samples} fitted rows for k = {k} "
            "directions (k + 1 needed); G is a minimum-norm guess and R² says nothing about "
            "the network — give more probes or a smaller --audit-rank"
        )
    return fit


def phi_standard_errors(Z, W, fit, s) -> np.ndarray:
    """Standard errors of φ_i = σ_i G_ii from the regression on all rows: σ_i √(s²_i
    [(Z_cᵀZ_c)⁻¹]_ii), s²_i the residual variance of output i (N − k − 1 degrees of
    freedom), Z_c the centred inputs; inf where the fit is not identified."""
    N, k = Z.shape
    dof = N - k - 1
    if dof <= 0:
        return np.full(k, np.inf)
    R = W - Z @ fit.C.T - fit.b
    s2 = np.einsum("ij,ij->j", R, R) / dof
    Zc = Z - Z.mean(0)
    try:
        inv_diag = np.diag(np.linalg.inv(Zc.T @ Zc))
    except np.linalg.LinAlgError:
        return np.full(k, np.inf)
    return s * np.sqrt(np.maximum(s2 * inv_diag, 0.0))


@dataclass
class TopTest:
    """The network and its projected surrogate on the test inputs.

    ``X_net`` (Nt, n) are the network's outputs; ``Z`` = Y_test U_k, ``W_net`` = X_net V_k,
    ``W_c`` = Z Gᵀ + c and ``W_true`` = X_test V_k (None without targets); ``r2`` is R² of
    W_c against W_net.
    """

    X_net: np.ndarray = field(repr=False)
    Z: np.ndarray = field(repr=False)
    W_net: np.ndarray = field(repr=False)
    W_c: np.ndarray = field(repr=False)
    W_true: np.ndarray | None = field(repr=False)
    r2: float


def network_outputs(f, Y, n: int, *, what: str, chunk=None, progress=None) -> np.ndarray:
    """f(Y) (N, n) float64, chunk by chunk (``progress`` called with the rows done)."""
    out = np.empty((Y.shape[0], n))
    for lo, hi, _, Xc in chunks_through(f, Y, what=what, n_out=n, chunk=chunk, progress=progress):
        out[lo:hi] = Xc
    return out


def network_on_test(f, Y_test, X_test, top: TopBasis, fit, *, chunk=None, progress=None) -> TopTest:
    """Run the network on the test inputs; project it, its surrogate and the targets."""
    n = top.Vt.shape[1]
    X_net = network_outputs(f, Y_test, n, what="test set", chunk=chunk, progress=progress)
    Z = Y_test @ top.U
    W_net = X_net @ top.Vt.T
    W_c = Z @ fit.C.T + fit.b
    den = float(np.sum((W_net - W_net.mean(0)) ** 2))
    r2 = 1.0 - float(np.sum((W_c - W_net) ** 2)) / den if den > 0 else float("nan")
    W_true = None if X_test is None else X_test @ top.Vt.T
    return TopTest(X_net, Z, W_net, W_c, W_true, r2)


# --------------------------------------------------------------------------------------------
# the references, as filter factors


def param_rows(n: int) -> int:
    """Rows used to choose λ, k and t: :data:`PARAM_ROWS`, fewer when n is large (their
    coefficients in the full basis take at most 256 MiB)."""
    return int(max(64, min(PARAM_ROWS, _COEF_BYTES // (8 * max(n, 1)))))


def _projection(top: TopBasis, shape, Y, X=None) -> estimators.Projection:
    """Rows (and targets) as coefficients in the full basis, else on the k directions (the
    rest counted as outside A's range)."""
    if top.full is not None:
        B, s = top.full.left(Y), top.sigma_all
        G = None if X is None else top.full.right(X)
    else:
        B, s = Y @ top.U, top.s
        G = None if X is None else X @ top.Vt.T
    perp = max(float(np.sum(Y * Y)) - float(np.sum(B * B)), 0.0)
    perp_x = 0.0 if X is None else max(float(np.sum(X * X)) - float(np.sum(G * G)), 0.0)
    return estimators.Projection(s, B, perp, tuple(shape), G, perp_x)


def topk_references(op, top: TopBasis, probes, validation, *, prior, noise, train_X):
    """A⁻¹, Tikhonov (GCV, L-curve, oracle λ), TSVD (GCV, oracle k), Landweber (oracle t)
    and the LMMSE/Wiener filter, as filter factors; parameters chosen on coefficients."""
    refs = References()
    s = top.sigma_all if top.full is not None else top.s
    if top.full is None:
        refs.notes.append(
            f"A's spectrum is known only on its {top.k} leading directions: GCV, the L-curve and "
            "the oracle choose λ, k and t for A's rank-k part"
        )
    rank = estimators.numerical_rank(s, *op.shape)
    refs.filters["A_inv"] = (np.arange(s.size) < rank).astype(np.float64)
    if top.full is None:
        kind = "inverse on the k leading directions"
    else:
        kind = "pseudo-inverse" if rank < s.size else "inverse"
    refs.info["A_inv"] = {"kind": kind}
    rows = param_rows(op.n)
    par = _projection(top, op.shape, probes[:rows])
    Y_val, X_val = validation
    val = None
    if X_val is not None:
        val = _projection(top, op.shape, Y_val[:rows], X_val[:rows])
    _tikhonov(refs, par, val)
    _tsvd(refs, par, val)
    if val is not None:
        _landweber(refs, val)
    refs.best_tikhonov = "tikhonov_oracle" if "tikhonov_oracle" in refs.filters else "tikhonov_gcv"
    _wiener(refs, op, top, prior, noise, train_X if train_X is not None else X_val)
    return refs


def _tikhonov(refs: References, par, val) -> None:
    choices = {
        "gcv": estimators.gcv_lambda(par),
        "lcurve": estimators.lcurve_lambda(par),
    }
    if val is not None:
        choices["oracle"] = estimators.oracle_lambda(val)
    for how, ch in choices.items():
        lam = float(ch.value)
        refs.curves[how] = ch
        refs.filters[f"tikhonov_{how}"] = estimators.filter_factors_tikhonov(par.s, lam)
        refs.info[f"tikhonov_{how}"] = {"lambda": lam, "chosen_by": how}


def _tsvd(refs: References, par, val) -> None:
    ks = {}
    try:
        ks["gcv"] = int(estimators.gcv_k(par).value)
    except FastinvError as e:
        refs.notes.append(f"TSVD with k by GCV was not computed: {e}")
    if val is not None:
        ks["oracle"] = int(estimators.oracle_k(val).value)
    for how, kv in ks.items():
        refs.filters[f"tsvd_{how}"] = estimators.filter_factors_tsvd(par.s, kv)
        refs.info[f"tsvd_{how}"] = {"k": kv, "chosen_by": how}


def oracle_filter_error(proj: estimators.Projection, phi: np.ndarray) -> float:
    """‖X̂ − X‖_F/‖X‖_F of x̂ = V diag(φ/σ) Uᵀ y on the projected pairs."""
    d = estimators.spectral_gains(phi, proj.s)
    e2 = float(np.sum((proj.B * d - proj.G) ** 2)) + proj.perp_x
    return math.sqrt(e2) / proj.target_norm()


def _landweber(refs: References, val) -> None:
    """Landweber (step 1/σ_1²) with the number of steps of least validation error."""
    s = val.s
    eta = 1.0 / float(s[0]) ** 2
    grid = np.unique(np.round(np.logspace(0, 7, 57)).astype(np.int64))
    errs = [
        oracle_filter_error(val, estimators.filter_factors_landweber(s, eta, int(t))) for t in grid
    ]
    t = int(grid[int(np.argmin(errs))])
    refs.filters["landweber_oracle"] = estimators.filter_factors_landweber(s, eta, t)
    refs.info["landweber_oracle"] = {"eta": eta, "t": t, "chosen_by": "oracle"}


# --------------------------------------------------------------------------------------------
# the LMMSE / Wiener filter on A's singular directions


def prior_variances(op, top: TopBasis, prior, samples):
    """(p, mean_v, source): the prior's variance along each right singular vector (over the
    directions whose σ is known), its mean in that basis, and where they come from.

    Exact for a stationary prior with a power spectrum on the grid of a periodic convolution
    (then Vᵀ Σ V is diagonal and p is the power at each singular vector's frequency: the
    Wiener filter is the LMMSE); otherwise estimated from ``samples`` as Var(Vᵀ x), which
    treats Vᵀ Σ V as diagonal. None when neither is available.
    """
    spectrum = _stationary_power(op, prior)
    if spectrum is not None:
        mean = np.asarray(prior.mean(), dtype=np.float64)
        return spectrum, _right(top, mean[None, :])[0], "analytic (stationary prior, Wiener)"
    if samples is None or samples.shape[0] < 2:
        return None
    Gs = _right(top, np.asarray(samples, dtype=np.float64))
    return (
        Gs.var(0, ddof=1),
        Gs.mean(0),
        f"Var(Vᵀx) from {samples.shape[0]} samples (Vᵀ Σ V taken as diagonal)",
    )


def _right(top: TopBasis, X) -> np.ndarray:
    return top.full.right(X) if top.full is not None else X @ top.Vt.T


def _stationary_power(op, prior) -> np.ndarray | None:
    """The prior's power along A's singular vectors (descending σ) when A is a periodic
    convolution on the prior's grid and the prior has a power spectrum; else None."""
    lm = getattr(op, "linear_map", None)
    if prior is None or not hasattr(prior, "power_spectrum") or lm is None:
        return None
    if getattr(lm, "structure", None) != "fft2" or getattr(prior, "image_shape", None) != getattr(
        lm, "grid", None
    ):
        return None
    from fastinv.problem.structured import PeriodicConvolution

    # Σ is itself a periodic convolution (kernel ifft2(P), eigenvalues P) with the same
    # Fourier modes in the same item order: its singular values, item by item, are P there
    sigma_cov = PeriodicConvolution(np.fft.ifft2(prior.power_spectrum()).real)
    order = np.argsort(-lm.sigma_items(), kind="stable")
    return sigma_cov.sigma_items()[order]


def noise_variance(noise, op, top: TopBasis, p, mean_v, samples) -> float | None:
    """σ² of fastinv's noise models: level² (absolute), level² E‖Ax‖²/m (relative, with
    E‖Ax‖² = Σ σ_i² p_i + ‖S Vᵀμ‖² over all directions when the full basis is known, else
    the mean of ‖A x‖² over ``samples``)."""
    if not noise:
        return None
    level = float(noise.get("level", 0.0))
    if level == 0:
        return 0.0
    if noise.get("type", "relative") == "absolute":
        return level**2
    m = op.shape[0]
    if top.full is not None and p is not None:
        s = top.sigma_all
        return level**2 * float(np.sum(s**2 * p) + np.sum((s * mean_v) ** 2)) / m
    if samples is not None and samples.shape[0] > 0:
        AX = np.asarray(op.apply(np.asarray(samples[:PARAM_ROWS], dtype=np.float64)))
        return level**2 * float(np.mean(np.sum(AX * AX, axis=1))) / m
    return None


def _wiener(refs: References, op, top: TopBasis, prior, noise, samples) -> None:
    """φ_i = σ_i² p_i / (σ_i² p_i + σ²) with the offset (1 − φ_i) (Vᵀμ)_i."""
    moments = prior_variances(op, top, prior, samples)
    if moments is None:
        refs.notes.append(
            "LMMSE was not computed: it needs the prior's variances (a stationary prior or "
            "training targets) and the noise level"
        )
        return
    p, mean_v, source = moments
    nv = noise_variance(noise, op, top, p, mean_v, samples)
    if nv is None:
        refs.notes.append("LMMSE was not computed: the noise variance could not be derived")
        return
    s = top.sigma_all if top.full is not None else top.s
    num = s * s * p
    den = num + nv
    phi = np.divide(num, den, out=(s > 0).astype(np.float64), where=den > 0)
    refs.filters["lmmse"] = phi
    refs.offsets["lmmse"] = (1.0 - phi) * mean_v
    refs.info["lmmse"] = {"prior_cov": source, "noise_var": float(nv)}


# --------------------------------------------------------------------------------------------
# errors on the test set


def _filter_coefficients(phi_k, s_k, Z, offset=None):
    W = Z * estimators.spectral_gains(phi_k, s_k)
    return W if offset is None else W + offset


def test_errors(top: TopBasis, test: TopTest, Y_test, X_test, refs: References, notes: list):
    """(errors on the k directions, errors over all of x): relative test errors of the
    network, C (k directions only) and every reference filter."""
    if test.W_true is None:
        notes.append(
            "no test targets: test errors of the network, C and the references are not given"
        )
        return {}, {}
    k = top.k
    sub = {
        "network": relative_error(test.W_net, test.W_true),
        "surrogate": relative_error(test.W_c, test.W_true),
    }
    for name, phi in refs.filters.items():
        off = refs.offsets.get(name)
        W = _filter_coefficients(phi[:k], top.s, test.Z, None if off is None else off[:k])
        sub[name] = relative_error(W, test.W_true)
    full = {"network": relative_error(test.X_net, X_test)}
    if top.full is not None:
        full.update(_full_filter_errors(top, Y_test, X_test, refs))
    else:
        notes.append(
            "the references' errors over all of x need A's full spectral basis (FFT, DCT, "
            "Kronecker, diagonal or dense): they are given on the k leading directions only"
        )
    return sub, full


def _full_filter_errors(top: TopBasis, Y_test, X_test, refs: References) -> dict:
    """Errors of the reference filters over all of x, through the full basis in chunks of
    test rows (x̂ = V (diag(φ/σ) Uᵀ y + offset))."""
    n = X_test.shape[1]
    s = top.sigma_all
    gains = {name: estimators.spectral_gains(phi, s) for name, phi in refs.filters.items()}
    sq = dict.fromkeys(gains, 0.0)
    chunk = max(1, _COEF_BYTES // (16 * n))
    for lo in range(0, X_test.shape[0], chunk):
        Xc = X_test[lo : lo + chunk]
        B, G = top.full.left(Y_test[lo : lo + chunk]), top.full.right(Xc)
        outside = max(float(np.sum(Xc * Xc)) - float(np.sum(G * G)), 0.0)
        for name, d in gains.items():
            W = B * d + refs.offsets.get(name, 0.0)
            sq[name] += float(np.sum((W - G) ** 2)) + outside
    norm_x = float(np.linalg.norm(X_test))
    return {name: math.sqrt(v) / norm_x for name, v in sq.items()}


# --------------------------------------------------------------------------------------------
# filter factors side by side


def filter_comparison(top: TopBasis, fit, refs: References, Z, W) -> dict:
    """φ (with the standard errors of φ_C), off-diagonal shares, RMS distances to C and the
    closest classical filter, on the k leading directions."""
    k = top.k
    diag, off = split_filter_matrix(fit.C * top.s[None, :])  # G S_k
    phi = {"C": diag, **{name: v[:k] for name, v in refs.filters.items()}}
    dist = {
        name: float(np.sqrt(np.mean((phi["C"] - v) ** 2))) for name, v in phi.items() if name != "C"
    }
    classical = [name for name in dist if name != "A_inv"]
    closest = min(classical, key=dist.get) if classical else "A_inv"
    offdiag = {"C": off, **{name: 0.0 for name in refs.filters}}
    stderr = phi_standard_errors(Z, W, fit, top.s)
    return {
        "phi": phi,
        "phi_stderr": stderr,
        "offdiag": offdiag,
        "distance": dist,
        "closest": closest,
    }


def singular_values_k(top: TopBasis, fit, refs: References) -> dict:
    """Singular values of G and of the references restricted to the k directions."""
    k = top.k
    out = {"C": np.linalg.svd(fit.C, compute_uv=False)}
    for name, phi in refs.filters.items():
        d = np.abs(estimators.spectral_gains(phi[:k], top.s))
        out[name] = np.sort(d)[::-1]
    return out


# --------------------------------------------------------------------------------------------
# Jacobians by Jacobian-vector products


def projected_jacobian_audit(
    model, is_torch: bool, n_jacobian: int, probes, top: TopBasis, fit, refs, Z, *, notes, rep
) -> tuple[dict, dict]:
    """V_kᵀ J(y) U_k at the first ``n_jacobian`` probes (k Jacobian-vector products each),
    their mean against G (equal for Gaussian probes by Stein's lemma), their filter factors,
    and σ_max(J(y)) by power iteration on JVP/VJP; ({}, {}) for a model that is not torch."""
    if not (is_torch and n_jacobian > 0):
        notes.append("Jacobians need a torch model; they were not computed")
        return {}, {}
    from fastinv.linalg.jacobians import projected_jacobians

    m = min(n_jacobian, probes.shape[0], max(2, JVP_BUDGET // top.k))
    if m < min(n_jacobian, probes.shape[0]):
        notes.append(
            f"Jacobians at {m} of the {n_jacobian} probes asked: {top.k} JVPs each, at most "
            f"{JVP_BUDGET} in all"
        )
    Yj = np.asarray(probes[:m], dtype=np.float64)
    with rep.stage("jacobians", f"V_kᵀ J U_k at {m} probes by {top.k} JVPs each"):
        bar = rep.bar(m * top.k, "Jacobian-vector products", unit="jvp")
        J = projected_jacobians(
            model, Yj, top.U, np.ascontiguousarray(top.Vt.T), progress=bar.update
        )
        bar.close()
        n_sigma = min(m, 4)
        smax = sigma_max_per_probe(model, Yj[:n_sigma], notes)
    Jbar = J.mean(0)
    spread = [relative_error(J[i], Jbar, floor=1e-300) for i in range(m)]
    phi_J, offdiag_J = split_filter_matrix(Jbar * top.s[None, :])
    out = {
        "n_probes": m,
        "what": "V_kᵀ J(y) U_k on A's k leading directions; σ_max(J) over all of R^n",
        "mean_jacobian_vs_C_rel_fro": relative_error(Jbar, fit.C),
        # compared where the projected inputs vary (R = Cov(z)^½)
        "mean_jacobian_vs_C_rel_fro_data_weighted": weighted_rel_error(Jbar, fit.C, cov_sqrt(Z)),
        "spread_rel_fro_mean": float(np.mean(spread)),
        "spread_rel_fro_max": float(np.max(spread)),
        "n_probes_sigma_max": n_sigma,
        "sigma_max_J_median": float(np.median(smax)),
        "sigma_max_J_max": float(np.max(smax)),
        "inverse_sigma_min_A": _inverse_sigma_min(top),
        "mean_jacobian_offdiag_share": offdiag_J,
    }
    out.update(tikhonov_gain(refs))
    arrays = {"phi_mean_jacobian": phi_J, "jacobian_topk_mean": Jbar}
    return out, arrays


def sigma_max_per_probe(model, Y, notes: list) -> np.ndarray:
    """σ_max(J(y)) at each row of Y by power iteration (to 1e-3 relative: a summary, not a
    spectrum); a note when some did not converge (their value is then a lower bound)."""
    import warnings

    from fastinv.linalg.jacobians import jacobian_sigma_max

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        out = np.array([jacobian_sigma_max(model, y, iters=60, tol=1e-3) for y in Y])
    if any("did not converge" in str(w.message) for w in caught):
        notes.append(
            "σ_max(J) did not converge to 1e-3 in 60 power iterations at some probes: the "
            "values are lower bounds (the top singular values of J are clustered)"
        )
    return out


def tikhonov_gain(refs) -> dict:
    """The largest gain of the best Tikhonov filter, max_σ σ/(σ² + λ) = 1/(2√λ): the
    yardstick for σ_max(J) (1/σ_min(A) only says "not A⁻¹")."""
    lam = refs.info.get(refs.best_tikhonov, {}).get("lambda")
    if lam is None or lam <= 0:
        return {}
    return {"tikhonov_max_gain": 0.5 / math.sqrt(lam), "tikhonov_max_gain_of": refs.best_tikhonov}


def _inverse_sigma_min(top: TopBasis) -> float | None:
    s = top.sigma_all
    if s is None or s[-1] <= 0:
        return None
    return float(1.0 / s[-1])


# --------------------------------------------------------------------------------------------
# assembly


#: what G estimates, for the report (docs/science.md, "The top-k audit")
WHAT_G = (
    "G = the affine fit V_kᵀx̂ ≈ G U_kᵀy + c on A's k leading singular directions; it equals "
    "V_kᵀ C U_k of the full fit when the probes' covariance does not couple span(U_k) with "
    "its complement (white probes, or stationary probes with a Fourier-diagonal A) or C is a "
    "spectral filter of A, and is the best affine map from the projected inputs otherwise"
)


def topk_metrics(
    *, top, why, fit, test, errors, errors_full, refs, cmp, svals, jacobians, notes, timings
) -> dict:
    """The metrics of a top-k audit, under the dense audit's keys where they mean the same,
    plus ``audit`` (which path ran and why) and ``errors_full`` (over all of x)."""
    s = top.s
    return {
        "audit": {
            "path": "top-k",
            "k": top.k,
            "why": why,
            "basis": top.method,
            "what": WHAT_G,
            "errors": "test errors under 'errors' are on the k leading directions (V_kᵀx); "
            "'errors_full' are over all of x",
        },
        "surrogate": {
            **fit.to_dict(),
            "phi_stderr_max": float(np.max(cmp["phi_stderr"])),
            "phi_stderr_median": float(np.median(cmp["phi_stderr"])),
            "r2_test": float(test.r2),
            "test_rel_error": errors.get("surrogate"),
            "offdiag_share": cmp["offdiag"]["C"],
        },
        "comparison": {"phi_summary": phi_summary(cmp["phi"]["C"])},
        "errors": errors,
        "errors_full": errors_full,
        "references": refs.info,
        "filters": {
            "offdiag_share": cmp["offdiag"],
            "phi_rms_distance_to_C": cmp["distance"],
            "closest_classical_filter": cmp["closest"],
        },
        "jacobians": jacobians,
        "spectra": {
            "method": top.method,
            "k": top.k,
            "sigma_max_A": float(s[0]),
            "sigma_k_A": float(s[-1]),
            "sigma_min_A": None if top.sigma_all is None else float(top.sigma_all[-1]),
            "sigma_max_C": float(svals["C"][0]),
            "sigma_max_A_inv_on_k": float(1.0 / s[-1]) if s[-1] > 0 else None,
        },
        "notes": notes,
        "timings": {key: round(v, 4) for key, v in timings.items()},
    }


def topk_arrays(*, top, fit, test, cmp, svals, jacobians, curves) -> dict:
    """Spectra (k leading), filter factors, G and the Picard coefficients, for the plots and
    ``arrays.npz``: ``sigma_A``, ``phi_C`` and ``phi_mean_jacobian`` hold the k leading
    directions in descending σ."""
    arrays = {
        "C_topk": fit.C,
        "b_topk": fit.b,
        "sigma_A": top.s,
        **{f"sv_{name}": v for name, v in svals.items()},
        **{f"phi_{name}": v for name, v in cmp["phi"].items()},
        "phi_C_stderr": cmp["phi_stderr"],
        "picard_coef": np.mean(np.abs(test.Z), axis=0),
        **jacobians,
    }
    for name, cur in curves.items():
        arrays[f"lambda_grid_{name}"] = np.asarray(cur.grid)
        arrays[f"lambda_curve_{name}"] = np.asarray(cur.curve)
    return arrays


def topk_image_arrays(op, top: TopBasis, Y_test, X_test, test: TopTest, refs, cmp) -> tuple:
    """(arrays, note): test images (truth, measurement, network, LMMSE and the best Tikhonov
    through the full basis) and, for a Fourier-diagonal A, the filter-factor maps of the k
    leading directions; ({}, None) for 1-D signals."""
    shape = getattr(op, "image_shape", None)
    if shape is None or len(shape) != 2:
        return {}, None
    H, W = shape
    k_img = min(images.N_IMAGES, Y_test.shape[0])
    out = {}
    if X_test is not None:
        out["truth"] = X_test[:k_img]
    if Y_test.shape[1] == H * W:
        out["measurement"] = Y_test[:k_img]
    out["network"] = test.X_net[:k_img]
    if top.full is not None:
        B = top.full.left(Y_test[:k_img])
        s = top.sigma_all
        for name in ("lmmse", refs.best_tikhonov):
            if name in refs.filters:
                d = estimators.spectral_gains(refs.filters[name], s)
                out[name] = top.full.synth_right(B * d + refs.offsets.get(name, 0.0))
    arrays = {
        f"{images.IMAGE_PREFIX}{name}": np.reshape(v, (k_img, H, W)) for name, v in out.items()
    }
    note = None
    if getattr(op, "structure", None) in images.FOURIER_STRUCTURES:
        names = ("C", "lmmse", refs.best_tikhonov)
        maps, note = images.filter_map_arrays(top.Vt, shape, cmp["phi"], names)
        arrays.update(maps)
    return arrays, note


def topk_bytes(n: int, k: int, n_probes: int, n_test: int) -> int:
    """Memory of the top-k audit beyond its inputs: U_k and V_k, the projected probes and
    test rows (N x k each, twice), one chunk of inputs and outputs (64 MiB), the full-basis
    coefficients of the parameter rows and of a chunk of test rows (256 MiB each, as
    bounded by :func:`param_rows`), the network's outputs on the test set and the k x k
    moments."""
    vectors = 2 * n * k * 8
    projected = 4 * (n_probes + n_test) * k * 8
    coefficients = 2 * 2 * param_rows(n) * n * 8
    return vectors + projected + (1 << 26) + coefficients + n_test * n * 8 + 4 * k * k * 8


def check_topk_memory(n: int, k: int, n_probes: int, n_test: int) -> None:
    """Refuse a top-k audit that will not fit in the memory available now."""
    check_memory(
        topk_bytes(n, k, n_probes, n_test),
        f"auditing at n = {n} on k = {k} directions (top-k)",
        suggestion="free memory, or give a smaller --audit-rank or fewer test rows",
        fraction=1.0,
    )


def check_rank(
    k,
    n_fit: int | None,
    n: int | None,
    *,
    what: str = "audit rank k",
    integral_float=False,
    size_name: str = "n",
) -> int:
    """``k`` checked: a positive integer, at most n (A's number of singular values, called
    ``size_name`` in the message: "min(m, n)" for a rectangular A) and at most the fitted rows
    minus one (each bound only when it is known: the command line checks k before building
    anything)."""
    k = check_int(k, what, lo=1, integral_float=integral_float)
    if n is not None and k > n:
        raise FastinvError(
            f"audit rank k must be at most {size_name} = {n}, got {k}; choose a smaller k"
        )
    if n_fit is not None and k >= n_fit:
        raise FastinvError(
            f"audit rank k = {k} needs more than k fitted probe rows, got {n_fit}; give more "
            f"probes (at least {ROWS_PER_DIRECTION * k} for a stable fit) or a smaller k"
        )
    return k
