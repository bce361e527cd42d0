"""`fastinv analyze` as a library call: audit the user's own model against their operator."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastinv._progress import Reporter
from fastinv._validation import check_2d, check_finite, check_float, check_int
from fastinv.errors import FastinvError
from fastinv.io import closes_out_folders
from fastinv.workflows.memory import check_analyze_memory
from fastinv.workflows.run import TEST_SEED_OFFSET, prepare_out, timings_block

__all__ = ["AnalyzeConfig", "ProbeData", "analyze_model", "load_array"]


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
    prior: str
    prior_params: dict | None
    noise: float
    noise_type: str
    samples: int | None
    n_jacobian: int
    device: str
    seed: int

    @classmethod
    def from_arguments(cls, args: dict) -> AnalyzeConfig:
        """From :func:`analyze_model`'s arguments by name (more names are ignored)."""
        return cls(**{f.name: args[f.name] for f in dataclasses.fields(cls)})

    def to_dict(self, n: int) -> dict:
        """config.json: the arguments, with the operator's actual ``n`` and paths as str."""
        d = dataclasses.asdict(self)
        renamed = {"model_spec": "model", "probes_path": "probes", "truth_path": "truth"}
        d = {renamed.get(k, k): v for k, v in d.items()}
        d.update(
            n=n,
            probes=self.probes_path and str(self.probes_path),
            truth=self.truth_path and str(self.truth_path),
            prior_params=self.prior_params or {},
        )
        return d


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
    prior: str = "smooth",
    prior_params: dict | None = None,
    noise: float = 0.01,
    noise_type: str = "relative",
    samples: int | None = None,
    n_jacobian: int = 16,
    device: str = "cpu",
    seed: int = 0,
    out=None,
    force: bool = False,
    progress: bool = False,
) -> dict:
    """Audit the user's own model against their operator (`fastinv analyze`).

    Without ``probes_path`` the probes and test pairs are generated from ``prior`` and
    ``noise``; with it, the surrogate is fitted on the user's probes and the test set is the
    same probes (with ``truth_path``'s targets, if given). Returns the metrics dict (also
    written to metrics.json when ``out`` is given).
    """
    cfg = AnalyzeConfig.from_arguments(locals())
    _check_arguments(cfg)
    check_analyze_memory(  # from the arguments and file headers: nothing is built yet
        cfg.operator,
        cfg.n,
        model_spec=cfg.model_spec,
        probes_path=cfg.probes_path,
        samples=cfg.samples,
        n_jacobian=cfg.n_jacobian,
    )
    rep = Reporter(progress, prefix="fastinv")
    out = prepare_out(out, force=force, command="analyze")
    with rep.stage("operator"):
        op = _load_operator(cfg)
    with rep.stage("load_model"):
        loaded = _load_model(cfg, op.n)
    with rep.stage("data"):
        user = cfg.probes_path is not None
        data = _user_probes(cfg, op.n) if user else _generated_probes(cfg, op)
    with rep.stage("audit", "auditing"):
        res = _audit(cfg, loaded, op, data, rep)
    metrics = {
        "operator": op.to_dict(),
        "data": {"summary": data.summary},
        "model": {**loaded.to_dict(), "test_rel_error": res.metrics["errors"].get("network")},
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
    Jacobian probes (>= 0)."""
    if cfg.samples is not None:
        cfg.samples = check_int(cfg.samples, "samples", lo=2)
    cfg.n_jacobian = check_int(cfg.n_jacobian, "n_jacobian (--jacobian-probes)", lo=0)
    cfg.noise = check_float(cfg.noise, "noise", lo=0)


def _load_operator(cfg: AnalyzeConfig):
    from fastinv.problem.operators import make_operator

    op = make_operator(cfg.operator, cfg.n)
    _ = op.svd
    return op


def _load_model(cfg: AnalyzeConfig, n: int):
    from fastinv.nets.loading import load_model

    return load_model(
        cfg.model_spec,
        n=n,
        arch=cfg.arch,
        arch_kwargs=cfg.arch_kwargs,
        trust_pickle=cfg.trust_pickle,
        device=cfg.device,
    )


def _user_probes(cfg: AnalyzeConfig, n: int) -> ProbeData:
    """The user's probes (and targets): C is fitted on all of them (20 % held out inside for
    R²), and they are the test set too."""
    Y = load_array(cfg.probes_path, "probes", n=n)
    X = load_array(cfg.truth_path, "targets", n=n) if cfg.truth_path is not None else None
    if X is not None and X.shape[0] != Y.shape[0]:
        raise FastinvError(
            f"targets have {X.shape[0]} rows but probes have {Y.shape[0]}; they must pair up"
        )
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
    return ProbeData(Y_probe=Y, X_probe=X, Y_test=Y, X_test=X, summary=summary, user=True)


def _generated_probes(cfg: AnalyzeConfig, op) -> ProbeData:
    """Probes and test pairs drawn from the prior, with noise."""
    from fastinv.problem.data import generate
    from fastinv.problem.priors import make_prior

    pr = make_prior(cfg.prior, op.n, **(cfg.prior_params or {}))
    gen = dict(
        prior=cfg.prior, prior_params=cfg.prior_params, noise=cfg.noise, noise_type=cfg.noise_type
    )
    m = cfg.samples or max(2000, 4 * op.n)
    X_probe, Y_probe = generate(op, n_samples=m, seed=cfg.seed, **gen)
    X_test, Y_test = generate(
        op, n_samples=max(1000, 2 * op.n), seed=cfg.seed + TEST_SEED_OFFSET, **gen
    )
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
    """The audit: on generated probes the oracle parameters are chosen on the probes, on the
    user's probes on the test set; Jacobians for torch modules only."""
    from fastinv.auditing.core import audit

    model = loaded.module if loaded.module is not None else loaded.fn
    validation = None if data.user or data.X_probe is None else (data.Y_probe, data.X_probe)
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
        seed=cfg.seed,
        log=rep,
    )
