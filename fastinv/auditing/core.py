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

from fastinv import io
from fastinv._progress import Reporter
from fastinv._validation import check_choice
from fastinv.auditing import sections, topk
from fastinv.auditing.angles import cov_sqrt, on_data_distances, weighted_products
from fastinv.auditing.verdict import make_verdict
from fastinv.errors import FastinvError

__all__ = [
    "FULL_SVD_MAX",
    "PATHS",
    "AuditInputs",
    "AuditPath",
    "AuditResult",
    "audit",
    "choose_path",
    "network_error",
]

#: the audit paths: "auto" chooses (see :func:`choose_path`)
PATHS = ("auto", "dense", "top-k")

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
    rank: int | None = None,
    path: str = "auto",
    seed: int = 0,
    log=None,
    surrogate_moments=None,
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
        n above which spectra are taken by randomized top-k SVD (dense path).
    rank : int, optional
        Run the top-k audit on A's ``rank`` leading singular directions (never an n x n
        matrix; see :mod:`fastinv.auditing.topk`). Its arrays ``sigma_A``, ``phi_C`` and
        ``phi_mean_jacobian`` then hold the k leading directions in descending σ.
    path : {"auto", "dense", "top-k"}
        "auto" (default): the dense audit when it fits in memory and the fitted probe rows
        identify the full C (N_fit >= n + 1), else the top-k audit with k =
        :func:`fastinv.auditing.topk.default_rank`; ``metrics["audit"]`` says which ran
        and why.
    seed : int
        Seed of the surrogate's hold-out split and of the randomized SVDs.
    log : callable, optional
        Receives one line per stage.
    surrogate_moments : MomentAccumulator, optional
        The dense audit's surrogate moments, accumulated elsewhere over the probes that are
        not held out (the ranks of a data-parallel run each accumulate their part with
        :func:`fastinv.linalg.surrogate.surrogate_moments` and merge them): C is then solved
        from them and the model runs on the held-out probes only. Refused when the top-k
        audit runs (it fits on A's leading directions, not on these moments).
    """
    rep = log.child() if isinstance(log, Reporter) else Reporter(prefix="", sink=log)
    op = sections.as_operator(op)
    probes, Y_test, X_test = sections.check_inputs(op, probes, test)
    chosen = choose_path(op.n, probes.shape[0], Y_test.shape[0], rank=rank, path=path, m=op.m)
    inputs = AuditInputs(
        model, op, probes, Y_test, X_test, validation, prior, noise, train_X, n_jacobian, seed,
        surrogate_moments,
    )  # fmt: skip
    if chosen.path == "top-k" and surrogate_moments is not None:
        raise FastinvError(
            f"surrogate_moments are for the dense audit, but the top-k audit runs ({chosen.why});"
            " leave them out, or give the probes and path='dense' the dense audit needs"
        )
    if chosen.path == "top-k":
        rep(f"top-k audit, k = {chosen.k}: {chosen.why}")
        return _audit_topk(inputs, chosen, rep)
    return _audit_dense(inputs, chosen, rep, ks=ks, full_svd_max=full_svd_max)


@dataclass
class AuditInputs:
    """What one audit works on, checked by :func:`audit` (see its parameters)."""

    model: object
    op: object
    probes: np.ndarray = field(repr=False)
    Y_test: np.ndarray = field(repr=False)
    X_test: np.ndarray | None = field(repr=False)
    validation: tuple | None = field(repr=False)
    prior: object
    noise: dict | None
    train_X: np.ndarray | None = field(repr=False)
    n_jacobian: int
    seed: int
    surrogate_moments: object = field(default=None, repr=False)


def network_error(metrics: dict) -> float | None:
    """The network's relative test error over all of x (the top-k audit's ``errors`` hold
    errors on the k leading directions; ``errors_full`` the ones over all of x)."""
    full = metrics.get("errors_full") or {}
    if full.get("network") is not None:
        return full["network"]
    return (metrics.get("errors") or {}).get("network")


@dataclass
class AuditPath:
    """Which audit runs (``path`` "dense" or "top-k", ``k`` for top-k) and why."""

    path: str
    k: int | None
    why: str
    n_fit: int
    n: int
    m: int | None = None  # the measurement size when A is rectangular (m ≠ n)

    def to_dict(self) -> dict:
        d = {"path": self.path, "k": self.k, "why": self.why, "n_fit": self.n_fit, "n": self.n}
        if self.m is not None and self.m != self.n:
            d["m"] = self.m
        return d


def fitted_rows(n_probes: int) -> int:
    """Rows the surrogate is fitted on: all probes below 50, else 80 % (20 % held out)."""
    return n_probes if n_probes < 50 else n_probes - int(round(0.2 * n_probes))


def choose_path(
    n: int, n_probes: int, n_test: int, *, rank=None, path: str = "auto", m: int | None = None
) -> AuditPath:
    """The dense audit when it fits in memory and N_fit >= m + 1 identifies the full C (n, m);
    else the top-k audit (``rank`` or what the fitted rows support, at most min(m, n)).
    ``rank`` or ``path="top-k"`` force the top-k audit, ``path="dense"`` the dense one
    (refused when it will not fit). ``m`` is the measurement size (default n: a square A)."""
    path = check_choice(path, "audit path", PATHS)
    m = n if m is None else m
    n_fit = fitted_rows(n_probes)
    r = min(m, n)
    if rank is not None or path == "top-k":
        r_name = "n" if m == n else "min(m, n)"
        k = (
            topk.default_rank(n_fit, r)
            if rank is None
            else topk.check_rank(rank, n_fit, r, size_name=r_name)
        )
        why = "an audit rank was given" if rank is not None else "the top-k audit was asked for"
        return AuditPath("top-k", k, why, n_fit, n, m)
    size = max(m, n)
    need = sections.dense_audit_bytes(size, n_probes + n_test)
    avail = io.available_memory()
    if path == "dense":
        sections.check_audit_memory(size, n_probes + n_test)
        return AuditPath("dense", None, "the dense audit was asked for", n_fit, n, m)
    inputs = "n" if m == n else "m"
    if avail is not None and need > avail:
        why = (
            f"the dense audit at n = {size} needs about {need / 2**30:.1f} GiB, "
            f"{avail / 2**30:.1f} GiB are available"
        )
    elif n_fit < m + 1:
        why = (
            f"{n_fit} fitted probe rows < {inputs} + 1 = {m + 1}: the full C is not "
            f"identifiable (give at least 1.25 {inputs} + 1 probes for the dense audit)"
        )
    else:
        why = f"{n_fit} fitted probe rows >= {inputs} + 1 and it fits"
        return AuditPath("dense", None, why, n_fit, n, m)
    if n_fit < 2:
        raise FastinvError(
            f"{why}, and {n_probes} probes are too few for the top-k audit; give more probes"
        )
    return AuditPath("top-k", topk.default_rank(n_fit, r), why, n_fit, n, m)


def _audit_dense(a: AuditInputs, chosen: AuditPath, rep, *, ks, full_svd_max) -> AuditResult:
    """The dense audit: C, the references and the spectra as n x n matrices."""
    model, op, probes, Y_test, X_test = a.model, a.op, a.probes, a.Y_test, a.X_test
    notes: list[str] = []
    if chosen.n_fit < op.m + 1:
        inputs = "n" if op.m == op.n else "m"
        notes.append(
            f"C was fitted from {chosen.n_fit} probe rows < {inputs} + 1 = {op.m + 1}: it is a "
            "minimum-norm guess, not identified by the data; its R², errors and distances "
            "reflect the rank, not the network (give more probes, or use the top-k audit)"
        )
    U, s, _ = op.svd
    f, is_torch = sections.as_callable(model)
    given = a.surrogate_moments is not None
    what = "solving C from the ranks' moments" if given else "fitting the affine surrogate C"
    with rep.stage("surrogate", what):
        fit = sections.fit_affine_surrogate(
            model, probes, seed=a.seed, notes=notes, n=op.n, moments=a.surrogate_moments
        )
    with rep.stage("references"):
        net = sections.network_on_test(f, Y_test, fit)
        rep("building the reference inverses")
        refs = sections.reference_inverses(
            op,
            probes,
            (Y_test, X_test),
            a.validation,
            prior=a.prior,
            noise=a.noise,
            train_X=a.train_X,
            notes=notes,
        )
    # distances where the data live (Σ_y^½-weighted); the products are reused for the angles
    R_y = cov_sqrt(probes)
    CR, BR = weighted_products(fit.C, refs.compared(), R_y)
    on_data = on_data_distances(CR, BR)
    errors = sections.errors_on_test(net, Y_test, X_test, refs, op.svd, notes)
    with rep.stage("spectral", "comparing spectra and subspaces"):
        plan = sections.spectral_plan(min(op.shape), full_svd_max, ks, a.seed)
        spec = sections.spectral_comparison(fit.C, op.svd, refs, CR, BR, plan)
    del CR, BR  # n x n each
    jac_metrics, jac_arrays = sections.jacobian_audit(
        model, is_torch, a.n_jacobian, probes, fit.C, op.svd, plan, R_y, notes=notes, rep=rep
    )
    if jac_metrics:
        jac_metrics.update(topk.tikhonov_gain(refs))
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
    metrics = {"audit": chosen.to_dict(), **metrics}
    return AuditResult(metrics=metrics, verdict=make_verdict(metrics, s), arrays=arrays)


def _audit_topk(a: AuditInputs, chosen: AuditPath, rep) -> AuditResult:
    """The top-k audit (:mod:`fastinv.auditing.topk`): everything on A's k leading singular
    directions, the references' errors over all of x where A's SVD is known exactly."""
    model, op, probes, Y_test, X_test = a.model, a.op, a.probes, a.Y_test, a.X_test
    notes: list[str] = []
    f, is_torch = sections.as_callable(model)
    topk.check_topk_memory(op.n, chosen.k, probes.shape[0], Y_test.shape[0])
    with rep.stage("basis", f"A's {chosen.k} leading singular triplets"):
        top = topk.top_basis(op, chosen.k, seed=a.seed)
    with rep.stage("surrogate", f"fitting G on {chosen.k} directions"):
        chunk = topk.forward_chunk(model, probes)
        bar = rep.bar(probes.shape[0], "probes through the network", unit="row")
        Z, W = topk.project_probes(f, probes, top, chunk=chunk, progress=bar.update)
        bar.close()
        fit = topk.fit_projected(Z, W, seed=a.seed, notes=notes)
    with rep.stage("references"):
        bar = rep.bar(Y_test.shape[0], "test set through the network", unit="row")
        net = topk.network_on_test(f, Y_test, X_test, top, fit, chunk=chunk, progress=bar.update)
        bar.close()
        if a.validation is None and X_test is not None:
            notes.append("oracle parameters were chosen on the test set (optimistic by design)")
        refs = topk.topk_references(
            op,
            top,
            probes,
            a.validation if a.validation is not None else (Y_test, X_test),
            prior=a.prior,
            noise=a.noise,
            train_X=a.train_X,
        )
        notes.extend(refs.notes)
    errors, errors_full = topk.test_errors(top, net, Y_test, X_test, refs, notes)
    cmp = topk.filter_comparison(top, fit, refs, Z, W)
    svals = topk.singular_values_k(top, fit, refs)
    jac_metrics, jac_arrays = topk.projected_jacobian_audit(
        model, is_torch, a.n_jacobian, probes, top, fit, refs, Z, notes=notes, rep=rep
    )
    img, why_no_maps = topk.topk_image_arrays(op, top, Y_test, X_test, net, refs, cmp)
    if why_no_maps:
        notes.append(why_no_maps)
    metrics = topk.topk_metrics(
        top=top,
        why=chosen.why,
        fit=fit,
        test=net,
        errors=errors,
        errors_full=errors_full,
        refs=refs,
        cmp=cmp,
        svals=svals,
        jacobians=jac_metrics,
        notes=notes,
        timings=rep.timings,
    )
    metrics["audit"].update(chosen.to_dict())  # n_fit, n (and m for a rectangular A)
    arrays = topk.topk_arrays(
        top=top, fit=fit, test=net, cmp=cmp, svals=svals, jacobians=jac_arrays, curves=refs.curves
    )
    arrays.update(img)
    return AuditResult(metrics=metrics, verdict=make_verdict(metrics, top.s), arrays=arrays)
