"""The sections of an audit, in the order :func:`fastinv.auditing.core.audit` runs them.

Inputs, the affine surrogate C, the network on the test set, the reference inverses
(:mod:`fastinv.auditing.references`), the test errors, the spectral comparison with the
on-data angles (:mod:`fastinv.auditing.angles`), the network's Jacobians, and the metrics and
arrays the report is written from. The verdict is :mod:`fastinv.auditing.verdict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from fastinv import io
from fastinv._validation import check_2d, check_finite, check_model_output
from fastinv.auditing import images
from fastinv.auditing.angles import ON_DATA_PREFIX, output_angles, weighted_rel_error
from fastinv.auditing.references import References, build_references
from fastinv.errors import FastinvError
from fastinv.io import check_memory, to_jsonable
from fastinv.linalg import spectral
from fastinv.linalg.stats import relative_error

__all__ = [
    "NetworkOnTest",
    "SpectralFindings",
    "SpectralPlan",
    "as_callable",
    "as_operator",
    "audit_arrays",
    "audit_metrics",
    "check_audit_memory",
    "check_inputs",
    "dense_audit_bytes",
    "dense_audit_fits",
    "errors_on_test",
    "fit_affine_surrogate",
    "image_findings",
    "is_zero_operator",
    "jacobian_audit",
    "network_on_test",
    "reference_inverses",
    "spectral_comparison",
    "spectral_plan",
]


# --------------------------------------------------------------------------------------------
# inputs, surrogate, the network on the test set


_OPERATOR_NAMES = ("A", "n", "svd", "singular")


def as_operator(op):
    """``op`` as an Operator: an Operator as it is, an (n, n) array wrapped as one."""
    # look the names up on the type: hasattr on the instance would compute the cached SVD
    # (and the dense A) of a matrix-free operator
    if all(
        hasattr(type(op), name) or name in getattr(op, "__dict__", {}) for name in _OPERATOR_NAMES
    ):
        return op
    if isinstance(op, (np.ndarray, list, tuple)):
        from fastinv.problem.operators import Operator

        return Operator.from_array(op)
    raise FastinvError(
        f"op must be an Operator (fastinv.make_operator / load_operator) or an (n, n) array, "
        f"got {type(op).__name__}"
    )


def check_inputs(op, probes, test) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(probes, Y_test, X_test) checked against the operator's shape (m, n): measurements
    have m entries, signals n (X_test may be None); at least 2 probes (an affine fit and a
    covariance need two), a (Y_test, X_test or None) pair of finite arrays, and a non-zero A."""
    m, n = op.shape
    probes = check_2d(probes, "probes", shape=(None, m))
    if probes.shape[0] < 2:
        raise FastinvError(
            f"probes must have at least 2 rows (an affine fit needs two points), got "
            f"{probes.shape[0]}; give more probes (at least n = {n} for a full-rank C)"
        )
    check_finite(probes, "probes")
    if not isinstance(test, (tuple, list)) or len(test) != 2:
        raise FastinvError(
            f"test must be a pair (Y_test, X_test or None), got {type(test).__name__}; pass "
            "test=(Y_test, None) when there are no targets"
        )
    Y_test, X_test = test
    Y_test = check_2d(Y_test, "test inputs", shape=(None, m))
    if Y_test.shape[0] < 1:
        raise FastinvError("test inputs must have at least one row, got 0")
    check_finite(Y_test, "test inputs")
    if X_test is not None:
        X_test = check_2d(X_test, "test targets", shape=(Y_test.shape[0], n))
        check_finite(X_test, "test targets")
    if is_zero_operator(op):
        raise FastinvError("the operator A is all zeros: there is nothing to invert; check A")
    return probes, Y_test, X_test


def is_zero_operator(op) -> bool:
    """A = 0, checked without an SVD or a dense copy of a matrix-free A (on one random row
    when the map has no exact spectrum)."""
    lm = getattr(op, "linear_map", None)
    if op.structure == "dense" or lm is None:
        return not np.any(op.A)
    if lm.exact_svd:
        return not np.max(lm.sigma_items()) > 0
    x = np.random.default_rng(0).standard_normal((1, op.n))
    return not np.any(op.apply(x))


def dense_audit_bytes(n: int, rows: int) -> int:
    """Memory of the dense audit: about 32 n x n float64 matrices alive at once, and a copy
    of the inputs."""
    return 8 * n * n * 32 + 8 * n * 2 * rows


def dense_audit_fits(n: int, rows: int) -> bool:
    """Whether the dense audit (:func:`dense_audit_bytes`) fits in the memory available now
    (True when it cannot be told)."""
    avail = io.available_memory()
    return avail is None or dense_audit_bytes(n, rows) <= avail


def check_audit_memory(n: int, rows: int) -> None:
    """Refuse an audit whose n x n matrices (about 32 alive at once) and a copy of the
    inputs will not fit in the memory available now."""
    check_memory(
        dense_audit_bytes(n, rows),
        f"auditing at n = {n}",
        suggestion="free memory or audit at a smaller n",
        fraction=1.0,
    )


def as_callable(model, *, batch_size: int | None = None):
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


def surrogate_holdout(n_probes: int) -> float:
    """The fraction of the probes held out of C's fit for R²: 20 % from 50 probes on."""
    return 0.2 if n_probes >= 50 else 0.0


def fit_affine_surrogate(
    model, probes: np.ndarray, *, seed: int, notes: list, n: int, moments=None
):
    """The affine fit C y + b (C of shape (n, m)) at the probes, 20 % held out for R² (when
    there are >= 50). ``moments``: the fitted probes' moments, accumulated elsewhere (on the
    ranks of a data-parallel run; see :func:`fastinv.linalg.surrogate.surrogate_moments`)."""
    from fastinv.linalg.surrogate import fit_surrogate

    holdout = surrogate_holdout(probes.shape[0])
    if not holdout:
        notes.append(f"only {probes.shape[0]} probes: R² is in-sample (no probes held out)")
    return fit_surrogate(model, probes, holdout=holdout, seed=seed, n_out=n, moments=moments)


@dataclass
class NetworkOnTest:
    """The network's and its surrogate's outputs on the test inputs, and R² between them."""

    X_net: np.ndarray
    X_c: np.ndarray
    r2: float


def network_on_test(f: Callable, Y_test: np.ndarray, fit) -> NetworkOnTest:
    """Run the network and C y + b on the test inputs (checking the network's outputs: one
    signal of C's n rows per measurement)."""
    Xnet = f(Y_test)
    check_model_output(Xnet.shape, Y_test.shape, fit.C.shape[0])
    check_finite(Xnet, "the model's outputs on the test set")
    Xc = Y_test @ fit.C.T + fit.b
    r2 = 1.0 - np.sum((Xc - Xnet) ** 2) / np.sum((Xnet - Xnet.mean(0)) ** 2)
    return NetworkOnTest(Xnet, Xc, r2)


# --------------------------------------------------------------------------------------------
# references and errors


def reference_inverses(
    op, probes, test, validation, *, prior, noise, train_X, notes: list
) -> References:
    """:func:`~fastinv.auditing.references.build_references`, on the validation pairs or
    else the test set (then saying the oracle is optimistic)."""
    Y_test, X_test = test
    if validation is None and X_test is not None:
        notes.append("oracle parameters were chosen on the test set (optimistic by design)")
    refs = build_references(
        op.A,
        op.svd,
        singular=op.singular or op.m != op.n,
        probes=probes,
        validation=validation if validation is not None else (Y_test, X_test),
        prior=prior,
        noise=noise,
        train_X=train_X,
    )
    notes.extend(refs.notes)
    return refs


def errors_on_test(net: NetworkOnTest, Y_test, X_test, refs: References, svd, notes: list) -> dict:
    """Relative test errors of the network, C and every reference, on the same test set.

    Spectral filters are evaluated in A's SVD basis (no n x n matrix per filter).
    """
    errors: dict[str, float | None] = {}
    if X_test is None:
        notes.append(
            "no test targets: test errors of the network, C and the references are not given"
        )
        return errors
    errors["network"] = relative_error(net.X_net, X_test)
    errors["surrogate"] = relative_error(net.X_c, X_test)
    for name, M in refs.matrices.items():
        Xr = Y_test @ M.T
        if name in refs.offsets:
            Xr = Xr + refs.offsets[name]
        errors[name] = relative_error(Xr, X_test)
    U, s, Vt = svd
    Zt, XVt = Y_test @ U, X_test @ Vt.T
    inv_s = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)
    norm_x = np.linalg.norm(X_test)
    for name, ph in refs.filters.items():
        if name not in errors:
            errors[name] = float(np.linalg.norm(Zt * (ph * inv_s) - XVt) / norm_x)
    return errors


# --------------------------------------------------------------------------------------------
# spectra, subspaces and filter factors


@dataclass
class SpectralPlan:
    """How spectra are taken: full or randomized top-k SVD, and the subspace dimensions."""

    use_full: bool
    topk: int
    ks: list
    svd_fn: Callable

    @property
    def method(self) -> str:
        return "full SVD" if self.use_full else f"randomized top-{self.topk} SVD"


def spectral_plan(n: int, full_svd_max: int, ks, seed: int) -> SpectralPlan:
    """Full SVDs up to ``full_svd_max``, else randomized top-256; default subspace sizes.
    ``n`` is the number of singular values compared, min(m, n) of an (m, n) operator."""
    from fastinv.linalg.randomized import svd_topk

    use_full = n <= full_svd_max
    topk = n if use_full else min(n, 256)
    if ks is None:
        # k = n is left out: two n-dimensional subspaces of R^n coincide, angle 0 by definition
        ks = sorted(
            {k for k in (1, 2, 5, 10, 20, 50, 100, 200) if k <= min(topk, n - 1)}
            | ({topk} if topk < n else set())
        ) or [1]  # n = 1: the one (trivial) subspace
    svd_fn = partial(svd_topk, full_threshold=full_svd_max, seed=seed)
    return SpectralPlan(use_full, topk, ks, svd_fn)


@dataclass
class SpectralFindings:
    """C against the dense references, with every filter's factors side by side.

    ``phi``, ``offdiag``, ``phi_distance`` and ``svals`` are keyed by estimator ("C",
    "A_inv", "tikhonov_gcv", ...); ``closest`` is the classical filter nearest C (RMS of
    the filter-factor difference).
    """

    comparison: spectral.Comparison
    angles_on_data: dict
    phi: dict
    offdiag: dict
    closest: str
    phi_distance: dict
    svals: dict


def _phi_rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def spectral_comparison(
    C, svd, refs: References, CR, BR: dict, plan: SpectralPlan
) -> SpectralFindings:
    """Spectra, subspaces and filter factors of C against the references.

    The on-data angles compare the same references where the probes vary: the left singular
    vectors of M Σ_y^½ (``CR``, ``BR``) are the principal components of the outputs M y over
    the probe distribution, so they say whether C and B put their outputs on typical data in
    the same dominant directions; the plain angles also weigh directions the probes never
    explore, where C is not determined (see :func:`~fastinv.auditing.angles.output_angles`).
    """
    cmp = spectral.compare(
        C, svd, references=refs.compared(), ks=plan.ks, topk=plan.topk, svd_fn=plan.svd_fn
    )
    angles_data = output_angles(CR, BR, cmp.ks, svd_fn=plan.svd_fn, k_svd=plan.topk)
    phi = {"C": cmp.phi, **refs.filters, **cmp.phi_refs}
    offdiag = {"C": float(cmp.offdiag_share), **{k: 0.0 for k in refs.filters}, **cmp.ref_offdiag}
    closest = min(
        (k for k in phi if k != "C" and k != "A_inv"),
        key=lambda k: _phi_rms(phi["C"], phi[k]),
    )
    phi_dist = {k: _phi_rms(phi["C"], phi[k]) for k in phi if k != "C"}
    svals = {"C": cmp.singular_values, "A_inv": cmp.sv_A_inv, **cmp.ref_singular_values}
    return SpectralFindings(cmp, angles_data, phi, offdiag, closest, phi_dist, svals)


# --------------------------------------------------------------------------------------------
# the network's Jacobians


def jacobian_audit(
    model, is_torch: bool, n_jacobian: int, probes, C, svd, plan: SpectralPlan, R_y, *, notes, rep
) -> tuple[dict, dict]:
    """Jacobian metrics and arrays at the first ``n_jacobian`` probes (torch models only)."""
    if not (is_torch and n_jacobian > 0):
        notes.append("Jacobians need a torch model; they were not computed")
        return {}, {}
    with rep.stage("jacobians", f"Jacobians at {n_jacobian} probes"):
        Yj = probes[: min(n_jacobian, probes.shape[0])]
        return _jacobians(model, Yj, C, svd, plan, R_y)


def _jacobians(model, Yj, C, svd, plan: SpectralPlan, R_y) -> tuple[dict, dict]:
    from fastinv.linalg.jacobians import jacobians

    U, s, Vt = svd
    m = Yj.shape[0]
    J = jacobians(model, Yj)  # (m, n, n) float64
    Jbar = J.mean(0)
    spread = [relative_error(J[i], Jbar, floor=1e-300) for i in range(m)]
    sv = np.stack([plan.svd_fn(J[i], plan.topk)[1] for i in range(m)])
    smax = sv[:, 0]
    out = {
        "n_probes": m,
        "mean_jacobian_vs_C_rel_fro": relative_error(Jbar, C),
        # C is pinned down only where the probes vary: weigh by Cov(y)^(1/2)
        "mean_jacobian_vs_C_rel_fro_data_weighted": weighted_rel_error(Jbar, C, R_y),
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
        out["homogeneity_rel_error"] = relative_error(Jy, out_y, floor=1e-300)
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
# assembly


def audit_metrics(
    *, fit, net, errors, on_data, refs, spec, jacobians, plan, s, notes, timings
) -> dict:
    """The audit's JSON-ready numbers, by topic."""
    return {
        "surrogate": _surrogate_metrics(fit, net, errors, on_data, spec),
        "comparison": {**spec.comparison.to_dict(), **_on_data_angles(spec)},
        "errors": errors,
        "references": refs.info,
        "filters": {
            "offdiag_share": spec.offdiag,
            "phi_rms_distance_to_C": spec.phi_distance,
            "closest_classical_filter": spec.closest,
        },
        "jacobians": jacobians,
        "spectra": {
            "method": plan.method,
            "sigma_max_A": float(s[0]),
            "sigma_min_A": float(s[-1]),
            "sigma_max_C": float(spec.svals["C"][0]),
            "sigma_max_A_inv": float(spec.svals["A_inv"][0]),
        },
        "notes": notes,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def _surrogate_metrics(fit, net: NetworkOnTest, errors, on_data, spec) -> dict:
    dist_inv = spec.comparison.distances.get("A_inv", {})
    dist_lmmse = spec.comparison.distances.get("lmmse")
    return {
        **fit.to_dict(),
        "r2_test": float(net.r2),
        "test_rel_error": errors.get("surrogate"),
        "rel_dist_to_inverse": dist_inv.get("rel_2"),
        "rel_dist_to_inverse_fro": dist_inv.get("rel_fro"),
        "rel_dist_to_lmmse": None if dist_lmmse is None else dist_lmmse.get("rel_2"),
        "rel_dist_to_lmmse_fro": None if dist_lmmse is None else dist_lmmse.get("rel_fro"),
        "rel_dist_to_inverse_on_data": on_data.get("A_inv"),
        "rel_dist_to_lmmse_on_data": on_data.get("lmmse"),
        "offdiag_share": spec.offdiag["C"],
    }


def _on_data_angles(spec: SpectralFindings) -> dict:
    angles = {
        key: {q: v for q, v in a.items() if q != "angles_deg"}
        for key, a in spec.angles_on_data.items()
    }
    summary = {
        "ks": list(spec.comparison.ks),
        "what": "left singular subspaces of M Σ_y^½ (principal components of "
        "the outputs M y over the probes)",
        **angles,
    }
    return {"principal_angles_on_data": to_jsonable(summary)}


def image_findings(op, Y_test, X_test, net: NetworkOnTest, refs: References, spec, notes) -> dict:
    """For an operator with an image shape: a few test images and their reconstructions
    (:func:`~fastinv.auditing.images.image_arrays`) and, for a Fourier-diagonal operator, the
    filter factors of C, LMMSE and the best Tikhonov as maps over frequency with their radial
    averages (:func:`~fastinv.auditing.images.filter_map_arrays`); {} for 1-D signals."""
    shape = getattr(op, "image_shape", None)
    if shape is None or len(shape) != 2:
        return {}
    arrays = images.image_arrays(shape, Y_test, X_test, net, refs, adjoint=op.adjoint)
    if getattr(op, "structure", None) in images.FOURIER_STRUCTURES:
        names = ("C", "lmmse", refs.best_tikhonov)
        maps, why = images.filter_map_arrays(op.svd[2], shape, spec.phi, names)
        arrays.update(maps)
        if why:
            notes.append(why)
    return arrays


def audit_arrays(*, fit, s, U, Y_test, spec, plan, jacobians, curves) -> dict:
    """Spectra, filter factors, angles and matrices, for plots and ``arrays.npz``."""
    cmp = spec.comparison
    arrays = {
        "C": fit.C,
        "b": fit.b,
        "sigma_A": s,
        **{f"sv_{k}": v for k, v in spec.svals.items()},
        **{f"phi_{k}": v for k, v in spec.phi.items()},
        "angles_ks": np.asarray(plan.ks),
        **{f"angles_{k}": np.asarray(v) for k, v in cmp.angles_arrays().items()},
        **{
            f"{ON_DATA_PREFIX}{key}": spectral.per_k(a, "max_deg", cmp.ks)
            for key, a in spec.angles_on_data.items()
        },
        "picard_coef": np.mean(np.abs(Y_test @ U), axis=0),
        **jacobians,
    }
    for name, cur in curves.items():
        arrays[f"lambda_grid_{name}"] = np.asarray(cur.grid)
        arrays[f"lambda_curve_{name}"] = np.asarray(cur.curve)
    return arrays
