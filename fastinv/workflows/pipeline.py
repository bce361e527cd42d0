"""`fastinv run` as a library call: operator → data → train → audit → report."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastinv.errors import FastinvError
from fastinv.io import check_memory, check_out_dir, save_npz, write_json


@dataclass
class RunConfig:
    """Everything needed to rerun an experiment (written to config.json)."""

    operator: str = "shaw"
    n: int | None = 64
    operator_params: dict = field(default_factory=dict)
    prior: str = "smooth"
    prior_params: dict = field(default_factory=dict)
    noise: float = 0.01
    noise_type: str = "relative"
    samples: int = 8000
    test_samples: int | None = None
    probes: int | None = None
    model: str = "mlp"
    width: int | None = None
    depth: int = 2
    activation: str = "relu"
    bias: bool = True
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int | None = None
    batch_size: int | None = 128
    schedule: str = "cosine"
    val_fraction: float = 0.1
    patience: int | None = None
    dtype: str = "float32"
    device: str = "auto"
    seed: int = 0
    n_jacobian: int = 16

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise FastinvError(f"unknown config keys {unknown}; known keys: {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path) -> RunConfig:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise FastinvError(f"cannot read config file {path}: {e}") from None
        d.pop("fastinv_version", None)
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: above this n, `fastinv run`'s defaults shrink so that the CPU run stays minutes long
LARGE_N = 1024


def resolved_width_epochs(cfg: RunConfig, n: int) -> tuple[int, int]:
    """Width and epochs actually used: the config's, else defaults that depend on n.

    Up to n = 1024 the default width is max(n, 64) (a layer narrower than n cannot represent a
    full-rank inverse) and 60 epochs; above it, width 1024 and 20 epochs, so that
    `fastinv run --n 4096` finishes in minutes on a CPU. Both are recorded in the metrics.
    """
    width = cfg.width if cfg.width is not None else min(max(n, 64), LARGE_N)
    epochs = cfg.epochs if cfg.epochs is not None else (60 if n <= LARGE_N else 20)
    return width, epochs


def _sizes(cfg: RunConfig, n: int) -> tuple[int, int]:
    n_test = cfg.test_samples or max(1000, 2 * n)
    n_probe = cfg.probes or max(2000, 4 * n)
    return n_test, n_probe


def memory_needed(cfg: RunConfig, n: int) -> int:
    """Bytes an experiment needs at its peak (an upper estimate).

    X, Y for the training, test and probe sets (float64), the audit's n x n matrices (peak
    RSS measured at n = 2048 and 4096: about 32 of them alive at once besides the data), the
    Jacobians, and ~0.5 GiB of interpreter and libraries. Measured peaks with the defaults:
    2.65 GiB at n = 2048, 7.9 GiB at n = 4096 (this gives 2.8 and 9.1).
    """
    n_test, n_probe = _sizes(cfg, n)
    return int(
        8 * n * 2 * (cfg.samples + n_test + n_probe) + 8 * n * n * (32 + cfg.n_jacobian) + 2**29
    )


def _logger(progress: bool):
    """Progress lines on stderr when asked, else nothing."""
    if not progress:
        return lambda msg: None
    return lambda msg: print(f"[fastinv] {msg}", file=sys.stderr, flush=True)


def run_experiment(
    cfg: RunConfig, out: Path | str | None = None, *, progress: bool = False, force: bool = False
) -> dict:
    """Run the whole experiment; write the run directory when ``out`` is given.

    Returns the metrics dict (also written to metrics.json).
    """
    from fastinv._device import resolve_device
    from fastinv.auditing.core import audit
    from fastinv.nets.training import train
    from fastinv.problem.data import generate
    from fastinv.problem.operators import make_operator
    from fastinv.problem.priors import make_prior

    log = _logger(progress)
    if out is not None:
        out = Path(out)
        check_out_dir(out, force=force)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    op = make_operator(cfg.operator, cfg.n, **cfg.operator_params)
    n = op.n
    device = resolve_device(cfg.device)
    n_test, n_probe = _sizes(cfg, n)
    check_memory(
        memory_needed(cfg, n),
        f"an experiment with n = {n} and {cfg.samples} samples",
        suggestion="use fewer --samples, a smaller --n or --jacobian-probes 0",
    )
    log(f"operator {op.name}, n = {n}: SVD")
    _ = op.svd
    timings["operator"] = time.perf_counter() - t

    t = time.perf_counter()
    prior = make_prior(cfg.prior, n, **cfg.prior_params)
    gen = dict(
        prior=cfg.prior, prior_params=cfg.prior_params, noise=cfg.noise, noise_type=cfg.noise_type
    )
    log(f"generating {cfg.samples} training, {n_test} test and {n_probe} probe pairs")
    X, Y = generate(op, n_samples=cfg.samples, seed=cfg.seed, **gen)
    X_test, Y_test = generate(op, n_samples=n_test, seed=cfg.seed + 1_000_003, **gen)
    X_probe, Y_probe = generate(op, n_samples=n_probe, seed=cfg.seed + 2_000_029, **gen)
    timings["data"] = time.perf_counter() - t

    t = time.perf_counter()
    width, epochs = resolved_width_epochs(cfg, n)
    log(
        f"training {cfg.model} (width {width}) on {device} for {epochs} epochs"
        + (" [defaults for large n; set --width/--epochs to change]" if n > LARGE_N else "")
    )
    model = train(
        Y,
        X,
        model=cfg.model,
        width=width,
        depth=cfg.depth,
        activation=cfg.activation,
        bias=cfg.bias,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        epochs=epochs,
        batch_size=cfg.batch_size,
        schedule=cfg.schedule,
        val_fraction=cfg.val_fraction,
        patience=cfg.patience,
        dtype=cfg.dtype,
        device=str(device),
        seed=cfg.seed,
        progress=progress,
    )
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    log("auditing")
    res = audit(
        model,
        op,
        probes=Y_probe,
        test=(Y_test, X_test),
        validation=(Y_probe, X_probe),
        prior=prior,
        noise={"level": cfg.noise, "type": cfg.noise_type},
        train_X=X,
        n_jacobian=cfg.n_jacobian,
        seed=cfg.seed,
        log=log,
    )
    timings["audit"] = time.perf_counter() - t

    hist = getattr(model, "fastinv_history", {}) or {}
    metrics = {
        "operator": op.to_dict(),
        "data": {
            "prior": prior.to_dict(),
            "noise": {"level": cfg.noise, "type": cfg.noise_type},
            "n_train": cfg.samples,
            "n_test": n_test,
            "n_probes": n_probe,
            "summary": (
                f"Prior {cfg.prior}, {cfg.noise_type} noise {cfg.noise:g}; {cfg.samples} "
                f"training pairs, {n_test} test pairs, {n_probe} probes."
            ),
        },
        "model": {
            "kind": cfg.model,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "device": str(device),
            "width": width,
            "epochs": epochs,
            "epochs_run": len(hist.get("train_loss", [])),
            "final_train_loss": (hist.get("train_loss") or [None])[-1],
            "test_rel_error": res.metrics["errors"].get("network"),
        },
        **res.metrics,
        "verdict": res.verdict,
    }
    metrics["timings"] = {
        **{k: round(v, 3) for k, v in timings.items()},
        "audit_detail": res.metrics["timings"],
    }
    if out is not None:
        write_run_dir(
            out,
            cfg.to_dict(),
            metrics,
            res,
            history=hist,
            log=log,
            title=f"fastinv run: {op.name}, n = {n}",
        )
    return metrics


def write_run_dir(
    out: Path, config: dict, metrics: dict, res, *, history=None, log=None, title: str
) -> None:
    """Write config.json, arrays.npz, the report and plots, and metrics.json (last)."""
    from fastinv.report.writer import write_report

    t = time.perf_counter()
    if log:
        log(f"writing the report to {out}")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {**config, "fastinv_version": _version()})
    save_npz(out / "arrays.npz", **res.arrays)
    hist_plain = {k: v for k, v in (history or {}).items() if k != "checkpoints"}
    write_report(out, metrics, res.verdict, res.arrays, history=hist_plain, title=title)
    tim = metrics.setdefault("timings", {})
    tim["report"] = round(time.perf_counter() - t, 3)
    tim["total"] = round(sum(v for v in tim.values() if isinstance(v, float)), 3)
    write_json(out / "metrics.json", metrics)


def _version() -> str:
    from fastinv import __version__

    return __version__


def load_array(path, what: str, *, n: int, key: str | None = None):
    """Load an (m, n) array of probes or targets from .npy/.npz/.csv/.txt."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise FastinvError(f"{what} file {p} not found")
    try:
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                names = list(z.keys())
                if key is None and len(names) != 1:
                    raise FastinvError(f"{what} file {p} holds arrays {names}; name one with KEY")
                arr = z[key or names[0]]
        else:
            arr = np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, ndmin=2)
    except FastinvError:
        raise
    except Exception as e:  # noqa: BLE001 - any parser failure is the user's file
        raise FastinvError(f"cannot read {what} file {p}: {e}") from None
    from fastinv._validation import check_2d, check_finite

    arr = check_2d(arr, f"{what} ({p.name})", shape=(None, n)).astype(np.float64)
    check_finite(arr, f"{what} ({p.name})")
    return arr


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
    """Audit the user's own model against their operator (`fastinv analyze`)."""
    import warnings

    from fastinv.auditing.core import audit
    from fastinv.nets.loading import load_model
    from fastinv.problem.data import generate
    from fastinv.problem.operators import make_operator
    from fastinv.problem.priors import make_prior

    log = _logger(progress)
    if out is not None:
        out = Path(out)
        check_out_dir(out, force=force)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    op = make_operator(operator, n)
    n = op.n
    _ = op.svd
    timings["operator"] = time.perf_counter() - t
    t = time.perf_counter()
    loaded = load_model(
        model_spec,
        n=n,
        arch=arch,
        arch_kwargs=arch_kwargs,
        trust_pickle=trust_pickle,
        device=device,
    )
    model = loaded.module if loaded.module is not None else loaded.fn
    timings["load_model"] = time.perf_counter() - t

    t = time.perf_counter()
    pr = None
    noise_info = None
    if probes_path is not None:
        Y = load_array(probes_path, "probes", n=n)
        X = load_array(truth_path, "targets", n=n) if truth_path is not None else None
        if X is not None and X.shape[0] != Y.shape[0]:
            raise FastinvError(
                f"targets have {X.shape[0]} rows but probes have {Y.shape[0]}; they must pair up"
            )
        if Y.shape[0] < n:
            warnings.warn(
                f"only {Y.shape[0]} probes for n = {n}: the surrogate is the minimum-norm fit "
                f"of rank ≤ {Y.shape[0]}; give at least n probes for a full-rank C",
                UserWarning,
                stacklevel=2,
            )
        # fit C on all probes (20 % held out inside for R²); the test set is the same probes
        Y_probe, Y_test, X_test = Y, Y, X
        X_probe = X
        data_summary = f"{Y.shape[0]} user probes" + (
            " with targets" if X is not None else " without targets"
        )
    else:
        pr = make_prior(prior, n, **(prior_params or {}))
        gen = dict(prior=prior, prior_params=prior_params, noise=noise, noise_type=noise_type)
        m = samples or max(2000, 4 * n)
        X_probe, Y_probe = generate(op, n_samples=m, seed=seed, **gen)
        X_test, Y_test = generate(op, n_samples=max(1000, 2 * n), seed=seed + 1_000_003, **gen)
        noise_info = {"level": noise, "type": noise_type}
        data_summary = (
            f"Probes generated: prior {prior}, {noise_type} noise {noise:g}, "
            f"{m} probes, {X_test.shape[0]} test pairs."
        )
    timings["data"] = time.perf_counter() - t

    t = time.perf_counter()
    log("auditing")
    validation = (Y_probe, X_probe) if (probes_path is None and X_probe is not None) else None
    res = audit(
        model,
        op,
        probes=Y_probe,
        test=(Y_test, X_test),
        validation=validation,
        prior=pr,
        noise=noise_info,
        train_X=X_probe if probes_path else None,
        n_jacobian=n_jacobian if loaded.module is not None else 0,
        seed=seed,
        log=log,
    )
    timings["audit"] = time.perf_counter() - t
    metrics = {
        "operator": op.to_dict(),
        "data": {"summary": data_summary},
        "model": {**loaded.to_dict(), "test_rel_error": res.metrics["errors"].get("network")},
        **res.metrics,
        "verdict": res.verdict,
    }
    metrics["timings"] = {
        **{k: round(v, 3) for k, v in timings.items()},
        "audit_detail": res.metrics["timings"],
    }
    if out is not None:
        config = dict(
            operator=operator,
            n=n,
            model=model_spec,
            arch=arch,
            arch_kwargs=arch_kwargs,
            trust_pickle=trust_pickle,
            probes=probes_path and str(probes_path),
            truth=truth_path and str(truth_path),
            prior=prior,
            prior_params=prior_params or {},
            noise=noise,
            noise_type=noise_type,
            samples=samples,
            n_jacobian=n_jacobian,
            device=device,
            seed=seed,
        )
        write_run_dir(
            out,
            config,
            metrics,
            res,
            log=log,
            title=f"fastinv analyze: {Path(model_spec).name} on {op.name}, n = {n}",
        )
    return metrics
