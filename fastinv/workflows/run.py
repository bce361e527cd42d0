"""`fastinv run` as a library call: operator → data → train → audit → report."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastinv._progress import Reporter
from fastinv._validation import check_choice, check_float, check_int, fail
from fastinv.auditing.core import network_error
from fastinv.errors import FastinvError
from fastinv.io import OutFolder, closes_out_folders
from fastinv.nets.spec import CNN_WIDTH, TrainSpec
from fastinv.workflows.memory import (
    check_run_memory,
    default_probe_sizes,
    experiment_bytes,
    operator_size,
)

__all__ = [
    "image_prior_params",
    "resolved_prior",
    "check_audit_rank",
    "needs_full_svd",
    "LARGE_N",
    "PROBE_SEED_OFFSET",
    "RunConfig",
    "RunData",
    "TEST_SEED_OFFSET",
    "memory_needed",
    "prepare_out",
    "resolved_width_epochs",
    "run_experiment",
    "sample_sizes",
    "timings_block",
]

#: seeds of the test and probe sets, offset from the training seed
TEST_SEED_OFFSET = 1_000_003
PROBE_SEED_OFFSET = 2_000_029


@dataclass
class RunConfig:
    """Everything needed to rerun an experiment (written to config.json)."""

    operator: str = "shaw"
    n: int | None = 64
    operator_params: dict = field(default_factory=dict)
    prior: str | None = None  # None: "smooth" for 1-D operators, "grf" for images
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
    #: arithmetic of the training steps: "float32", "bf16" (autocast) or "tf32" (CUDA)
    precision: str = "float32"
    device: str = "auto"
    seed: int = 0
    n_jacobian: int = 16
    #: the audit on A's k leading singular directions (None: chosen, see
    #: :func:`fastinv.auditing.core.choose_path`)
    audit_rank: int | None = None
    #: a .npy / .npz file of the user's clean images ((N, H, W) or (N, n)): the signals are
    #: drawn from it (prior "images"; ``prior`` must then be left at its default or "images")
    data: str | None = None

    def __post_init__(self) -> None:
        _validate_config(self)
        _validate_data(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        if not isinstance(d, dict):
            raise FastinvError(
                f"a run config must be a JSON object of settings, got {type(d).__name__}; "
                "use a run directory's config.json"
            )
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
        if isinstance(d, dict):
            d.pop("fastinv_version", None)
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def train_spec(self, n: int, device, *, progress: bool = False, op=None) -> TrainSpec:
        """The run's training settings at size ``n`` (width and epochs resolved for n),
        validated as :func:`fastinv.train` would validate them; ``op`` gives a CNN its image
        shape and its back-projection Aᵀ."""
        width, epochs = resolved_width_epochs(self, n)
        settings = {name: getattr(self, name) for name in _TRAIN_FIELDS}
        images = {} if op is None else {"image_shape": op.image_shape}
        if self.model == "cnn" and op is not None:
            images["backprojection"] = op
        return TrainSpec.from_dict(
            {
                **settings,
                **images,
                "model": self.model,
                "width": width,
                "epochs": epochs,
                "device": str(device),
                "progress": progress,
            }
        )

    def generation(self) -> dict:
        """The keyword arguments of :func:`fastinv.generate` that describe the data."""
        return dict(
            prior=self.prior,
            prior_params=self.prior_params,
            noise=self.noise,
            noise_type=self.noise_type,
        )


def _validate_config(cfg: RunConfig) -> None:
    """Check every field's type and range (as config.json may give them), store a matrix
    file's absolute path, and check the training settings as :func:`fastinv.train` would."""
    from fastinv.problem.files import LOADABLE_SUFFIXES

    if isinstance(cfg.operator, os.PathLike):
        cfg.operator = os.fspath(cfg.operator)
    if not isinstance(cfg.operator, str) or not cfg.operator.strip():
        raise fail("operator", "a catalogue name or a matrix file path", cfg.operator)
    if cfg.operator.strip().lower().endswith(LOADABLE_SUFFIXES) and Path(cfg.operator).exists():
        cfg.operator = str(Path(cfg.operator).resolve())
    for name in ("operator_params", "prior_params"):
        if not isinstance(getattr(cfg, name), dict):
            raise fail(name, "a JSON object of KEY: VALUE parameters", getattr(cfg, name))
    if cfg.prior is not None and not isinstance(cfg.prior, str):
        raise fail("prior", "a string (or null for the operator's default)", cfg.prior)
    for name in ("noise_type", "model", "activation", "optimizer", "schedule"):
        if not isinstance(getattr(cfg, name), str):
            raise fail(name, "a string", getattr(cfg, name))
    check_choice(cfg.noise_type, "noise_type", ("relative", "absolute"), normalize=False)
    cfg.noise = check_float(cfg.noise, "noise", lo=0)
    for name, lo in _INT_FIELDS:
        value = getattr(cfg, name)
        if value is not None or name in ("samples", "n_jacobian"):
            setattr(cfg, name, check_int(value, name, lo=lo, integral_float=True))
    if cfg.audit_rank is not None:
        cfg.audit_rank = check_audit_rank(cfg.audit_rank, cfg.n)
    cfg.train_spec(cfg.n or 64, "cpu")  # the training settings, checked without torch


def _validate_data(cfg: RunConfig) -> None:
    """``data``: None, or an existing .npy / .npz file (stored as an absolute path); with it
    the prior is "images" (another prior than the default is refused)."""
    if cfg.data is None:
        return
    if isinstance(cfg.data, os.PathLike):
        cfg.data = os.fspath(cfg.data)
    if not isinstance(cfg.data, str) or not cfg.data.strip().lower().endswith((".npy", ".npz")):
        raise fail("data", "the path of a .npy or .npz file of clean images", cfg.data)
    if not Path(cfg.data).is_file():
        raise FastinvError(f"data: no such file: {cfg.data}; check the path")
    cfg.data = str(Path(cfg.data).resolve())
    if cfg.prior not in (None, "smooth", "images"):
        raise FastinvError(
            f"data (the signals) and prior {cfg.prior!r} were both given; drop the prior: "
            "the signals are drawn from the images"
        )
    cfg.prior = "images"


#: the RunConfig fields that are integers (None allowed unless listed in _validate_config)
#: and their least value
_INT_FIELDS = (
    ("n", 1),
    ("samples", 2),
    ("test_samples", 1),
    ("probes", 2),
    ("width", 1),
    ("epochs", 0),
    ("n_jacobian", 0),
)


#: above this n, `fastinv run`'s defaults shrink so that the CPU run stays minutes long
LARGE_N = 1024

#: the RunConfig fields that are training settings (:class:`fastinv.TrainSpec`) unchanged
_TRAIN_FIELDS = (
    "depth",
    "activation",
    "bias",
    "optimizer",
    "lr",
    "batch_size",
    "schedule",
    "val_fraction",
    "patience",
    "dtype",
    "precision",
    "seed",
)


def resolved_width_epochs(cfg: RunConfig, n: int) -> tuple[int, int]:
    """Width and epochs actually used: the config's, else defaults that depend on n.

    Up to n = 1024 the default width is max(n, 64) (a layer narrower than n cannot represent a
    full-rank inverse) and 60 epochs; above it, width 1024 and 20 epochs, so that
    `fastinv run --n 4096` finishes in minutes on a CPU. Both are recorded in the metrics.
    """
    if cfg.model == "cnn":  # width = channels of the convolutions
        width = cfg.width if cfg.width is not None else CNN_WIDTH
    else:
        width = cfg.width if cfg.width is not None else min(max(n, 64), LARGE_N)
    epochs = cfg.epochs if cfg.epochs is not None else (60 if n <= LARGE_N else 20)
    return width, epochs


def check_audit_rank(rank, n) -> int:
    """The audit rank k: a positive integer, at most n when n is known from the arguments."""
    from fastinv.auditing.topk import check_rank

    known = isinstance(n, int) and not isinstance(n, bool)
    what = "audit rank (--audit-rank)"  # a config file may hold 4.0
    return check_rank(rank, None, n if known else None, what=what, integral_float=True)


def needs_full_svd(op, rank) -> bool:
    """Whether the audit will use the dense A's full SVD (computed up front, in the operator
    stage): a dense A small enough for it and no audit rank; structured and matrix-free
    operators get their spectra from the structure or from the top-k audit."""
    from fastinv.auditing.topk import DENSE_BASIS_MAX

    return op.structure == "dense" and rank is None and op.n <= DENSE_BASIS_MAX


def sample_sizes(cfg: RunConfig, n: int) -> tuple[int, int]:
    """Test pairs and probes of a run: the config's, else max(1000, 2n) and max(2000, 4n)
    for the dense audit, 1000 and more than 8 fitted rows per direction for the top-k audit
    (:func:`fastinv.workflows.memory.default_probe_sizes`)."""
    n_probe, n_test = default_probe_sizes(n, rank=cfg.audit_rank)
    return cfg.test_samples or n_test, cfg.probes or n_probe


def memory_needed(cfg: RunConfig, n: int) -> int:
    """Bytes an experiment needs at its peak (an upper estimate).

    X, Y for the training, test and probe sets (float64), the audit's n x n matrices (peak
    RSS measured at n = 2048 and 4096: about 32 of them alive at once besides the data), the
    Jacobians, and ~0.5 GiB of interpreter and libraries. Measured peaks with the defaults:
    2.65 GiB at n = 2048, 7.9 GiB at n = 4096 (this gives 2.8 and 9.1).
    """
    n_test, n_probe = sample_sizes(cfg, n)
    rows = cfg.samples + n_test + n_probe
    return experiment_bytes(
        n, rows=rows, n_jacobian=cfg.n_jacobian, rank=cfg.audit_rank, operator=cfg.operator
    )


@dataclass
class RunData:
    """The training, test and probe pairs of a run (rows: samples) and the prior they share."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    X_probe: np.ndarray
    Y_probe: np.ndarray
    prior: object


def prepare_out(out, *, force: bool, command: str = "run") -> OutFolder | None:
    """``out`` opened to be published whole (:class:`fastinv.io.OutFolder`; None without
    ``out``): refused up front, in one line, when it is a file or lies under one, cannot be
    written, holds files and ``force`` is not given, or another process is writing it.

    Call it inside a function decorated with :func:`fastinv.io.closes_out_folders`, which
    releases the folder should the function fail before the folder is published."""
    if out is None:
        return None
    return OutFolder(out, force=force, command=command).open()


def timings_block(timings: dict[str, float], audit_timings: dict) -> dict:
    """The ``timings`` of metrics.json: each stage's seconds (rounded) and the audit's own."""
    return {**{k: round(v, 3) for k, v in timings.items()}, "audit_detail": audit_timings}


@closes_out_folders
def run_experiment(
    cfg: RunConfig, out: Path | str | None = None, *, progress: bool = False, force: bool = False
) -> dict | None:
    """Run the whole experiment; write the run directory when ``out`` is given.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the training is data-parallel
    (:mod:`fastinv.nets.distributed`): every rank trains on its own rows, rank 0 audits and
    writes, and the other ranks return None.

    Parameters
    ----------
    cfg : RunConfig
        The experiment.
    out : path, optional
        The run directory (config.json, arrays.npz, report, plots, metrics.json).
    progress : bool
        Progress lines and a training bar on stderr.
    force : bool
        Replace the files fastinv writes in an ``out`` that already holds files.

    Returns
    -------
    dict or None
        The metrics (also written to metrics.json); None on a torchrun rank other than 0.
    """
    from fastinv._device import resolve_device
    from fastinv.nets.distributed import detect

    env = detect()  # under torchrun: this rank (only rank 0 reports, audits and writes)
    root = env is None or env.is_root
    rep = Reporter(progress and root, prefix="fastinv")
    planned = operator_size(cfg.operator, cfg.n, cfg.operator_params.get("key"))
    if planned is not None:  # from the arguments alone: nothing is built yet
        _check_run_memory(cfg, planned)
    out = prepare_out(out, force=force) if root else None
    device = resolve_device(cfg.device)  # loads torch: outside the timed stages
    with rep.stage("operator"):
        op = _make_operator(cfg)
        if planned != op.n:
            _check_run_memory(cfg, op.n)
        _refuse_zero_operator(op)
        if root and needs_full_svd(op, cfg.audit_rank):
            rep(f"operator {op.name}, n = {op.n}: SVD")
            _ = op.svd
        else:
            rep(f"operator {op.name}, n = {op.n} ({op.structure})")
    moments = None  # the surrogate's moments, when the ranks of torchrun accumulated them
    if env is not None:
        model, data, moments = _train_data_parallel(cfg, op, device, rep, env)
        if not root:
            return None
    else:
        with rep.stage("data"):
            data = _generate_data(cfg, op, rep)
        with rep.stage("train"):
            model = _train(cfg, op, data, device, rep)
    with rep.stage("audit", "auditing"):
        res = _audit(cfg, model, op, data, rep, moments)
    metrics = _run_metrics(cfg, op, data, model, device, res)
    metrics["timings"] = timings_block(rep.timings, res.metrics["timings"])
    if out is not None:
        from fastinv.report.writer import write_run_dir

        history = getattr(model, "fastinv_history", {}) or {}
        title = f"fastinv run: {op.name}, n = {op.n}"
        write_run_dir(out, cfg.to_dict(), metrics, res, history=history, log=rep, title=title)
    return metrics


def _make_operator(cfg: RunConfig):
    from fastinv.problem.operators import make_operator

    return make_operator(cfg.operator, cfg.n, **cfg.operator_params)


def _refuse_zero_operator(op) -> None:
    """An all-zero A is refused before any data or training: nothing can be inverted."""
    from fastinv.auditing.sections import is_zero_operator

    if is_zero_operator(op):
        raise FastinvError(
            f"the operator A ({op.name}) is all zeros: y = A x + e holds no information "
            "about x and there is nothing to invert; check the matrix"
        )


def _check_run_memory(cfg: RunConfig, n: int) -> None:
    n_test, n_probe = sample_sizes(cfg, n)
    check_run_memory(
        n,
        samples=cfg.samples,
        n_test=n_test,
        n_probe=n_probe,
        n_jacobian=cfg.n_jacobian,
        rank=cfg.audit_rank,
        operator=cfg.operator,
    )


def _generate_data(cfg: RunConfig, op, rep: Reporter, rows=None, gen=None) -> RunData:
    """The prior and the training, test and probe pairs (three seeds); with ``rows``
    ``(lo, hi)`` only those rows of the training set (test and probe sets left None).
    ``gen``: :func:`_generation`'s arguments when the caller built them already."""
    from fastinv.problem.data import generate

    n_test, n_probe = sample_sizes(cfg, op.n)
    gen = _generation(cfg, op) if gen is None else gen
    prior = gen["prior"]
    if rows is not None:
        X, Y = generate(op, n_samples=rows[1] - rows[0], seed=cfg.seed, start=rows[0], **gen)
        return RunData(X, Y, None, None, None, None, prior)
    rep(f"generating {cfg.samples} training, {n_test} test and {n_probe} probe pairs")
    sets = [
        generate(op, n_samples=m, seed=cfg.seed + offset, **gen)
        for m, offset in (
            (cfg.samples, 0),
            (n_test, TEST_SEED_OFFSET),
            (n_probe, PROBE_SEED_OFFSET),
        )
    ]
    (X, Y), (X_test, Y_test), (X_probe, Y_probe) = sets
    return RunData(X, Y, X_test, Y_test, X_probe, Y_probe, prior)


def _generation(cfg: RunConfig, op) -> dict:
    """The keyword arguments of :func:`fastinv.problem.data.generate` for the run: noise,
    seeds' stream and the prior (built for the operator's signal shape)."""
    from fastinv.problem.priors import make_prior

    name = resolved_prior(cfg.prior, op)
    prior = make_prior(name, op.n, **image_prior_params(name, cfg.prior_params, op, cfg.data))
    return {**cfg.generation(), "prior": prior, "prior_params": None}


def resolved_prior(prior: str | None, op) -> str:
    """The prior's name: ``prior``, else "grf" (a 2-D random field) for an operator on images
    and "smooth" for a 1-D one (the default of `fastinv run` and `fastinv analyze`)."""
    if prior is not None:
        return prior
    return "grf" if getattr(op, "image_shape", None) is not None else "smooth"


def image_prior_params(name: str, params: dict | None, op, data=None) -> dict:
    """The prior's parameters, with the operator's image shape and the ``data`` file added
    for the image priors (grf, shapes, images) when ``params`` does not set them."""
    from fastinv.problem.image_priors import IMAGE_PRIORS

    params = dict(params or {})
    if name not in IMAGE_PRIORS:
        return params
    shape = getattr(op, "image_shape", None)
    if shape is not None and "image_shape" not in params and "shape" not in params:
        params["image_shape"] = tuple(shape)
    if name == "images" and data is not None:
        params.setdefault("images", data)
    return params


def _train(cfg: RunConfig, op, data: RunData, device, rep: Reporter, shard=None):
    """The network, trained on the training pairs (width and epochs resolved for n);
    ``shard``: the rows ``data`` holds of the training set, under torchrun."""
    from fastinv.nets.training import train

    n = op.n
    width, epochs = resolved_width_epochs(cfg, n)
    image = f", images {op.image_shape[0]}x{op.image_shape[1]}" if op.image_shape else ""
    rep(
        f"training {cfg.model} (width {width}{image}) on {device} for {epochs} epochs"
        + (" [defaults for large n; set --width/--epochs to change]" if n > LARGE_N else "")
    )
    spec = cfg.train_spec(n, device, progress=rep.enabled, op=op)
    return train(data.Y, data.X, spec=spec, shard=shard)


def _train_data_parallel(cfg: RunConfig, op, device, rep: Reporter, env):
    """Under torchrun: each rank generates its own rows of the training set, trains a
    DistributedDataParallel copy and accumulates the surrogate's moments on its rows of the
    probe set (merged on rank 0); rank 0 then generates the test and probe sets (and all of
    X, for the audit's sample moments), so its audit is the single-process one.

    Returns (model, data, moments): data and moments None on the other ranks; moments None
    when the audit takes the top-k path."""
    from fastinv.nets.distributed import RowShard, process_group, rank_device, row_range

    device = rank_device(env, device)
    lo, hi = row_range(cfg.samples, env.rank, env.world_size)
    with process_group(env, device):
        with rep.stage("data"):
            rep(f"rank {env.rank} of {env.world_size}: training rows {lo} .. {hi}")
            gen = _generation(cfg, op)  # the prior, built once for all three draws
            shard = _generate_data(cfg, op, rep, rows=(lo, hi), gen=gen)
        with rep.stage("train"):
            model = _train(cfg, op, shard, device, rep, RowShard(lo, cfg.samples))
        del shard
        with rep.stage("surrogate"):
            moments = _surrogate_moments_on_ranks(cfg, op, model, env, rep, gen)
    if not env.is_root:
        return model, None, None
    with rep.stage("data"):
        data = _generate_data(cfg, op, rep, gen=gen)
    return model, data, moments


def _surrogate_moments_on_ranks(cfg: RunConfig, op, model, env, rep: Reporter, gen: dict):
    """The moments of the dense audit's surrogate fit, each rank evaluating the network on
    its rows of the probe set (those not held out), merged on rank 0 (None elsewhere).
    None everywhere when rank 0's audit takes the top-k path (rank 0 decides: the memory
    check reads its own machine)."""
    from fastinv.nets.distributed import (
        allreduce_moments,
        broadcast_from_root,
        collectively,
        row_range,
    )

    path = collectively(lambda: _audit_path(cfg, op) if env.is_root else None)
    if broadcast_from_root(path) != "dense":
        return None
    _, n_probe = sample_sizes(cfg, op.n)
    lo, hi = row_range(n_probe, env.rank, env.world_size)
    rep(f"surrogate moments on {env.world_size} ranks: probe rows {lo} .. {hi} here")
    part = collectively(_probe_moments, cfg, op, model, (lo, hi), n_probe, gen)
    return allreduce_moments(part, dst=0)


def _audit_path(cfg: RunConfig, op) -> str:
    """ "dense" or "top-k": the path :func:`fastinv.auditing.core.audit` will take."""
    from fastinv.auditing.core import choose_path

    n_test, n_probe = sample_sizes(cfg, op.n)
    return choose_path(op.n, n_probe, n_test, rank=cfg.audit_rank, m=op.m).path


def _probe_moments(cfg: RunConfig, op, model, rows: tuple[int, int], n_probe: int, gen: dict):
    """This rank's rows of the probe set, drawn as the single process draws them (``gen``:
    :func:`_generation`'s arguments), and the moments of the network's outputs on those of
    them the surrogate is fitted on."""
    from fastinv.auditing.sections import surrogate_holdout
    from fastinv.linalg.surrogate import surrogate_moments
    from fastinv.problem.data import generate

    lo, hi = rows
    _, Y = generate(op, n_samples=hi - lo, seed=cfg.seed + PROBE_SEED_OFFSET, start=lo, **gen)
    holdout = surrogate_holdout(n_probe)
    return surrogate_moments(
        model, Y, start=lo, total=n_probe, holdout=holdout, seed=cfg.seed, n_out=op.n
    )


def _audit(cfg: RunConfig, model, op, data: RunData, rep: Reporter, moments=None):
    """The audit of the trained network (``moments``: its surrogate's, from the ranks)."""
    from fastinv.auditing.core import audit

    return audit(
        model,
        op,
        probes=data.Y_probe,
        test=(data.Y_test, data.X_test),
        validation=(data.Y_probe, data.X_probe),
        prior=data.prior,
        noise={"level": cfg.noise, "type": cfg.noise_type},
        train_X=data.X,
        n_jacobian=cfg.n_jacobian,
        rank=cfg.audit_rank,
        seed=cfg.seed,
        log=rep,
        surrogate_moments=moments,
    )


def _run_metrics(cfg: RunConfig, op, data: RunData, model, device, res) -> dict:
    """metrics.json of a run, without its timings."""
    n_test, n_probe = sample_sizes(cfg, op.n)
    return {
        "operator": op.to_dict(),
        "data": {
            "prior": data.prior.to_dict(),
            "noise": {"level": cfg.noise, "type": cfg.noise_type},
            "n_train": cfg.samples,
            "n_test": n_test,
            "n_probes": n_probe,
            "summary": (
                f"Prior {data.prior.name}, {cfg.noise_type} noise {cfg.noise:g}; {cfg.samples} "
                f"training pairs, {n_test} test pairs, {n_probe} probes."
            ),
        },
        "model": _model_metrics(cfg, op.n, model, device, res),
        **res.metrics,
        "verdict": res.verdict,
    }


def _speed_metrics(model) -> dict:
    """How the network was trained: precision, optimizer kernel, data-parallel ranks."""
    conf = getattr(model, "fastinv_config", {}) or {}
    keys = ("precision", "precision_note", "optimizer_impl", "world_size")
    return {k: conf[k] for k in keys if k in conf}


def _model_metrics(cfg: RunConfig, n: int, model, device, res) -> dict:
    hist = getattr(model, "fastinv_history", {}) or {}
    width, epochs = resolved_width_epochs(cfg, n)
    return {
        "kind": cfg.model,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "device": str(device),
        "width": width,
        "epochs": epochs,
        "epochs_run": len(hist.get("train_loss", [])),
        "final_train_loss": (hist.get("train_loss") or [None])[-1],
        **_speed_metrics(model),
        "test_rel_error": network_error(res.metrics),
    }
