"""The training loop: fit a torch network x ≈ f(y) on sample pairs (rows of Y and X).

Loss convention
---------------
Every optimisation step minimises, over its batch B of rows,

    objective = 1/(2|B|) * sum_{i in B} ||f(y_i) - x_i||^2

(squared error summed over the n components, averaged over the samples, times 1/2), plus
``weight_decay/2 * ||theta||^2`` when ``weight_decay > 0`` (torch's coupled L2 decay).
With this scaling, full-batch gradient descent (``optimizer="gd"``) with step ``lr = eta`` on a
bias-free linear model f(y) = W y started from W = 0 is exactly Landweber iteration:

    W_{t+1} = W_t - eta * (W_t YᵀY/N - XᵀY/N),   W_t = eta XᵀY/N * sum_{k<t} (I - eta YᵀY/N)^k.

The losses reported in the history use the same objective: ``train_loss`` of an epoch is the
sample-weighted mean of the batch objectives seen during the epoch (each evaluated before its
step; with one full batch it is the objective of the weights at the start of the epoch), and
``val_loss`` is the objective on the held-out rows after the epoch.

Reproducibility: the weights are drawn from a seeded CPU ``torch.Generator``; the
train/validation split and the per-epoch shuffles come from two more generators derived from
the same seed. The global torch and NumPy RNG states are neither used nor changed, so on the
CPU the same seed (and the same thread count) gives bitwise the same weights. CUDA kernels
may add nondeterminism of rounding size.

:func:`train` reads as its steps: check the data, settle the settings (:class:`TrainSpec`),
build the network, plan memory (:func:`fastinv.nets.memory.plan_memory`), then under
:func:`torch_settings` load the data, evaluate the start, run the epochs (each one
:func:`_train_epoch` plus early stopping) and record the history and config.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from fastinv._device import dtype_name, resolve_device
from fastinv._device import torch_dtype as resolve_dtype
from fastinv._progress import Reporter, Stopwatch
from fastinv._validation import check_2d, check_finite, check_int
from fastinv.errors import FastinvError
from fastinv.io import available_memory as _host_available_bytes
from fastinv.nets.distributed import RowShard, allreduce_sum, check_shards, world
from fastinv.nets.memory import eval_rows, plan_memory
from fastinv.nets.models import make_model
from fastinv.nets.spec import OPTIMIZERS, PRECISIONS, SCHEDULES, TrainSpec

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "RowShard",
    "TrainSpec",
    "predict",
    "torch_settings",
    "train",
]

_EVAL_ROWS = 8192  # rows per forward pass when evaluating without gradients
_TRAIN_ARGS = frozenset(TrainSpec.field_names())


# --------------------------------------------------------------------------- train
def train(
    Y: np.ndarray,
    X: np.ndarray,
    *,
    spec: TrainSpec | None = None,
    shard: RowShard | None = None,
    **kwargs,
) -> nn.Module:
    """Train a network f with x ≈ f(y) on the rows of (Y, X).

    The objective of every step is ``1/(2|B|) * sum_{i in B} ||f(y_i) - x_i||^2`` over the
    batch B (components summed, samples averaged, factor 1/2; see the module docstring), so
    ``optimizer="gd"`` with ``lr=eta`` on ``model="linear", bias=False, init="zeros"`` is
    Landweber iteration W_{t+1} = W_t - eta (W_t YᵀY/N - XᵀY/N) with one step per epoch.

    Parameters
    ----------
    Y : ndarray of shape (N, n)
        Measurements (network inputs), one sample per row.
    X : ndarray of shape (N, n_out)
        Signals (targets), one sample per row (usually n_out = n).
    spec : TrainSpec, optional
        All the settings below at once (see :class:`~fastinv.nets.spec.TrainSpec`); keyword
        arguments given as well replace the spec's values.
    model : {"mlp", "linear", "residual", "cnn"} or torch.nn.Module, default "mlp"
        A name is built by :func:`fastinv.nets.models.make_model` with ``width``, ``depth``,
        ``activation``, ``bias``, ``init`` and ``seed`` (and, for ``"cnn"``, ``image_shape``
        and ``backprojection``; those arguments are ignored for a module). A module mapping
        (m, n) to (m, n_out) is trained in place (moved to ``device`` and ``dtype``) and
        returned.
    width, depth, activation, bias, init : default None, 2, "relu", True, "default"
        Passed to :func:`~fastinv.nets.models.make_model` (width None: ``max(n, 64)``; 32
        channels for ``"cnn"``).
    image_shape : tuple (H, W) or (C, H, W), optional
        The image shape of x, for ``model="cnn"`` (recorded in the config for any model).
    backprojection : array (n_out, n) or operator, optional
        ``model="cnn"`` only: the fixed back-projection Aᵀ the CNN post-processes (an
        operator A is made dense once); None: the CNN works on y (n = n_out).
    optimizer : {"adam", "gd", "sgd"}, default "adam"
        ``"adam"``: torch.optim.Adam. ``"gd"``: plain gradient descent, torch.optim.SGD with
        momentum 0 (unless ``momentum`` is given) on the FULL training set, one step per
        epoch — ``batch_size`` is ignored. ``"sgd"``: mini-batch SGD with momentum 0.9 unless
        ``momentum`` is given.
    lr : float, default 1e-3
        Base learning rate (> 0); the step size eta for ``"gd"``.
    momentum : float, optional
        Momentum in [0, 1) for ``"gd"``/``"sgd"`` (defaults 0 and 0.9); not allowed for Adam.
    epochs : int, default 100
        Passes over the training set (>= 0; 0 returns the initial model).
    batch_size : int or None, default 256
        Rows per step. None or >= the number of training rows: full batch (no shuffling,
        one step per epoch). Otherwise the rows are reshuffled every epoch from a seeded
        generator and the last batch may be smaller (each step averages over its own rows).
    schedule : {"constant", "cosine", "step"}, default "constant"
        Learning rate per epoch e = 0..epochs-1: constant; ``lr * (1 + cos(pi e/epochs))/2``;
        or ``lr`` times 0.1 from epoch ``epochs//2`` and 0.01 from ``3*epochs//4``.
    weight_decay : float, default 0
        L2 penalty ``weight_decay/2 * ||theta||^2`` added to the objective (all parameters,
        biases included; torch's coupled decay for every optimizer).
    val_fraction : float in [0, 1), default 0.1
        Share of rows held out (chosen at random from ``seed``) for the validation loss.
    patience : int, optional
        Early stopping: stop after ``patience`` epochs without a strict improvement of the
        validation loss, and in any case restore the weights of the best validation loss
        (the initial weights count as epoch 0). Needs ``val_fraction > 0``.
    dtype : "float32", "float64", torch dtype or None
        Precision of parameters, data and arithmetic. None: float32 for a named model, the
        module's own floating dtype for a module.
    device : "auto", "cpu", "cuda" or "cuda:N", default "auto"
        See :func:`fastinv._device.resolve_device`. The data are moved to the device once
        when they fit (estimated first); otherwise they stay in host memory and each batch is
        copied over. If even the host cannot hold them, or the model does not fit on the
        device, :class:`FastinvError` says so before anything is allocated.
    seed : int, default 0
        Seeds the initial weights, the validation split and the shuffles.
    progress : bool, default False
        Show a progress bar on stderr (tqdm if installed); quiet otherwise.
    checkpoints : sequence of int, optional
        Epochs (0 = initial weights) at which a CPU copy of the state_dict is stored in
        ``history["checkpoints"]``; epochs never reached (early stop) are missing.
    callback : callable, optional
        ``callback(epoch, logs, model)`` after each epoch, ``logs`` a dict with
        ``train_loss``, ``val_loss``, ``lr``, ``time``; a truthy return value stops training.
    num_threads : int, optional
        torch CPU threads for this call (restored afterwards); None leaves the setting alone.
    matmul_precision : {"highest", "high", "medium"}, optional
        ``torch.set_float32_matmul_precision`` for this call ("high" allows TF32 on CUDA),
        restored afterwards; None leaves the setting alone.
    precision : {"float32", "bf16", "tf32"}, default "float32"
        Arithmetic of the training steps (float32 weights only). ``"bf16"``: forward pass
        under ``torch.autocast`` to bfloat16 (CPU and CUDA), the loss and the optimizer in
        float32; ``"tf32"``: TF32 matrix products on CUDA (matmul precision "high"), plain
        float32 on the CPU (the config notes it). Losses in the history, predictions and the
        audit are always evaluated in float32.
    shard : RowShard, optional
        Data-parallel training under torchrun (a joined process group, see
        :mod:`fastinv.nets.distributed`): Y and X are the rows ``shard.start ..`` of a data
        set of ``shard.total`` rows, the ranks' rows tiling it in rank order. Every rank
        trains a DistributedDataParallel copy; validation split, shuffles, batches, losses
        and steps are those of one process on all rows (up to the rounding of sums), and every
        rank returns the same model.

    The Adam step is torch's fused kernel where torch has one for the device and dtype
    (CPU and CUDA, float32/float64), else the for-each one. It rounds differently from the
    for-each step (about one float32 ulp per step); the same seed still gives bitwise the same
    weights.

    Returns
    -------
    torch.nn.Module
        The trained module, in eval mode, on its device, with attributes

        ``fastinv_history`` : dict with lists ``epoch``, ``train_loss``, ``val_loss`` (None
        entries without validation rows), ``lr``, ``time`` (seconds since the first epoch
        started, at each epoch's end); scalars ``initial_train_loss``, ``initial_val_loss``,
        ``best_epoch``, ``best_val_loss``, ``stopped_early``, ``stop_reason``, ``n_steps``,
        ``data_on_device``, ``setup_time``; and ``checkpoints`` {epoch: state_dict on CPU}
        (tensors, not JSON).

        ``fastinv_config`` : the arguments and data sizes as plain values.

    Raises
    ------
    FastinvError
        Bad shapes, non-finite data, out-of-range arguments, a model whose output shape is
        not (m, n_out), data too large for memory, or a diverging loss.
    """
    setup = Stopwatch()
    Y, X = _check_pairs(Y, X)
    spec = _as_spec(spec, kwargs)
    dev = resolve_device(spec.device)
    net, tdtype, model_name = _build_network(spec, Y.shape[1], X.shape[1])
    _check_precision(spec, tdtype)
    dp = _Parallel.of(shard, Y.shape[0])
    sizes = _Sizes.of(spec, Y.shape[0] if dp is None else dp.total, Y.shape[1], X.shape[1])
    on_device = _plan_memory(spec, net, Y, X, sizes, dev, tdtype)
    with torch_settings(
        num_threads=spec.num_threads, matmul_precision=_matmul_precision(spec, dev)
    ):
        net.to(device=dev, dtype=tdtype)
        _probe(net, Y, X.shape[1], dev, tdtype)
        data = _load_data(Y, X, spec, sizes, dev, tdtype, on_device, dp)
        run = _Run(spec, net, dev, tdtype, sizes, data, _new_history(on_device), dp=dp)
        run.fwd = _wrap_parallel(net, dev, dp, spec.epochs)
        opt, run.optimizer_impl = _make_optimizer(net, spec)
        _evaluate_start(run)
        run.history["setup_time"] = setup.seconds
        _run_epochs(run, opt)
        if spec.keep_best and run.best_state is not None:
            net.load_state_dict(run.best_state)
    net.fastinv_history = run.history
    net.fastinv_config = _config_dict(spec, net, model_name, tdtype, dev, sizes)
    net.fastinv_config.update(_speed_config(spec, dev, run))
    return net.eval()


# --------------------------------------------------------------------------- setup steps
def _check_pairs(Y, X) -> tuple[np.ndarray, np.ndarray]:
    """Y and X as 2-D arrays of finite numbers with the same (non-zero) number of rows."""
    Y = check_2d(Y, "Y")
    X = check_2d(X, "X")
    if Y.shape[0] != X.shape[0]:
        raise FastinvError(
            f"Y and X must have the same number of rows (samples), got Y {Y.shape} and X "
            f"{X.shape}; pass matching pairs (y_i, x_i) as rows"
        )
    if Y.shape[0] == 0:
        raise FastinvError("Y and X have no rows; pass at least one training sample")
    check_finite(Y, "Y")
    check_finite(X, "X")
    return Y, X


def _as_spec(spec: TrainSpec | None, kwargs: dict) -> TrainSpec:
    """The settings: ``spec`` (or the defaults) with the keyword arguments put in."""
    unknown = sorted(set(kwargs) - _TRAIN_ARGS)
    if unknown:
        raise TypeError(f"train() got an unexpected keyword argument {unknown[0]!r}")
    if spec is None:
        return TrainSpec(**kwargs)
    if not isinstance(spec, TrainSpec):
        raise FastinvError(f"spec must be a TrainSpec, got {type(spec).__name__}")
    return dataclasses.replace(spec, **kwargs) if kwargs else spec


def _build_network(spec: TrainSpec, n_in: int, n_out: int) -> tuple[nn.Module, torch.dtype, str]:
    """The network to train, its dtype, and its name for the config."""
    if isinstance(spec.model, str):
        tdtype = resolve_dtype("float32" if spec.dtype is None else spec.dtype)
        image = {}
        if spec.model == "cnn":
            image = {"image_shape": spec.image_shape, "backprojection": spec.backprojection}
        net = make_model(
            spec.model,
            n_in,
            n_out=n_out,
            width=spec.width,
            depth=spec.depth,
            activation=spec.activation,
            bias=spec.bias,
            init=spec.init,
            dtype=tdtype,
            seed=spec.seed,
            **image,
        )
        return net, tdtype, spec.model
    net = spec.model
    if spec.dtype is None:
        fp = [p.dtype for p in net.parameters() if p.is_floating_point()]
        tdtype = fp[0] if fp and fp[0] in (torch.float32, torch.float64) else torch.float32
    else:
        tdtype = resolve_dtype(spec.dtype)
    if not any(p.requires_grad for p in net.parameters()) and spec.epochs > 0:
        raise FastinvError(
            "the model has no trainable parameters; pass a module with parameters or epochs=0"
        )
    return net, tdtype, f"custom:{type(net).__name__}"


def _check_precision(spec: TrainSpec, tdtype: torch.dtype) -> None:
    """bf16/tf32 speed up float32 training only (a module's own dtype may be float64)."""
    if spec.precision != "float32" and tdtype != torch.float32:
        raise FastinvError(
            f"precision={spec.precision!r} speeds up float32 training, but the model is "
            f"{dtype_name(tdtype)}; pass dtype='float32' or precision='float32'"
        )


def _matmul_precision(spec: TrainSpec, dev: torch.device) -> str | None:
    """The float32 matmul precision to set: the spec's, or "high" (TF32) for tf32 on CUDA."""
    if spec.matmul_precision is None and spec.precision == "tf32" and dev.type == "cuda":
        return "high"
    return spec.matmul_precision


@dataclass(frozen=True)
class _Parallel:
    """Data-parallel training: this rank, the ranks, and the global rows this rank holds."""

    rank: int
    size: int
    start: int  # global index of the first local row
    rows: int  # local rows
    total: int  # rows of all ranks together

    @classmethod
    def of(cls, shard: RowShard | None, rows: int) -> _Parallel | None:
        """None without a shard; else the joined group's rank and size, shards checked."""
        if shard is None:
            return None
        if not isinstance(shard, RowShard):
            raise FastinvError(f"shard must be a RowShard or None, got {type(shard).__name__}")
        rank, size = world()
        check_shards(shard, rows)
        return cls(rank, size, int(shard.start), int(rows), int(shard.total))


def _wrap_parallel(net: nn.Module, dev: torch.device, dp: _Parallel | None, epochs: int):
    """The module the training steps call: ``net``, or a DistributedDataParallel copy sharing
    its parameters (buffers are equal on every rank and not re-broadcast)."""
    if dp is None or epochs == 0:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [dev.index if dev.index is not None else 0] if dev.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids, **_no_buffer_sync(DistributedDataParallel))


def _no_buffer_sync(ddp) -> dict:
    """DDP's option that stops the per-forward buffer broadcast: ``forward_sync_buffers``
    where this torch has it (``broadcast_buffers`` is deprecated there, with a warning on
    every rank), else ``broadcast_buffers``."""
    import inspect

    params = inspect.signature(ddp.__init__).parameters
    key = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return {key: False}


@dataclass(frozen=True)
class _Sizes:
    """Rows of the data, of the validation and training sets and per step; widths."""

    n_samples: int
    n_in: int
    n_out: int
    n_val: int
    n_train: int
    batch: int  # rows per step (n_train for full batch)
    full_batch: bool

    @classmethod
    def of(cls, spec: TrainSpec, N: int, n_in: int, n_out: int) -> _Sizes:
        n_val = 0
        if spec.val_fraction > 0:
            n_val = min(max(1, int(round(spec.val_fraction * N))), N - 1)
            if n_val < 1:
                raise FastinvError(
                    f"val_fraction={spec.val_fraction} leaves no training rows with N={N}; "
                    "use more samples or val_fraction=0"
                )
        n_train = N - n_val
        bs = spec.batch_size
        full = spec.optimizer == "gd" or bs is None or bs >= n_train
        return cls(N, n_in, n_out, n_val, n_train, n_train if full else int(bs), full)


def _plan_memory(spec, net, Y, X, sizes: _Sizes, dev, tdtype) -> bool:
    """Whether the data go to the device once (:func:`plan_memory` with this run's sizes)."""
    zero_copy = (
        dev.type == "cpu"
        and sizes.n_val == 0
        and Y.dtype == X.dtype == np.dtype(dtype_name(tdtype))
    )
    itemsize = torch.empty((), dtype=tdtype).element_size()
    evaluation = eval_rows(net, Y.shape[1], X.shape[1], itemsize, cap=_EVAL_ROWS)
    return plan_memory(
        net,
        rows=Y.shape[0],
        batch_rows=max(sizes.batch, min(evaluation, Y.shape[0])),
        n_in=Y.shape[1],
        n_out=X.shape[1],
        itemsize=itemsize,
        optimizer=spec.optimizer,
        momentum=spec.effective_momentum,
        keep_best=spec.keep_best,
        device=dev,
        zero_copy=zero_copy,
        host_free=_host_available_bytes(),
    )


@contextmanager
def torch_settings(
    *,
    num_threads: int | None = None,
    matmul_precision: str | None = None,
    deterministic: bool | None = None,
) -> Iterator[None]:
    """Set torch's global settings for the block and restore them afterwards.

    Parameters
    ----------
    num_threads : int, optional
        ``torch.set_num_threads`` (CPU threads).
    matmul_precision : {"highest", "high", "medium"}, optional
        ``torch.set_float32_matmul_precision``.
    deterministic : bool, optional
        ``torch.use_deterministic_algorithms`` (with its warn-only flag restored too).

    None leaves a setting alone.
    """
    undo: list = []  # calls that put the old settings back
    try:
        if num_threads is not None:
            undo.append(partial(torch.set_num_threads, torch.get_num_threads()))
            torch.set_num_threads(num_threads)
        if matmul_precision is not None:
            old = torch.get_float32_matmul_precision()
            undo.append(partial(torch.set_float32_matmul_precision, old))
            torch.set_float32_matmul_precision(matmul_precision)
        if deterministic is not None:
            warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
            old_det = torch.are_deterministic_algorithms_enabled()
            undo.append(partial(torch.use_deterministic_algorithms, old_det, warn_only=warn_only))
            torch.use_deterministic_algorithms(deterministic)
        yield
    finally:
        for call in undo:
            call()


@dataclass
class _Data:
    """The training and validation rows as tensors, where they live, and the shuffle RNG."""

    Ytr: torch.Tensor
    Xtr: torch.Tensor
    Yva: torch.Tensor | None
    Xva: torch.Tensor | None
    device: torch.device  # where the tensors are (the training device or the CPU)
    on_device: bool
    shuffle: torch.Generator
    first: int = 0  # index, among all ranks' training rows, of this rank's first one


def _load_data(
    Y, X, spec: TrainSpec, sizes: _Sizes, dev, tdtype, on_device: bool, dp: _Parallel | None
) -> _Data:
    """Split the rows (seeded) and copy them to tensors on the device or the host.

    Data-parallel, every rank draws the split of all rows and keeps the rows it holds."""
    seed_split, seed_shuffle = _seeds(spec.seed)
    data_dev = dev if on_device else torch.device("cpu")
    first = 0 if dp is None else dp.start
    if sizes.n_val > 0:
        g_split = torch.Generator(device="cpu")
        g_split.manual_seed(seed_split)
        perm = torch.randperm(sizes.n_samples, generator=g_split).numpy()
        val_rows = np.sort(perm[: sizes.n_val])
        train_rows = np.sort(perm[sizes.n_val :])
        if dp is not None:
            first = int(np.searchsorted(train_rows, dp.start))
            val_rows, train_rows = _local(val_rows, dp), _local(train_rows, dp)
        Ytr = _to_tensor(Y, train_rows, tdtype, data_dev)
        Xtr = _to_tensor(X, train_rows, tdtype, data_dev)
        Yva = _to_tensor(Y, val_rows, tdtype, data_dev)
        Xva = _to_tensor(X, val_rows, tdtype, data_dev)
    else:
        Ytr = _to_tensor(Y, None, tdtype, data_dev)
        Xtr = _to_tensor(X, None, tdtype, data_dev)
        Yva = Xva = None
    g_shuffle = torch.Generator(device="cpu")
    g_shuffle.manual_seed(seed_shuffle)
    return _Data(Ytr, Xtr, Yva, Xva, data_dev, on_device, g_shuffle, first)


def _local(rows: np.ndarray, dp: _Parallel) -> np.ndarray:
    """The global row numbers ``rows`` (sorted) that this rank holds, as local numbers."""
    lo, hi = np.searchsorted(rows, [dp.start, dp.start + dp.rows])
    return rows[lo:hi] - dp.start


def _make_optimizer(net: nn.Module, spec: TrainSpec) -> tuple[torch.optim.Optimizer, str]:
    """The optimizer and which implementation of its step runs ("fused", "foreach")."""
    params = [p for p in net.parameters() if p.requires_grad]
    if spec.optimizer == "adam":
        if _fused_adam_ok(params):
            opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay, fused=True)
            return opt, "fused"
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay), "foreach"
    opt = torch.optim.SGD(
        params, lr=spec.lr, momentum=spec.effective_momentum, weight_decay=spec.weight_decay
    )
    return opt, "foreach"


#: devices and dtypes torch's fused Adam kernel takes
_FUSED_DEVICES = ("cpu", "cuda")
_FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _fused_adam_ok(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused Adam step takes these parameters (all on one CPU or CUDA device,
    floating dtypes it supports, dense)."""
    return (
        bool(params)
        and len({p.device for p in params}) == 1
        and params[0].device.type in _FUSED_DEVICES
        and all(p.dtype in _FUSED_DTYPES and not p.is_sparse for p in params)
    )


# --------------------------------------------------------------------------- the epochs
def _new_history(data_on_device: bool) -> dict[str, Any]:
    return {
        "epoch": [],
        "train_loss": [],
        "val_loss": [],
        "lr": [],
        "time": [],
        "checkpoints": {},
        "initial_train_loss": None,
        "initial_val_loss": None,
        "best_epoch": None,
        "best_val_loss": None,
        "stopped_early": False,
        "stop_reason": "completed",
        "n_steps": 0,
        "data_on_device": bool(data_on_device),
        "setup_time": 0.0,
    }


@dataclass
class _Run:
    """One training run's state: what the epoch loop reads and updates."""

    spec: TrainSpec
    net: nn.Module
    dev: torch.device
    dtype: torch.dtype
    sizes: _Sizes
    data: _Data
    history: dict
    best_state: dict | None = None  # weights of the best validation loss (early stopping)
    since_best: int = 0  # epochs since the validation loss last improved
    dp: _Parallel | None = None  # data-parallel: this rank's place
    fwd: Any = None  # what the training steps call: net, or its DistributedDataParallel copy
    optimizer_impl: str = "foreach"  # the optimizer step's kernel: "fused" or "foreach"

    def evaluate(self, Yt: torch.Tensor, Xt: torch.Tensor, rows: int) -> float:
        """The objective over ``rows`` rows: those of (Yt, Xt), of all ranks together."""
        total = _objective_total(self.net, Yt, Xt, self.dev, self.dtype)
        if self.dp is not None:
            allreduce_sum(total)
        return float(total.item()) / rows if rows > 0 else float("nan")

    def autocast(self):
        """bf16 autocast of the forward pass (precision "bf16"), else nothing."""
        on = self.spec.precision == "bf16" and self.dev.type in ("cpu", "cuda")
        return torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=on)


def _evaluate_start(run: _Run) -> None:
    """Checkpoint 0, the initial losses, and the initial weights as the best so far."""
    h, d = run.history, run.data
    if 0 in (run.spec.checkpoints or ()):
        h["checkpoints"][0] = _state_copy(run.net, torch.device("cpu"))
    h["initial_train_loss"] = run.evaluate(d.Ytr, d.Xtr, run.sizes.n_train)
    if d.Yva is not None:
        h["initial_val_loss"] = run.evaluate(d.Yva, d.Xva, run.sizes.n_val)
        h["best_val_loss"] = h["initial_val_loss"]
        h["best_epoch"] = 0
        if run.spec.keep_best:
            run.best_state = _state_copy(run.net)


def _run_epochs(run: _Run, opt: torch.optim.Optimizer) -> None:
    """Epochs 1..epochs: a pass over the training rows, validation, records, stopping rules."""
    spec, d = run.spec, run.data
    bar = Reporter(enabled=spec.progress and spec.epochs > 0).bar(spec.epochs, "train", "epoch")
    clock = Stopwatch()
    run.net.train()
    run.fwd.train()
    with closing(bar):
        for epoch in range(1, spec.epochs + 1):
            lr_e = spec.lr * _lr_factor(spec.schedule, epoch - 1, spec.epochs)
            for group in opt.param_groups:
                group["lr"] = lr_e
            train_loss = _train_epoch(run, opt)
            if not math.isfinite(train_loss):
                raise FastinvError(
                    f"training diverged at epoch {epoch} (train loss {train_loss}); lower lr "
                    f"(now {spec.lr:g}) or rescale the data"
                )
            val_loss = run.evaluate(d.Yva, d.Xva, run.sizes.n_val) if d.Yva is not None else None
            logs = {"train_loss": train_loss, "val_loss": val_loss, "lr": lr_e}
            logs["time"] = clock.seconds
            _record_epoch(run, epoch, logs)
            stop = _early_stop(run, epoch, val_loss)
            bar.set_postfix_str(_postfix(train_loss, val_loss))
            bar.update(1)
            if spec.callback is not None and spec.callback(epoch, logs, run.net) and not stop:
                run.history["stopped_early"] = True
                run.history["stop_reason"] = "callback"
                stop = True
            if stop:
                break


def _train_epoch(run: _Run, opt: torch.optim.Optimizer) -> float:
    """One pass over the training rows; the mean objective of its batches (before each step)."""
    loss_sum = torch.zeros((), dtype=run.dtype, device=run.dev)
    ranks = 1 if run.dp is None else run.dp.size
    for yb, xb, rows in _batches(run):
        opt.zero_grad(set_to_none=True)
        with run.autocast():
            out = run.fwd(yb)
        ssum = _objective_sum(out.to(xb.dtype), xb)
        # DDP averages the ranks' gradients: each scales its part of the global batch's sum
        (ssum / rows if ranks == 1 else ssum * (ranks / rows)).backward()
        opt.step()
        loss_sum += ssum.detach()
        run.history["n_steps"] += 1
    if run.dp is not None:
        allreduce_sum(loss_sum)
    return float(loss_sum.item()) / run.sizes.n_train


def _batches(run: _Run) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """The epoch's batches on the training device, with the rows of the global batch: the
    full set, or a seeded shuffle (data-parallel: this rank's members of each global batch)."""
    d, n_train, bs = run.data, run.sizes.n_train, run.sizes.batch
    if run.sizes.full_batch:
        picks = [(None, n_train)]
    else:
        order = torch.randperm(n_train, generator=d.shuffle).to(d.device)
        picks = [_own(order[s : s + bs], run) for s in range(0, n_train, bs)]
    for idx, rows in picks:
        if idx is None:
            yb, xb = d.Ytr, d.Xtr
        else:
            yb, xb = d.Ytr.index_select(0, idx), d.Xtr.index_select(0, idx)
        if not d.on_device:
            yb = yb.to(run.dev, non_blocking=True)
            xb = xb.to(run.dev, non_blocking=True)
        yield yb, xb, rows


def _own(idx: torch.Tensor, run: _Run) -> tuple[torch.Tensor, int]:
    """The local rows of the global batch ``idx`` (all of it for one process), and its size."""
    if run.dp is None:
        return idx, idx.shape[0]
    first, m = run.data.first, run.data.Ytr.shape[0]
    return idx[(idx >= first) & (idx < first + m)] - first, idx.shape[0]


def _record_epoch(run: _Run, epoch: int, logs: dict) -> None:
    """Append the epoch's numbers to the history; store a checkpoint if one is asked for."""
    h = run.history
    h["epoch"].append(epoch)
    h["train_loss"].append(logs["train_loss"])
    h["val_loss"].append(logs["val_loss"])
    h["lr"].append(logs["lr"])
    h["time"].append(logs["time"])
    if epoch in (run.spec.checkpoints or ()):
        h["checkpoints"][epoch] = _state_copy(run.net, torch.device("cpu"))


def _early_stop(run: _Run, epoch: int, val_loss: float | None) -> bool:
    """Track the best validation loss (and its weights); True when patience has run out."""
    h = run.history
    if val_loss is None:
        return False
    if val_loss < h["best_val_loss"]:
        h["best_val_loss"] = val_loss
        h["best_epoch"] = epoch
        run.since_best = 0
        if run.spec.keep_best:
            run.best_state = _state_copy(run.net)
        return False
    run.since_best += 1
    if run.spec.patience is not None and run.since_best >= run.spec.patience:
        h["stopped_early"] = True
        h["stop_reason"] = "patience"
        return True
    return False


def _postfix(train_loss: float, val_loss: float | None) -> str:
    post = f"loss={train_loss:.4g}"
    if val_loss is not None:
        post += f" val={val_loss:.4g}"
    return post


def _config_dict(
    spec: TrainSpec, net: nn.Module, model_name: str, tdtype, dev, sizes: _Sizes
) -> dict:
    """``fastinv_config``: the settings as used and the data sizes, as plain values."""
    arch = dict(getattr(net, "fastinv_spec", {})) if isinstance(spec.model, str) else {}
    return {
        "model": model_name,
        "width": arch.get("width", spec.width),
        "depth": spec.depth,
        "activation": spec.activation,
        "bias": spec.bias,
        "init": spec.init,
        "optimizer": spec.optimizer,
        "lr": spec.lr,
        "momentum": spec.effective_momentum,
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "effective_batch_size": int(sizes.batch),
        "schedule": spec.schedule,
        "weight_decay": spec.weight_decay,
        "val_fraction": spec.val_fraction,
        "patience": spec.patience,
        "dtype": dtype_name(tdtype),
        "device": str(dev),
        "seed": spec.seed,
        "checkpoints": list(spec.checkpoints or ()),
        "num_threads": spec.num_threads,
        "matmul_precision": spec.matmul_precision,
        "image_shape": arch.get("image_shape", _as_list(spec.image_shape)),
        "backprojection": bool(arch.get("backprojection", False)),
        "n_samples": int(sizes.n_samples),
        "n_in": int(sizes.n_in),
        "n_out": int(sizes.n_out),
        "n_train": int(sizes.n_train),
        "n_val": int(sizes.n_val),
        "loss": "1/(2B) sum_i ||f(y_i) - x_i||^2",
    }


def _speed_config(spec: TrainSpec, dev: torch.device, run: _Run) -> dict:
    """The config entries of the speed settings: precision (with a note where it does
    nothing), the optimizer step's implementation, and the data-parallel ranks."""
    out = {
        "precision": spec.precision,
        "optimizer_impl": run.optimizer_impl,
        "world_size": 1 if run.dp is None else run.dp.size,
    }
    if spec.precision == "tf32" and dev.type != "cuda":
        out["precision_note"] = "tf32 applies to CUDA matrix products; trained in float32 here"
    return out


# --------------------------------------------------------------------------- helpers
def _as_list(shape) -> list | None:
    return None if shape is None else list(shape)


def _set_mode(model, training: bool) -> bool:
    """Put ``model`` in train/eval mode; returns its previous mode.

    Modules from torch.export refuse mode changes (they are always in the exported mode):
    they are left as they are.
    """
    before = bool(getattr(model, "training", False))
    try:
        model.train(training)
    except NotImplementedError:
        pass
    return before


def _seeds(seed: int) -> tuple[int, int]:
    """Two independent 63-bit seeds (split, shuffle) derived from ``seed``."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, 0x66A57])
    a, b = ss.generate_state(2, dtype=np.uint64)
    return int(a) >> 1, int(b) >> 1


def _from_numpy(a: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` on a C-contiguous view, quiet about read-only arrays (never written)."""
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*", category=UserWarning)
        return torch.from_numpy(a)


def _to_tensor(
    A: np.ndarray, rows: np.ndarray | None, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Rows ``rows`` of A (all if None) as a tensor of ``dtype`` on ``device``.

    Copies in chunks, so no host temporary larger than a chunk is made; a float64 C-contiguous
    array used whole on the CPU in float64 is wrapped without copying.
    """
    if rows is None and device.type == "cpu":
        t = _from_numpy(A)
        return t if t.dtype == dtype else t.to(dtype)
    m = A.shape[0] if rows is None else rows.shape[0]
    out = torch.empty((m, A.shape[1]), dtype=dtype, device=device)
    step = max(1, (1 << 24) // max(1, A.shape[1]))  # about 16M entries per chunk
    for s in range(0, m, step):
        e = min(m, s + step)
        chunk = A[s:e] if rows is None else A[rows[s:e]]
        out[s:e] = _from_numpy(chunk).to(device=device, dtype=dtype)
    return out


def _objective_sum(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sum_i ||out_i - target_i||^2 / 2 (divide by the number of rows for the objective)."""
    return 0.5 * (out - target).pow(2).sum()


@torch.no_grad()
def _objective_total(
    model: nn.Module, Yt: torch.Tensor, Xt: torch.Tensor, dev: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """sum_i ||f(y_i) - x_i||^2 / 2 over the rows of (Yt, Xt) (a 0-d tensor), evaluated in
    eval mode, in chunks; 0 without rows."""
    m = Yt.shape[0]
    total = torch.zeros((), dtype=dtype, device=dev)
    if m == 0:
        return total
    was_training = _set_mode(model, False)
    try:
        step = eval_rows(model, Yt.shape[1], Xt.shape[1], total.element_size(), cap=_EVAL_ROWS)
        for s in range(0, m, step):
            yb = Yt[s : s + step].to(dev, non_blocking=True)
            xb = Xt[s : s + step].to(dev, non_blocking=True)
            total += _objective_sum(model(yb), xb)
        return total
    finally:
        _set_mode(model, was_training)


def _lr_factor(schedule: str, epoch0: int, epochs: int) -> float:
    """Multiplier of the base learning rate during epoch ``epoch0`` (0-based)."""
    if schedule == "constant" or epochs <= 0:
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch0 / epochs))
    milestones = [m for m in (epochs // 2, (3 * epochs) // 4) if m > 0]
    return 0.1 ** sum(epoch0 >= m for m in milestones)


def _state_copy(model: nn.Module, device: torch.device | None = None) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to(device) if device is not None else v.detach()).clone()
        for k, v in model.state_dict().items()
    }


def _probe(net: nn.Module, Y: np.ndarray, n_out: int, dev: torch.device, dtype: torch.dtype):
    """Run the model on up to two rows and check it returns shape (m, n_out)."""
    m = min(2, Y.shape[0])
    yb = _from_numpy(Y[:m]).to(device=dev, dtype=dtype)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(yb)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is reported
        raise FastinvError(
            f"the model fails on a probe batch of shape {tuple(yb.shape)} ({_first_line(exc)}); "
            f"it must map (m, {Y.shape[1]}) inputs to (m, {n_out}) outputs"
        ) from None
    finally:
        net.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (m, n_out):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise FastinvError(
            f"the model maps a probe batch of shape {tuple(yb.shape)} to {got}, but X needs "
            f"{(m, n_out)}; make its output width match X ({n_out} columns)"
        )


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --------------------------------------------------------------------------- predict
def predict(
    model: nn.Module,
    Y: np.ndarray,
    *,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Apply ``model`` to the rows of Y without gradients, in chunks.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (m, n) to (m, n_out). Runs in eval mode (its mode is restored afterwards), in its
        parameters' dtype (float32 if it has none).
    Y : ndarray of shape (N, n)
        Inputs, one per row.
    batch_size : int, optional
        Rows per forward pass; default 4096, fewer where the activations of one pass would
        exceed about 1 GiB (:func:`fastinv.nets.memory.eval_rows`).
    device : str or torch.device, optional
        Where to run; None uses the device of the model's parameters (CPU if it has none).
        A different device moves the model there (in place).

    Returns
    -------
    ndarray of shape (N, n_out), float64
    """
    Y = check_2d(Y, "Y")
    check_finite(Y, "Y")
    if not isinstance(model, nn.Module):
        raise FastinvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.is_floating_point()]
    if batch_size is None:
        item = params[0].element_size() if params else 4
        batch_size = eval_rows(model, Y.shape[1], Y.shape[1], item, cap=4096)
    batch_size = check_int(batch_size, "batch_size", lo=1)
    if device is not None:
        dev = resolve_device(device)
        model.to(dev)
    else:
        dev = params[0].device if params else torch.device("cpu")
    tdtype = params[0].dtype if params else torch.float32
    N = Y.shape[0]
    was_training = _set_mode(model, False)
    out: np.ndarray | None = None
    try:
        with torch.no_grad():
            for s in range(0, max(N, 1), batch_size):
                e = min(N, s + batch_size)
                ob = _forward_rows(model, _from_numpy(Y[s:e]).to(device=dev, dtype=tdtype))
                if out is None:
                    out = np.empty((N, ob.shape[1]), dtype=np.float64)
                out[s:e] = ob.detach().to("cpu", torch.float64).numpy()
    finally:
        _set_mode(model, was_training)
    assert out is not None
    return out


def _forward_rows(model: nn.Module, yb: torch.Tensor) -> torch.Tensor:
    """``model(yb)``, checked to be a 2-D tensor with one row per input row."""
    try:
        ob = model(yb)
    except Exception as exc:  # noqa: BLE001
        raise FastinvError(
            f"the model fails on inputs of shape {tuple(yb.shape)} ({_first_line(exc)}); pass Y "
            "with the number of columns the model expects"
        ) from None
    if not isinstance(ob, torch.Tensor) or ob.ndim != 2 or ob.shape[0] != yb.shape[0]:
        got = tuple(ob.shape) if isinstance(ob, torch.Tensor) else type(ob).__name__
        raise FastinvError(
            f"the model maps inputs of shape {tuple(yb.shape)} to {got}; it must "
            "return a 2-D tensor with one row per input row"
        )
    return ob
