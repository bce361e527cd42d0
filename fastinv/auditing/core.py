"""One audit: every comparison of one model with A⁻¹ and the classical inverses.

``audit(model, op, probes=..., test=...)`` fits the model's affine surrogate C, builds the
reference inverses in A's SVD basis, measures the errors of all of them on the same test set,
compares spectra, subspaces and filter factors, looks at the network's Jacobians, and writes a
computed (never canned) verdict. What each number means is in docs/science.md.

Each step is a section of :mod:`fastinv.auditing.sections`; the references are built by
:mod:`fastinv.auditing.references`, the on-data angles by :mod:`fastinv.auditing.angles`, the
verdict by :mod:`fastinv.auditing.verdict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastinv._progress import Reporter
from fastinv.auditing import sections
from fastinv.auditing.angles import cov_sqrt, on_data_distances, weighted_products
from fastinv.auditing.verdict import make_verdict

__all__ = [
    "FULL_SVD_MAX",
    "AuditResult",
    "audit",
]

#: n above which spectra of n x n matrices are taken by randomized top-k SVD
FULL_SVD_MAX = 1024


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
    op : Operator or ndarray of shape (n, n)
        The forward operator (its cached SVD is used throughout); an array is wrapped as an
        Operator.
    probes : ndarray of shape (N, n)
        Inputs at which the affine surrogate C is fitted (20 % held out for R² when there are
        at least 50); at least 2.
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
    full_svd_max : int
        n above which spectra are taken by randomized top-k SVD.
    seed : int
        Seed of the surrogate's hold-out split and of the randomized SVDs.
    log : callable, optional
        Receives one line per stage.
    """
    rep = Reporter(prefix="", sink=log)
    notes: list[str] = []
    op = sections.as_operator(op)
    probes, Y_test, X_test = sections.check_inputs(op, probes, test)
    sections.check_audit_memory(op.n, probes.shape[0] + Y_test.shape[0])
    U, s, _ = op.svd
    f, is_torch = sections.as_callable(model)
    with rep.stage("surrogate", "fitting the affine surrogate C"):
        fit = sections.fit_affine_surrogate(model, probes, seed=seed, notes=notes)
    with rep.stage("references"):
        net = sections.network_on_test(f, Y_test, fit)
        rep("building the reference inverses")
        refs = sections.reference_inverses(
            op,
            probes,
            (Y_test, X_test),
            validation,
            prior=prior,
            noise=noise,
            train_X=train_X,
            notes=notes,
        )
    # distances where the data live (Σ_y^½-weighted); the products are reused for the angles
    R_y = cov_sqrt(probes)
    CR, BR = weighted_products(fit.C, refs.compared(), R_y)
    on_data = on_data_distances(CR, BR)
    errors = sections.errors_on_test(net, Y_test, X_test, refs, op.svd, notes)
    with rep.stage("spectral", "comparing spectra and subspaces"):
        plan = sections.spectral_plan(op.n, full_svd_max, ks, seed)
        spec = sections.spectral_comparison(fit.C, op.svd, refs, CR, BR, plan)
    del CR, BR  # n x n each
    jac_metrics, jac_arrays = sections.jacobian_audit(
        model, is_torch, n_jacobian, probes, fit.C, op.svd, plan, R_y, notes=notes, rep=rep
    )
    image_arrays = sections.image_findings(op, Y_test, X_test, net, refs, spec, notes)
    metrics = sections.audit_metrics(
        fit=fit,
        net=net,
        errors=errors,
        on_data=on_data,
        refs=refs,
        spec=spec,
        jacobians=jac_metrics,
        plan=plan,
        s=s,
        notes=notes,
        timings=rep.timings,
    )
    arrays = sections.audit_arrays(
        fit=fit,
        s=s,
        U=U,
        Y_test=Y_test,
        spec=spec,
        plan=plan,
        jacobians=jac_arrays,
        curves=refs.curves,
    )
    arrays.update(image_arrays)
    return AuditResult(metrics=metrics, verdict=make_verdict(metrics, s), arrays=arrays)
