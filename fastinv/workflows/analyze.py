"""`fastinv analyze` as a library call: audit the user's own model against their operator."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastinv._progress import Reporter
from fastinv._validation import check_2d, check_choice, check_finite, check_float, check_int
from fastinv.auditing.core import network_error
from fastinv.errors import FastinvError
from fastinv.io import closes_out_folders
from fastinv.workflows.memory import check_analyze_memory, default_probe_sizes
from fastinv.workflows.run import (
    TEST_SEED_OFFSET,
    check_audit_rank,
    image_prior_params,
    needs_full_svd,
    prepare_out,
    resolved_prior,
    timings_block,
)

__all__ = [
    "DEFAULT_NOISE",
    "AnalyzeConfig",
    "ProbeData",
    "analyze_model",
    "load_array",
]

#: the generated probes' prior and noise level when none is given
DEFAULT_NOISE = 0.01
#: settings that only describe generated probes (not used with the user's own)
GENERATED_ONLY = ("prior", "prior_params", "samples")


@dataclass
class AnalyzeConfig:
    """The arguments of :func:`analyze_model` that describe the audit (config.json)."""

    operator: str
    n: int | None
    model_spec: str
    arch: str | None
    arch_kwargs: object
    trust_pickle: bool
    probes_path: object
    truth_path: object
    test_probes_path: object
    test_truth_path: object
    prior: str | None
    prior_params: dict | None
    noise: float | None
    noise_type: str | None
    samples: int | None
    n_jacobian: int
    device: str
    seed: int
    audit_rank: int | None = None

    @classmethod
    def from_arguments(cls, args: dict) -> AnalyzeConfig:
        """From :func:`analyze_model`'s arguments by name (more names are ignored)."""
        return cls(**{f.name: args[f.name] for f in dataclasses.fields(cls)})

    @property
    def user(self) -> bool:
        """The user's own probes are audited (else probes are generated)."""
        return self.probes_path is not None

    def to_dict(self, n: int) -> dict:
        """config.json: what the audit used, with the operator's actual ``n`` and paths as
        str. With the user's probes the generated-data settings (prior, samples) are left
        out, and so is the noise when none was given; settings not given (None) are left out."""
        d = dataclasses.asdict(self)
        renamed = {
            "model_spec": "model",
            "probes_path": "probes",
            "truth_path": "truth",
            "test_probes_path": "test_probes",
            "test_truth_path": "test_truth",
        }
        d = {renamed.get(k, k): v for k, v in d.items()}
        d.update(n=n, prior_params=self.prior_params or {})
        for key in ("probes", "truth", "test_probes", "test_truth"):
            d[key] = None if d[key] is None else str(d[key])
        drop = set(GENERATED_ONLY) if self.user else set()
        if self.noise is None:
            drop |= {"noise", "noise_type"}
        return {k: v for k, v in d.items() if k not in drop and v is not None}


@dataclass
class ProbeData:
    """The audit's inputs: probes (and targets) for the surrogate fit, and the test set."""

    Y_probe: np.ndarray
    X_probe: np.ndarray | None
    Y_test: np.ndarray
    X_test: np.ndarray | None
    summary: str
    user: bool
    prior: object = None
    noise: dict | None = None


def load_array(path, what: str, *, n: int, key: str | None = None):
    """Load an (m, n) array of probes or targets from .npy/.npz/.csv/.txt."""
    p = Path(path)
    if not p.is_file():
        raise FastinvError(f"{what} file {p} not found")
    try:
        arr = _read_array(p, what, key)
    except FastinvError:
        raise
    except Exception as e:  # noqa: BLE001 - any parser failure is the user's file
        raise FastinvError(f"cannot read {what} file {p}: {e}") from None
    arr = check_2d(arr, f"{what} ({p.name})", shape=(None, n)).astype(np.float64)
    check_finite(arr, f"{what} ({p.name})")
    return arr


def _read_array(p: Path, what: str, key: str | None):
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            names = list(z.keys())
            if key is None and len(names) != 1:
                raise FastinvError(f"{what} file {p} holds arrays {names}; name one with KEY")
            return z[key or names[0]]
    return np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, ndmin=2)


@closes_out_folders
def analyze_model(
    operator: str,
    model_spec: str,
    *,
    n: int | None = None,
    arch: str | None = None,
    arch_kwargs=None,
    trust_pickle: bool = False,
    probes_path=None,
    truth_path=None,
    test_probes_path=None,
    test_truth_path=None,
    prior: str | None = None,
    prior_params: dict | None = None,
    noise: float | None = None,
    noise_type: str | None = None,
    samples: int | None = None,
    n_jacobian: int = 16,
    device: str = "cpu",
    seed: int = 0,
    audit_rank: int | None = None,
    out=None,
    force: bool = False,
    progress: bool = False,
) -> dict:
    """Audit the user's own model against their operator (`fastinv analyze`).

    Without ``probes_path`` the probes and test pairs are generated from ``prior`` (default
    :func:`~fastinv.workflows.run.resolved_prior`: grf for images, else smooth) and ``noise``
    (default :data:`DEFAULT_NOISE`, relative).
    With it, the surrogate is fitted on the user's probes, and the test set is
    ``test_probes_path`` (with ``test_truth_path``'s targets, if given) or else the same
    probes (with ``truth_path``'s targets, if given). With a separate test set and
    ``truth_path``, the oracle parameters are chosen on the fitting pairs. ``noise`` and
    ``noise_type`` ("relative" by default) then describe the noise in the user's probes:
    given, the LMMSE reference is computed with the prior's moments estimated from the
    targets; not given, it is not. Returns the metrics dict (also written to metrics.json
    when ``out`` is given).
    """
    cfg = AnalyzeConfig.from_arguments(locals())
    _check_arguments(cfg)
    check_analyze_memory(  # from the arguments and file headers: nothing is built yet
        cfg.operator,
        cfg.n,
        model_spec=cfg.model_spec,
        probes_path=cfg.probes_path,
        test_probes_path=cfg.test_probes_path,
        samples=cfg.samples,
        n_jacobian=cfg.n_jacobian,
        rank=cfg.audit_rank,
    )
    rep = Reporter(progress, prefix="fastinv")
    out = prepare_out(out, force=force, command="analyze")
    with rep.stage("operator"):
        op = _load_operator(cfg)
    with rep.stage("load_model"):
        loaded = _load_model(cfg, op)
    with rep.stage("data"):
        data = _user_probes(cfg, op.n) if cfg.user else _generated_probes(cfg, op)
    with rep.stage("audit", "auditing"):
        res = _audit(cfg, loaded, op, data, rep)
    metrics = {
        "operator": op.to_dict(),
        "data": {"summary": data.summary},
        "model": {**loaded.to_dict(), "test_rel_error": network_error(res.metrics)},
        **res.metrics,
        "verdict": res.verdict,
    }
    metrics["timings"] = timings_block(rep.timings, res.metrics["timings"])
    if out is not None:
        from fastinv.report.writer import write_run_dir

        title = f"fastinv analyze: {Path(cfg.model_spec).name} on {op.name}, n = {op.n}"
        write_run_dir(out, cfg.to_dict(op.n), metrics, res, log=rep, title=title)
    return metrics


def _check_arguments(cfg: AnalyzeConfig) -> None:
    """The counts: generated probes (None: the default; at least 2 for an affine fit) and
    Jacobian probes (>= 0); the noise; which data files go together."""
    if cfg.samples is not None:
        cfg.samples = check_int(cfg.samples, "samples", lo=2)
    cfg.n_jacobian = check_int(cfg.n_jacobian, "n_jacobian (--jacobian-probes)", lo=0)
    if cfg.audit_rank is not None:
        cfg.audit_rank = check_audit_rank(cfg.audit_rank, cfg.n)
    if cfg.noise is not None:
        cfg.noise = check_float(cfg.noise, "noise", lo=0)
    if cfg.noise_type is not None:
        cfg.noise_type = check_choice(
            cfg.noise_type, "noise_type (--noise-type)", ("relative", "absolute")
        )
    _check_data_files(cfg)
    if cfg.user:
        _settle_user_noise(cfg)
    else:
        cfg.noise = DEFAULT_NOISE if cfg.noise is None else cfg.noise
        cfg.noise_type = cfg.noise_type or "relative"


def _check_data_files(cfg: AnalyzeConfig) -> None:
    """Targets pair with their inputs; a separate test set goes with the user's probes."""
    pairs = (
        ("truth_path (--truth)", cfg.truth_path, "probes_path (--probes)", cfg.probes_path),
        (
            "test_truth_path (--test-truth)",
            cfg.test_truth_path,
            "test_probes_path (--test-probes)",
            cfg.test_probes_path,
        ),
        (
            "test_probes_path (--test-probes)",
            cfg.test_probes_path,
            "probes_path (--probes)",
            cfg.probes_path,
        ),
    )
    for what, value, needs, other in pairs:
        if value is not None and other is None:
            raise FastinvError(f"{what} goes with {needs}; give that too")


def _settle_user_noise(cfg: AnalyzeConfig) -> None:
    """With the user's probes: settings for generated probes are ignored (warned), and the
    noise type defaults to relative only when a noise level is given."""
    ignored = [k for k in GENERATED_ONLY if getattr(cfg, k)]
    if cfg.noise is None and cfg.noise_type is not None:
        ignored.append("noise_type (without noise)")
        cfg.noise_type = None
    if ignored:
        warnings.warn(
            f"{', '.join(ignored)} describe generated probes and are ignored with your own probes",
            UserWarning,
            stacklevel=4,  # analyze_model's caller
        )
    for k in GENERATED_ONLY:
        setattr(cfg, k, None)
    if cfg.noise is not None:
        cfg.noise_type = cfg.noise_type or "relative"


def _load_operator(cfg: AnalyzeConfig):
    from fastinv.problem.operators import make_operator

    op = make_operator(cfg.operator, cfg.n)
    if needs_full_svd(op, cfg.audit_rank):
        _ = op.svd
    return op


def _load_model(cfg: AnalyzeConfig, op):
    """The user's model; one for a deepinv physics operator is called as ``model(y, physics)``
    when its forward takes the physics (:func:`fastinv.nets.loading.load_model`)."""
    from fastinv.nets.loading import load_model, physics_of

    return load_model(
        cfg.model_spec,
        n=op.n,
        arch=cfg.arch,
        arch_kwargs=cfg.arch_kwargs,
        trust_pickle=cfg.trust_pickle,
        device=cfg.device,
        physics=physics_of(op),
    )


def _user_probes(cfg: AnalyzeConfig, n: int) -> ProbeData:
    """The user's probes (and targets): C is fitted on all of them (20 % held out inside for
    R²); the test set is the separate test probes when given, else the probes themselves.
    The noise, when given, is the user's statement of the noise in their probes."""
    Y, X = _paired_arrays(cfg.probes_path, cfg.truth_path, "probes", "targets", n)
    if Y.shape[0] < n:
        warnings.warn(
            f"only {Y.shape[0]} probes for n = {n}: the surrogate is the minimum-norm fit "
            f"of rank ≤ {Y.shape[0]}; give at least n probes for a full-rank C",
            UserWarning,
            stacklevel=3,  # analyze_model's caller
        )
    summary = f"{Y.shape[0]} user probes" + (
        " with targets" if X is not None else " without targets"
    )
    if cfg.test_probes_path is not None:
        Y_test, X_test = _paired_arrays(
            cfg.test_probes_path, cfg.test_truth_path, "test probes", "test targets", n
        )
        summary += f"; a separate test set of {Y_test.shape[0]} probes" + (
            " with targets" if X_test is not None else " without targets"
        )
    else:
        Y_test, X_test = Y, X
        summary += " (also the test set)"
    noise = None
    if cfg.noise is not None:
        noise = {"level": cfg.noise, "type": cfg.noise_type}
        summary += f"; stated noise: {cfg.noise_type} {cfg.noise:g}"
    return ProbeData(
        Y_probe=Y,
        X_probe=X,
        Y_test=Y_test,
        X_test=X_test,
        summary=summary + ".",
        user=True,
        noise=noise,
    )


def _paired_arrays(inputs_path, targets_path, inputs: str, targets: str, n: int):
    """Inputs (m, n) and, when given, their targets (m, n), row for row."""
    Y = load_array(inputs_path, inputs, n=n)
    X = load_array(targets_path, targets, n=n) if targets_path is not None else None
    if X is not None and X.shape[0] != Y.shape[0]:
        raise FastinvError(
            f"{targets} have {X.shape[0]} rows but {inputs} have {Y.shape[0]}; they must pair up"
        )
    return Y, X


def _generated_probes(cfg: AnalyzeConfig, op) -> ProbeData:
    """Probes and test pairs drawn from the prior, with noise."""
    from fastinv.problem.data import generate
    from fastinv.problem.priors import make_prior

    cfg.prior = resolved_prior(cfg.prior, op)
    cfg.prior_params = image_prior_params(cfg.prior, cfg.prior_params, op)
    pr = make_prior(cfg.prior, op.n, **cfg.prior_params)
    gen = dict(
        prior=cfg.prior, prior_params=cfg.prior_params, noise=cfg.noise, noise_type=cfg.noise_type
    )
    default_probes, n_test = default_probe_sizes(op.n, rank=cfg.audit_rank)
    m = cfg.samples or default_probes
    X_probe, Y_probe = generate(op, n_samples=m, seed=cfg.seed, **gen)
    X_test, Y_test = generate(op, n_samples=n_test, seed=cfg.seed + TEST_SEED_OFFSET, **gen)
    summary = (
        f"Probes generated: prior {cfg.prior}, {cfg.noise_type} noise {cfg.noise:g}, "
        f"{m} probes, {X_test.shape[0]} test pairs."
    )
    return ProbeData(
        Y_probe=Y_probe,
        X_probe=X_probe,
        Y_test=Y_test,
        X_test=X_test,
        summary=summary,
        user=False,
        prior=pr,
        noise={"level": cfg.noise, "type": cfg.noise_type},
    )


def _audit(cfg: AnalyzeConfig, loaded, op, data: ProbeData, rep: Reporter):
    """The audit: the oracle parameters are chosen on the fitting pairs when they are not the
    test set (generated probes, or the user's with a separate test set), else on the test
    set; the LMMSE takes the prior's moments from the prior, else from the user's targets;
    Jacobians for torch modules only."""
    from fastinv.auditing.core import audit

    model = loaded.module if loaded.module is not None else loaded.fn
    separate = not data.user or cfg.test_probes_path is not None
    validation = (data.Y_probe, data.X_probe) if separate and data.X_probe is not None else None
    return audit(
        model,
        op,
        probes=data.Y_probe,
        test=(data.Y_test, data.X_test),
        validation=validation,
        prior=data.prior,
        noise=data.noise,
        train_X=data.X_probe if data.user else None,
        n_jacobian=cfg.n_jacobian if loaded.module is not None else 0,
        rank=cfg.audit_rank,
        seed=cfg.seed,
        log=rep,
    )
