"""One audit: every comparison of one model with A⁻¹ and the classical inverses.

``audit(model, op, probes=..., test=...)`` fits the model's affine surrogate C, builds the
reference inverses in A's SVD basis, measures the errors of all of them on the same test set,
compares spectra, subspaces and filter factors, looks at the network's Jacobians, and writes a
computed (never canned) verdict. The numbers it rests on are in ../shared/SCIENCE.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fastinv._validation import check_2d, check_finite
from fastinv.errors import FastinvError
from fastinv.linalg import estimators, spectral

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


#: rows used to choose λ, k and t (GCV, L-curve, oracle); enough for a stable choice
PARAM_ROWS = 4096

#: n above which spectra of n x n matrices are taken by randomized top-k SVD
FULL_SVD_MAX = 1024

#: prefix of the arrays holding the on-data principal angles (largest angle per k) between
#: C Σ_y^½ and B Σ_y^½; the plain angles are "angles_<ref>_<side>"
ON_DATA_PREFIX = "angles_on_data_"


@dataclass
class AuditResult:
    """What an audit found.

    Attributes
    ----------
    metrics : dict
        JSON-ready numbers (errors, surrogate quality, distances, filter summaries, timings).
    verdict : list of str
        Computed sentences, each backed by a number in ``metrics``.
    arrays : dict of str -> ndarray
        Spectra, filter factors, angles and matrices for plots and ``arrays.npz``.
    """

    metrics: dict
    verdict: list[str]
    arrays: dict = field(repr=False)

    def to_dict(self) -> dict:
        return {**self.metrics, "verdict": self.verdict}


# --------------------------------------------------------------------------------------------
# helpers


def _as_callable(model, *, batch_size: int = 4096):
    """Return (f: ndarray (m, n) -> ndarray (m, n) float64, is_torch)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(model, torch.nn.Module):
        from fastinv.nets.training import predict

        return (lambda Y: predict(model, Y, batch_size=batch_size)), True
    if callable(model):
        return (lambda Y: np.asarray(model(Y), dtype=np.float64)), False
    raise FastinvError(
        f"the model must be a torch.nn.Module or a callable mapping (m, n) arrays, "
        f"got {type(model).__name__}"
    )


def _rel_err(Xhat: np.ndarray, X: np.ndarray) -> float:
    return float(np.linalg.norm(Xhat - X) / np.linalg.norm(X))


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


def _phi_rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


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


# --------------------------------------------------------------------------------------------
# the audit


def audit(
    model,
    op,
    *,
    probes: np.ndarray,
    test: tuple[np.ndarray, np.ndarray | None],
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    prior=None,
    noise: dict | None = None,
    train_X: np.ndarray | None = None,
    n_jacobian: int = 16,
    ks=None,
    full_svd_max: int = FULL_SVD_MAX,
    seed: int = 0,
    log=None,
) -> AuditResult:
    """Audit ``model`` against A⁻¹ and the classical regularized inverses.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps an (m, n) batch of measurements to (m, n) reconstructions.
    op : Operator
        The forward operator (its cached SVD is used throughout).
    probes : ndarray of shape (N, n)
        Inputs at which the affine surrogate C is fitted (20 % held out for R²).
    test : (Y_test, X_test or None)
        The common test set; without targets the report says which numbers it cannot give.
    validation : (Y_val, X_val), optional
        Data on which the oracle λ, k and t are chosen; defaults to the test set (then the
        oracle is optimistic by construction, and the metrics say so).
    prior : Prior, optional
        Supplies the analytic mean and covariance for LMMSE; else they are estimated from
        ``train_X`` (or the validation targets) and the metrics say so.
    noise : dict, optional
        ``{"level": float, "type": "relative"|"absolute"}``, for LMMSE's noise covariance.
    n_jacobian : int
        Number of probes at which the network's Jacobian is taken (torch models only).
    ks : sequence of int, optional
        Subspace dimensions for principal angles.
    """
    from fastinv.linalg.randomized import svd_topk
    from fastinv.linalg.surrogate import fit_surrogate

    say = log or (lambda msg: None)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    A = op.A
    n = op.n
    U, s, Vt = op.svd
    probes = check_2d(probes, "probes", shape=(None, n))
    check_finite(probes, "probes")
    Y_test, X_test = test
    Y_test = check_2d(Y_test, "test inputs", shape=(None, n))
    if X_test is not None:
        X_test = check_2d(X_test, "test targets", shape=(Y_test.shape[0], n))
    f, is_torch = _as_callable(model)
    notes: list[str] = []

    # ---- surrogate -----------------------------------------------------------------------
    say("fitting the affine surrogate C")
    holdout = 0.2 if probes.shape[0] >= 50 else 0.0
    if not holdout:
        notes.append(f"only {probes.shape[0]} probes: R² is in-sample (no probes held out)")
    fit = fit_surrogate(model, probes, holdout=holdout, seed=seed)
    C, b = fit.C, fit.b
    timings["surrogate"] = time.perf_counter() - t0

    # ---- network and surrogate on the test set --------------------------------------------
    t1 = time.perf_counter()
    Xnet = f(Y_test)
    if Xnet.shape != Y_test.shape:
        raise FastinvError(
            f"model output has shape {Xnet.shape} for input {Y_test.shape}; it must map (m, n) "
            "to (m, n)"
        )
    check_finite(Xnet, "the model's outputs on the test set")
    Xc = Y_test @ C.T + b
    r2_test = 1.0 - np.sum((Xc - Xnet) ** 2) / np.sum((Xnet - Xnet.mean(0)) ** 2)

    # ---- reference inverses ------------------------------------------------------------------
    say("building the reference inverses")
    svd = (U, s, Vt)
    refs: dict[str, np.ndarray] = {}
    ref_b: dict[str, np.ndarray] = {}
    ref_info: dict[str, dict] = {}
    refs["A_inv"] = estimators.pinv(A, svd=svd)
    ref_info["A_inv"] = {"kind": "pseudo-inverse" if op.singular else "inverse"}

    Y_val, X_val = validation if validation is not None else (Y_test, X_test)
    # parameter choices need far fewer rows than the fit: cap them (each costs N·n² per pass)
    Y_par = probes[:PARAM_ROWS]
    if X_val is not None:
        Y_val, X_val = Y_val[:PARAM_ROWS], X_val[:PARAM_ROWS]
    if validation is None and X_test is not None:
        notes.append("oracle parameters were chosen on the test set (optimistic by design)")
    gcv = estimators.gcv_lambda(svd, Y_par)
    lc = estimators.lcurve_lambda(svd, Y_par)
    lam = {"gcv": float(gcv.value), "lcurve": float(lc.value)}
    curves = {"gcv": gcv, "lcurve": lc}
    if X_val is not None:
        orc = estimators.oracle_lambda(svd, Y_val, X_val)
        lam["oracle"] = float(orc.value)
        curves["oracle"] = orc
    # spectral filters x̂ = V diag(φ/σ) Uᵀ y are kept as their filter factors φ: no n x n
    # matrix is formed for them (errors are computed in A's SVD basis)
    filt: dict[str, np.ndarray] = {}
    for how, lv in lam.items():
        filt[f"tikhonov_{how}"] = estimators.filter_factors_tikhonov(s, lv)
        ref_info[f"tikhonov_{how}"] = {"lambda": lv, "chosen_by": how}
    ks_tsvd = {}
    try:  # GCV needs k <= m - 1: nothing to choose when m = 1
        ks_tsvd["gcv"] = int(estimators.gcv_k(svd, Y_par).value)
    except FastinvError as e:
        notes.append(f"TSVD with k by GCV was not computed: {e}")
    if X_val is not None:
        ks_tsvd["oracle"] = int(estimators.oracle_k(svd, Y_val, X_val).value)
    for how, kv in ks_tsvd.items():
        filt[f"tsvd_{how}"] = estimators.filter_factors_tsvd(s, kv)
        ref_info[f"tsvd_{how}"] = {"k": kv, "chosen_by": how}
    if X_val is not None:
        eta = 1.0 / s[0] ** 2
        grid = np.unique(np.round(np.logspace(0, 7, 57)).astype(np.int64))
        t_best, _, _ = _filter_oracle(
            Y_val @ U,
            X_val @ Vt.T,
            s,
            lambda ss, t: estimators.filter_factors_landweber(ss, eta, t),
            grid,
        )
        filt["landweber_oracle"] = estimators.filter_factors_landweber(s, eta, int(t_best))
        ref_info["landweber_oracle"] = {"eta": eta, "t": int(t_best), "chosen_by": "oracle"}
    best_tik = "tikhonov_oracle" if "tikhonov_oracle" in filt else "tikhonov_gcv"
    refs[best_tik] = _spectral_apply(U, s, Vt, filt[best_tik])

    # LMMSE: analytic prior moments where the prior defines them, else estimated
    mu = Sx = None
    if prior is not None and prior.cov() is not None:
        mu, Sx = prior.mean(), prior.cov()
        cov_source = "analytic (prior)"
    else:
        Xs = train_X if train_X is not None else X_val
        if Xs is not None and Xs.shape[0] > 1:
            mu, Sx = Xs.mean(0), np.cov(Xs, rowvar=False).reshape(n, n)
            cov_source = f"estimated from {Xs.shape[0]} samples"
    noise_cov = noise_covariance(noise, A, mu, Sx) if mu is not None else None
    if mu is not None and noise_cov is not None:
        try:
            Cl, bl = estimators.lmmse(A, mu, Sx, noise_cov)
        except FastinvError as e:
            notes.append(f"LMMSE was not computed: {e}")
        else:
            refs["lmmse"], ref_b["lmmse"] = Cl, bl
            ref_info["lmmse"] = {"prior_cov": cov_source, "noise_var": float(noise_cov)}
    else:
        notes.append(
            "LMMSE was not computed: it needs the prior's mean and covariance (a prior or "
            "training targets) and the noise level"
        )
    timings["references"] = time.perf_counter() - t1

    # distances where the data live: ‖(C − B) Σ_y^½‖_F / ‖B Σ_y^½‖_F, the RMS difference of
    # the two estimators' outputs on the probe distribution, relative to B's. The products
    # M Σ_y^½ are formed once (n x n each) and reused for the on-data principal angles.
    R_y = cov_sqrt(probes)
    cmp_refs = {k: refs[k] for k in ("A_inv", "lmmse", best_tik) if k in refs}
    CR = C @ R_y
    BR = {name: B @ R_y for name, B in cmp_refs.items()}
    on_data = {
        name: float(np.linalg.norm(CR - BR[name]) / max(np.linalg.norm(BR[name]), 1e-300))
        for name in ("A_inv", "lmmse")
        if name in BR
    }

    # ---- errors on the same test set --------------------------------------------------------
    errors: dict[str, float | None] = {}
    if X_test is not None:
        errors["network"] = _rel_err(Xnet, X_test)
        errors["surrogate"] = _rel_err(Xc, X_test)
        for name, M in refs.items():
            Xr = Y_test @ M.T
            if name in ref_b:
                Xr = Xr + ref_b[name]
            errors[name] = _rel_err(Xr, X_test)
        Zt, XVt = Y_test @ U, X_test @ Vt.T
        inv_s = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)
        norm_x = np.linalg.norm(X_test)
        for name, ph in filt.items():
            if name not in errors:
                errors[name] = float(np.linalg.norm(Zt * (ph * inv_s) - XVt) / norm_x)
    else:
        notes.append(
            "no test targets: test errors of the network, C and the references are not given"
        )

    # ---- spectral comparisons ----------------------------------------------------------------
    say("comparing spectra and subspaces")
    t2 = time.perf_counter()
    use_full = n <= full_svd_max
    topk = n if use_full else min(n, 256)
    if ks is None:
        # k = n is left out: two n-dimensional subspaces of R^n coincide, angle 0 by definition
        ks = sorted(
            {k for k in (1, 2, 5, 10, 20, 50, 100, 200) if k <= min(topk, n - 1)}
            | ({topk} if topk < n else set())
        ) or [1]  # n = 1: the one (trivial) subspace

    def svd_fn(M, k):
        return svd_topk(M, k, full_threshold=full_svd_max, seed=seed)

    cmpC = spectral.compare(C, svd, references=cmp_refs, ks=ks, topk=topk, svd_fn=svd_fn)
    # the same references, compared where the probes vary: the left singular vectors of
    # M Σ_y^½ are the principal components of the outputs M y over the probe distribution
    # (Cov(M y) = M Σ_y Mᵀ), so these angles say whether C and B put their outputs on typical
    # data in the same dominant directions; the plain angles above also weigh directions the
    # probes never explore, where C is not determined (see :func:`output_angles`)
    angles_data = output_angles(CR, BR, cmpC.ks, svd_fn=svd_fn, k_svd=topk)
    del CR, BR

    phi = {"C": cmpC.phi, **filt, **cmpC.phi_refs}
    offdiag = {"C": float(cmpC.offdiag_share), **{k: 0.0 for k in filt}, **cmpC.ref_offdiag}
    closest = min(
        (k for k in phi if k != "C" and k != "A_inv"),
        key=lambda k: _phi_rms(phi["C"], phi[k]),
    )
    phi_dist = {k: _phi_rms(phi["C"], phi[k]) for k in phi if k != "C"}
    svals = {"C": cmpC.singular_values, "A_inv": cmpC.sv_A_inv, **cmpC.ref_singular_values}
    timings["spectral"] = time.perf_counter() - t2

    # ---- the network's Jacobians ----------------------------------------------------------
    jac_metrics: dict = {}
    jac_arrays: dict = {}
    if is_torch and n_jacobian > 0:
        say(f"Jacobians at {n_jacobian} probes")
        t3 = time.perf_counter()
        jac_metrics, jac_arrays = _jacobian_audit(
            model,
            probes[: min(n_jacobian, probes.shape[0])],
            C,
            s,
            svd_fn,
            topk,
            U,
            Vt,
            R_y=R_y,
        )
        timings["jacobians"] = time.perf_counter() - t3
    else:
        notes.append("Jacobians need a torch model; they were not computed")

    # ---- assemble -------------------------------------------------------------------------
    dist_inv = cmpC.distances.get("A_inv", {})
    dist_lmmse = cmpC.distances.get("lmmse")
    metrics = {
        "surrogate": {
            **fit.to_dict(),
            "r2_test": float(r2_test),
            "test_rel_error": errors.get("surrogate"),
            "rel_dist_to_inverse": dist_inv.get("rel_2"),
            "rel_dist_to_inverse_fro": dist_inv.get("rel_fro"),
            "rel_dist_to_lmmse": None if dist_lmmse is None else dist_lmmse.get("rel_2"),
            "rel_dist_to_lmmse_fro": None if dist_lmmse is None else dist_lmmse.get("rel_fro"),
            "rel_dist_to_inverse_on_data": on_data.get("A_inv"),
            "rel_dist_to_lmmse_on_data": on_data.get("lmmse"),
            "offdiag_share": offdiag["C"],
        },
        "comparison": {
            **cmpC.to_dict(),
            "principal_angles_on_data": spectral._jsonable(
                {
                    "ks": list(cmpC.ks),
                    "what": "left singular subspaces of M Σ_y^½ (principal components of "
                    "the outputs M y over the probes)",
                    **{
                        key: {q: v for q, v in a.items() if q != "angles_deg"}
                        for key, a in angles_data.items()
                    },
                }
            ),
        },
        "errors": errors,
        "references": ref_info,
        "filters": {
            "offdiag_share": offdiag,
            "phi_rms_distance_to_C": phi_dist,
            "closest_classical_filter": closest,
        },
        "jacobians": jac_metrics,
        "spectra": {
            "method": "full SVD" if use_full else f"randomized top-{topk} SVD",
            "sigma_max_A": float(s[0]),
            "sigma_min_A": float(s[-1]),
            "sigma_max_C": float(svals["C"][0]),
            "sigma_max_A_inv": float(svals["A_inv"][0]),
        },
        "notes": notes,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
    arrays = {
        "C": C,
        "b": b,
        "sigma_A": s,
        **{f"sv_{k}": v for k, v in svals.items()},
        **{f"phi_{k}": v for k, v in phi.items()},
        "angles_ks": np.asarray(ks),
        **{f"angles_{k}": np.asarray(v) for k, v in cmpC.angles_arrays().items()},
        **{
            f"{ON_DATA_PREFIX}{key}": spectral.per_k(a, "max_deg", cmpC.ks)
            for key, a in angles_data.items()
        },
        "picard_coef": np.mean(np.abs(Y_test @ U), axis=0),
        **jac_arrays,
    }
    for name, cur in curves.items():
        arrays[f"lambda_grid_{name}"] = np.asarray(cur.grid)
        arrays[f"lambda_curve_{name}"] = np.asarray(cur.curve)
    verdict = make_verdict(metrics, s)
    return AuditResult(metrics=metrics, verdict=verdict, arrays=arrays)


def cov_sqrt(Y: np.ndarray) -> np.ndarray:
    """R = Σ^½ = Q diag(√w) of the sample covariance Σ = Q diag(w) Qᵀ of the rows of Y.

    R Rᵀ = Σ, so ‖M R‖_F² = E‖M (y − ȳ)‖² over the rows and the left singular vectors of M R
    are the principal components of M y (negative rounding-level eigenvalues are set to 0).
    """
    Y = np.asarray(Y, dtype=np.float64)
    n = Y.shape[1]
    w, Q = np.linalg.eigh(np.cov(Y, rowvar=False).reshape(n, n))
    return Q * np.sqrt(np.clip(w, 0, None))


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

    def top(X):
        if svd_fn is None:
            U, s, Vt = spectral._full_svd(np.asarray(X, dtype=np.float64))
            return U[:, :kk_svd], s[:kk_svd], Vt[:kk_svd]
        return spectral._call_svd_fn(svd_fn, X, kk_svd)[:3]

    svd_c = top(CR)
    rank_c = spectral._numrank(svd_c[1], CR.shape)
    out = {}
    for name, X in BR.items():
        svd_b = top(X)
        avail = min(rank_c, spectral._numrank(svd_b[1], X.shape))
        kk = [q for q in ks if q <= avail]
        if kk:
            out[f"{name}_left"] = spectral.principal_angles(
                None, None, kk, side="left", svd1=svd_c, svd2=svd_b
            )
        else:
            out[f"{name}_left"] = {"side": "left", "k": [], "max_deg": [], "mean_deg": []}
    return out


def _weighted_rel(M, C, R):
    """‖(M − C) R‖_F / ‖C R‖_F with R = Σ_y^½: the difference where the data vary."""
    return float(np.linalg.norm((M - C) @ R) / max(np.linalg.norm(C @ R), 1e-300))


def _jacobian_audit(model, Yj, C, s, svd_fn, topk, U, Vt, *, R_y):
    from fastinv.linalg.surrogate import jacobians

    m = Yj.shape[0]
    J = jacobians(model, Yj)  # (m, n, n) float64
    Jbar = J.mean(0)
    spread = [
        float(np.linalg.norm(J[i] - Jbar) / max(np.linalg.norm(Jbar), 1e-300)) for i in range(m)
    ]
    sv = np.stack([svd_fn(J[i], topk)[1] for i in range(m)])
    smax = sv[:, 0]
    out = {
        "n_probes": m,
        "mean_jacobian_vs_C_rel_fro": float(np.linalg.norm(Jbar - C) / np.linalg.norm(C)),
        # C is pinned down only where the probes vary: weigh by Cov(y)^(1/2)
        "mean_jacobian_vs_C_rel_fro_data_weighted": _weighted_rel(Jbar, C, R_y),
        "spread_rel_fro_mean": float(np.mean(spread)),
        "spread_rel_fro_max": float(np.max(spread)),
        "sigma_max_J_median": float(np.median(smax)),
        "sigma_max_J_max": float(np.max(smax)),
        "inverse_sigma_min_A": float(1.0 / s[-1]) if s[-1] > 0 else None,
    }
    # a bias-free network with positively homogeneous activations satisfies DL(y) = J(y) y
    has_bias = any(
        p.requires_grad and name.endswith("bias") for name, p in model.named_parameters()
    )
    if not has_bias:
        from fastinv.nets.training import predict

        out_y = predict(model, Yj)
        Jy = np.einsum("mij,mj->mi", J, Yj)
        out["homogeneity_rel_error"] = float(
            np.linalg.norm(out_y - Jy) / max(np.linalg.norm(out_y), 1e-300)
        )
    ph, od = spectral.filter_factors(Jbar, U, s, Vt)
    arrays = {
        "jac_sv_min": sv.min(0),
        "jac_sv_median": np.median(sv, 0),
        "jac_sv_max": sv.max(0),
        "phi_mean_jacobian": ph,
    }
    out["mean_jacobian_offdiag_share"] = float(od)
    return out, arrays


# --------------------------------------------------------------------------------------------
# the verdict: sentences computed from the metrics


def _fmt(x, digits=3):
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}"


def make_verdict(m: dict, s: np.ndarray) -> list[str]:
    """Plain-words findings, each with the number it rests on."""
    out: list[str] = []
    sur = m["surrogate"]
    err = m["errors"]
    r2 = sur.get("r2_heldout", sur.get("r2"))
    if r2 is not None:
        if r2 > 0.99:
            how = "very nearly affine"
        elif r2 > 0.9:
            how = "mostly affine"
        elif r2 > 0.5:
            how = "substantially nonlinear"
        else:
            how = "far from affine"
        out.append(
            f"Linearity: on this input distribution the network is {how}: its best affine fit "
            f"C y + b explains R² = {_fmt(r2, 4)} of its output variance on held-out probes."
        )
    if err.get("network") is not None:
        e_net, e_c = err["network"], err["surrogate"]
        lin = {k: v for k, v in err.items() if k not in ("network", "surrogate", "A_inv")}
        best_lin = min(lin, key=lin.get) if lin else None
        msg = (
            f"Accuracy: relative test error of the network {_fmt(e_net)}, of its affine "
            f"surrogate {_fmt(e_c)}"
        )
        if best_lin:
            msg += (
                f", of the best classical linear inverse ({LABELS.get(best_lin, best_lin)}) "
                f"{_fmt(lin[best_lin])}"
            )
        msg += f", of A⁻¹ itself {_fmt(err.get('A_inv'))}."
        if e_c <= 1.05 * e_net:
            msg += " The affine part accounts for essentially all of the network's accuracy."
        elif e_net < 0.95 * e_c:
            gain = 1 - e_net / e_c
            msg += (
                f" The network is {gain:.0%} more accurate than its affine part: its "
                "nonlinearity contributes."
            )
        if best_lin and e_net < 0.95 * lin[best_lin]:
            msg += " It beats every linear inverse here, which only a nonlinear estimator can."
        out.append(msg)
    phi = m["comparison"].get("phi_summary", {})
    k_inv, k_sup = phi.get("n_inverted"), phi.get("first_suppressed")
    if k_inv is not None:
        msg = (
            f"Directions: C inverts A's leading {k_inv} singular directions (filter factor "
            f"0.9 ≤ φ ≤ 1.1, as A⁻¹ does)"
        )
        if k_sup is not None:
            frac = phi.get("suppressed_fraction_after")
            msg += (
                f" and suppresses direction {k_sup + 1} (|φ| ≤ 0.1, σ = "
                f"{_fmt(float(s[k_sup]))} against σ_1 = {_fmt(float(s[0]))})"
                + (f" and {frac:.0%} of those after it" if frac is not None else "")
            )
        if phi.get("n_amplified"):
            msg += f"; {phi['n_amplified']} directions are amplified beyond A⁻¹ (φ > 1.1)"
        msg += f"; off-diagonal share of Vᵀ C U S is {_fmt(sur['offdiag_share'])} " + (
            "(it acts as a spectral filter of A)."
            if sur["offdiag_share"] < 0.1
            else "(it mixes A's singular directions: it is not a spectral filter of A)."
        )
        out.append(msg)
    filt = m["filters"]
    c = filt["closest_classical_filter"]
    info = m["references"].get(c, {})
    params = ", ".join(f"{k} = {_fmt(v)}" for k, v in info.items() if isinstance(v, (int, float)))
    out.append(
        f"Closest classical filter: {LABELS.get(c, c)} ({params}), RMS filter-factor difference "
        f"{_fmt(filt['phi_rms_distance_to_C'][c])}."
    )
    d_inv, d_l = sur.get("rel_dist_to_inverse"), sur.get("rel_dist_to_lmmse")
    if d_inv is not None:
        msg = f"Distances: ‖C − A⁻¹‖₂/‖A⁻¹‖₂ = {_fmt(d_inv)}"
        if d_l is not None:
            msg += f", ‖C − C_LMMSE‖₂/‖C_LMMSE‖₂ = {_fmt(d_l)}"
            if abs(d_l - d_inv) < 0.1 * max(d_l, d_inv):
                msg += ": C is about as far from one as from the other."
            elif d_l < d_inv:
                msg += (
                    ": C is nearer the optimal linear estimator than A⁻¹ — it regularizes, it "
                    "does not reproduce A⁻¹'s largest singular values."
                )
            else:
                msg += ": C is nearer A⁻¹ than the optimal linear estimator."
        else:
            msg += "."
        di, dl = sur.get("rel_dist_to_inverse_on_data"), sur.get("rel_dist_to_lmmse_on_data")
        if di is not None:
            msg += (
                f" Where the inputs actually vary (weighted by Σ_y^½, i.e. the RMS difference "
                f"of the outputs), C differs from A⁻¹ by {_fmt(di)}"
                + (f" and from LMMSE by {_fmt(dl)}" if dl is not None else "")
                + " relative to the reference's own output."
            )
        out.append(msg)
    jac = m.get("jacobians") or {}
    if jac.get("sigma_max_J_max") is not None and jac.get("inverse_sigma_min_A") is not None:
        ratio = jac["sigma_max_J_max"] / jac["inverse_sigma_min_A"]
        out.append(
            f"Noise amplification: over {jac['n_probes']} probes the network's Jacobian has "
            f"σ_max ≤ {_fmt(jac['sigma_max_J_max'])}, against 1/σ_min(A) = "
            f"{_fmt(jac['inverse_sigma_min_A'])} for A⁻¹ (ratio {_fmt(ratio)})"
            + (
                " — it inherits A⁻¹'s noise amplification."
                if ratio > 0.5
                else " — far below A⁻¹'s amplification."
            )
        )
        out.append(
            f"Jacobian spread: ‖J(y) − J̄‖_F/‖J̄‖_F is {_fmt(jac['spread_rel_fro_mean'])} on "
            "average over the probes. The mean Jacobian J̄ differs from C by "
            f"{_fmt(jac['mean_jacobian_vs_C_rel_fro_data_weighted'])} on the directions the "
            f"inputs explore (‖(J̄ − C)Σ_y^½‖_F/‖CΣ_y^½‖_F; "
            f"{_fmt(jac['mean_jacobian_vs_C_rel_fro'])} unweighted, where C's low-variance "
            "directions are poorly determined); Stein's lemma makes them equal for Gaussian "
            "inputs."
        )
    caveat = (
        "Caveat: a spectral match is a consequence of accuracy, not its cause. With noise-free "
        "data, ‖C − A⁻¹‖₂ ≤ ‖X̂ − X‖₂/σ_min(Y), so an accurate network forces C toward A⁻¹; but "
        "x̂ = A⁻¹y + g(y) with g even has C = A⁻¹ and any error. Nothing here shows the network "
        "works because C lies near A⁻¹."
    )
    if d_inv is not None and d_inv > 0.5:
        caveat += (
            " Here C is far from A⁻¹, and whatever accuracy the network has comes with "
            "suppressing the directions where A⁻¹ amplifies noise."
        )
    out.append(caveat)
    return out
