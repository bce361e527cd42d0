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
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fastinv._device import device_free_bytes, dtype_name, resolve_device
from fastinv._device import torch_dtype as resolve_dtype
from fastinv._validation import check_2d, check_finite
from fastinv.errors import FastinvError
from fastinv.io import available_memory as _host_available_bytes
from fastinv.nets.models import MODELS, make_model

OPTIMIZERS = ("adam", "gd", "sgd")
SCHEDULES = ("constant", "cosine", "step")
_EVAL_ROWS = 8192  # rows per forward pass when evaluating without gradients


# --------------------------------------------------------------------------- devices
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


# --------------------------------------------------------------------------- memory
def _fmt_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if b < 1024 or unit == "TiB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{int(b)} B"
        b /= 1024
    return f"{b:.1f} TiB"  # pragma: no cover


def _model_bytes(model: nn.Module, optimizer: str, momentum: float, keep_best: bool) -> int:
    """Parameters, gradients, optimizer state and a best-weights copy."""
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    copies = 2  # parameters + gradients
    copies += 2 if optimizer == "adam" else (1 if momentum > 0 else 0)
    copies += 1 if keep_best else 0
    return nbytes * copies


def _activation_bytes(model: nn.Module, rows: int, n_in: int, n_out: int, itemsize: int) -> int:
    """Rough activations of one forward/backward pass over ``rows`` rows."""
    widths = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    per_row = n_in + 2 * n_out + 3 * sum(widths)
    return rows * per_row * itemsize


# --------------------------------------------------------------------------- helpers
def _check_int(v: Any, what: str, *, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise FastinvError(f"{what} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _check_float(v: Any, what: str, *, lo: float, lo_open: bool, hi: float | None = None) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise FastinvError(f"{what} must be a number, got {v!r}") from None
    bad = not math.isfinite(f) or (f <= lo if lo_open else f < lo) or (hi is not None and f >= hi)
    if bad:
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'})"
        raise FastinvError(f"{what} must lie in {rng}, got {v!r}")
    return f


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
def _evaluate(
    model: nn.Module, Yt: torch.Tensor, Xt: torch.Tensor, dev: torch.device, dtype: torch.dtype
) -> float:
    """The objective over all rows of (Yt, Xt), evaluated in eval mode, in chunks."""
    m = Yt.shape[0]
    if m == 0:
        return float("nan")
    was_training = _set_mode(model, False)
    try:
        total = torch.zeros((), dtype=dtype, device=dev)
        for s in range(0, m, _EVAL_ROWS):
            yb = Yt[s : s + _EVAL_ROWS].to(dev, non_blocking=True)
            xb = Xt[s : s + _EVAL_ROWS].to(dev, non_blocking=True)
            total += _objective_sum(model(yb), xb)
        return float(total.item()) / m
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


class _SimpleBar:
    """Fallback progress line on stderr when tqdm is not installed."""

    def __init__(self, total: int):
        self.total = total
        self.n = 0
        self.postfix = ""

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def update(self, k: int = 1) -> None:
        self.n += k
        sys.stderr.write(f"\rtrain: epoch {self.n}/{self.total} {self.postfix}   ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return _SimpleBar(total)
    return tqdm(total=total, desc="train", unit="epoch", file=sys.stderr, leave=True)


# --------------------------------------------------------------------------- train
def train(
    Y: np.ndarray,
    X: np.ndarray,
    *,
    model: str | nn.Module = "mlp",
    width: int | None = None,
    depth: int = 2,
    activation: str = "relu",
    bias: bool = True,
    init: str = "default",
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float | None = None,
    epochs: int = 100,
    batch_size: int | None = 256,
    schedule: str = "constant",
    weight_decay: float = 0.0,
    val_fraction: float = 0.1,
    patience: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = False,
    checkpoints: Sequence[int] | None = None,
    callback: Callable[[int, dict, nn.Module], Any] | None = None,
    num_threads: int | None = None,
    matmul_precision: str | None = None,
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
    model : {"mlp", "linear", "residual"} or torch.nn.Module
        A name is built by :func:`fastinv.nets.models.make_model` with ``width``, ``depth``,
        ``activation``, ``bias``, ``init`` and ``seed`` (those arguments are ignored for a
        module). A module mapping (m, n) to (m, n_out) is trained in place (moved to
        ``device`` and ``dtype``) and returned.
    width, depth, activation, bias, init
        Passed to :func:`~fastinv.nets.models.make_model` (width None: ``max(n, 64)``).
    optimizer : {"adam", "gd", "sgd"}
        ``"adam"``: torch.optim.Adam. ``"gd"``: plain gradient descent, torch.optim.SGD with
        momentum 0 (unless ``momentum`` is given) on the FULL training set, one step per
        epoch — ``batch_size`` is ignored. ``"sgd"``: mini-batch SGD with momentum 0.9 unless
        ``momentum`` is given.
    lr : float
        Base learning rate (> 0); the step size eta for ``"gd"``.
    momentum : float, optional
        Momentum in [0, 1) for ``"gd"``/``"sgd"`` (defaults 0 and 0.9); not allowed for Adam.
    epochs : int
        Passes over the training set (>= 0; 0 returns the initial model).
    batch_size : int or None
        Rows per step. None or >= the number of training rows: full batch (no shuffling,
        one step per epoch). Otherwise the rows are reshuffled every epoch from a seeded
        generator and the last batch may be smaller (each step averages over its own rows).
    schedule : {"constant", "cosine", "step"}
        Learning rate per epoch e = 0..epochs-1: constant; ``lr * (1 + cos(pi e/epochs))/2``;
        or ``lr`` times 0.1 from epoch ``epochs//2`` and 0.01 from ``3*epochs//4``.
    weight_decay : float
        L2 penalty ``weight_decay/2 * ||theta||^2`` added to the objective (all parameters,
        biases included; torch's coupled decay for every optimizer).
    val_fraction : float in [0, 1)
        Share of rows held out (chosen at random from ``seed``) for the validation loss.
    patience : int, optional
        Early stopping: stop after ``patience`` epochs without a strict improvement of the
        validation loss, and in any case restore the weights of the best validation loss
        (the initial weights count as epoch 0). Needs ``val_fraction > 0``.
    dtype : "float32", "float64", torch dtype or None
        Precision of parameters, data and arithmetic. None: float32 for a named model, the
        module's own floating dtype for a module.
    device : "auto", "cpu", "cuda" or "cuda:N"
        See :func:`resolve_device`. The data are moved to the device once when they fit
        (estimated first); otherwise they stay in host memory and each batch is copied over.
        If even the host cannot hold them, or the model does not fit on the device,
        :class:`FastinvError` says so before anything is allocated.
    seed : int
        Seeds the initial weights, the validation split and the shuffles.
    progress : bool
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
    t_setup = time.perf_counter()
    # ---------------------------------------------------------------- validate inputs
    Y = check_2d(Y, "Y")
    X = check_2d(X, "X")
    if Y.shape[0] != X.shape[0]:
        raise FastinvError(
            f"Y and X must have the same number of rows (samples), got Y {Y.shape} and X "
            f"{X.shape}; pass matching pairs (y_i, x_i) as rows"
        )
    N, n_in = Y.shape
    n_out = X.shape[1]
    if N == 0:
        raise FastinvError("Y and X have no rows; pass at least one training sample")
    check_finite(Y, "Y")
    check_finite(X, "X")
    if optimizer not in OPTIMIZERS:
        raise FastinvError(
            f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    if schedule not in SCHEDULES:
        raise FastinvError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    lr = _check_float(lr, "lr", lo=0.0, lo_open=True)
    epochs = _check_int(epochs, "epochs", lo=0)
    weight_decay = _check_float(weight_decay, "weight_decay", lo=0.0, lo_open=False)
    val_fraction = _check_float(val_fraction, "val_fraction", lo=0.0, lo_open=False, hi=1.0)
    if batch_size is not None:
        batch_size = _check_int(batch_size, "batch_size", lo=1)
    if patience is not None:
        patience = _check_int(patience, "patience", lo=1)
        if val_fraction == 0:
            raise FastinvError(
                "patience (early stopping) needs validation rows; set val_fraction > 0 "
                "or patience=None"
            )
    if momentum is None:
        momentum = 0.9 if optimizer == "sgd" else 0.0
    else:
        if optimizer == "adam":
            raise FastinvError(
                "momentum applies to optimizer 'gd' or 'sgd' only; drop it for Adam "
                "(or choose optimizer='sgd')"
            )
        momentum = _check_float(momentum, "momentum", lo=0.0, lo_open=False, hi=1.0)
    seed = _check_int(seed, "seed", lo=0)
    ckpt_epochs: list[int] = []
    if checkpoints is not None:
        for c in checkpoints:
            c = _check_int(c, "each checkpoint epoch", lo=0)
            if c > epochs:
                raise FastinvError(
                    f"checkpoint epoch {c} lies beyond epochs={epochs}; ask for epochs in "
                    f"[0, {epochs}]"
                )
            ckpt_epochs.append(c)
        ckpt_epochs = sorted(set(ckpt_epochs))
    if num_threads is not None:
        num_threads = _check_int(num_threads, "num_threads", lo=1)
    if matmul_precision is not None and matmul_precision not in ("highest", "high", "medium"):
        raise FastinvError(
            f"matmul_precision must be 'highest', 'high' or 'medium', got {matmul_precision!r}"
        )
    dev = resolve_device(device)

    # ---------------------------------------------------------------- model
    if isinstance(model, nn.Module):
        net = model
        if dtype is None:
            fp = [p.dtype for p in net.parameters() if p.is_floating_point()]
            tdtype = fp[0] if fp and fp[0] in (torch.float32, torch.float64) else torch.float32
        else:
            tdtype = resolve_dtype(dtype)
        model_name = f"custom:{type(net).__name__}"
        if not any(p.requires_grad for p in net.parameters()) and epochs > 0:
            raise FastinvError(
                "the model has no trainable parameters; pass a module with parameters or epochs=0"
            )
    elif isinstance(model, str):
        if model not in MODELS:
            raise FastinvError(
                f"unknown model {model!r}; choose one of {', '.join(MODELS)} or pass an nn.Module"
            )
        tdtype = resolve_dtype("float32" if dtype is None else dtype)
        net = make_model(
            model,
            n_in,
            n_out=n_out,
            width=width,
            depth=depth,
            activation=activation,
            bias=bias,
            init=init,
            dtype=tdtype,
            seed=seed,
        )
        model_name = model
    else:
        raise FastinvError(
            f"model must be one of {', '.join(MODELS)} or a torch.nn.Module, got "
            f"{type(model).__name__}"
        )
    itemsize = torch.empty((), dtype=tdtype).element_size()

    # ---------------------------------------------------------------- split
    n_val = 0
    if val_fraction > 0:
        n_val = min(max(1, int(round(val_fraction * N))), N - 1)
        if n_val < 1:
            raise FastinvError(
                f"val_fraction={val_fraction} leaves no training rows with N={N}; "
                "use more samples or val_fraction=0"
            )
    n_train = N - n_val
    full_batch = optimizer == "gd" or batch_size is None or batch_size >= n_train
    bs = n_train if full_batch else int(batch_size)

    # ---------------------------------------------------------------- memory estimate
    keep_best = patience is not None
    model_b = _model_bytes(net, optimizer, momentum, keep_best)
    act_b = _activation_bytes(net, max(bs, min(_EVAL_ROWS, N)), n_in, n_out, itemsize)
    data_b = N * (n_in + n_out) * itemsize
    zero_copy = (
        dev.type == "cpu" and n_val == 0 and Y.dtype == X.dtype == np.dtype(dtype_name(tdtype))
    )
    host_free = _host_available_bytes()
    data_on_device = True
    if dev.type == "cuda":
        dev_free = device_free_bytes(dev)
        if dev_free is not None and model_b + act_b > 0.9 * dev_free:
            raise FastinvError(
                f"training needs about {_fmt_bytes(model_b + act_b)} on {dev} for the model, "
                f"its optimizer state and a batch but only {_fmt_bytes(dev_free)} is free; use "
                "a smaller width or batch_size, dtype='float32', or device='cpu'"
            )
        if dev_free is not None and data_b + model_b + act_b > 0.9 * dev_free:
            data_on_device = False
            if host_free is not None and data_b > 0.9 * host_free:
                raise FastinvError(
                    f"the training data need about {_fmt_bytes(data_b)} but neither {dev} "
                    f"({_fmt_bytes(dev_free)} free) nor the host ({_fmt_bytes(host_free)} free) "
                    "can hold them; use fewer samples or dtype='float32'"
                )
    else:
        need = (0 if zero_copy else data_b) + model_b + act_b
        if host_free is not None and need > 0.9 * host_free:
            raise FastinvError(
                f"training needs about {_fmt_bytes(need)} of host memory (data "
                f"{_fmt_bytes(data_b)}, model and optimizer {_fmt_bytes(model_b)}) but only "
                f"{_fmt_bytes(host_free)} is available; use fewer samples, dtype='float32', a "
                "smaller width or batch_size, or device='cuda'"
            )

    # ---------------------------------------------------------------- global settings (opt-in)
    old_threads = torch.get_num_threads() if num_threads is not None else None
    old_prec = torch.get_float32_matmul_precision() if matmul_precision is not None else None
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if matmul_precision is not None:
            torch.set_float32_matmul_precision(matmul_precision)
        net.to(device=dev, dtype=tdtype)
        _probe(net, Y, n_out, dev, tdtype)

        seed_split, seed_shuffle = _seeds(seed)
        data_dev = dev if data_on_device else torch.device("cpu")
        if n_val > 0:
            g_split = torch.Generator(device="cpu")
            g_split.manual_seed(seed_split)
            perm = torch.randperm(N, generator=g_split).numpy()
            val_rows = np.sort(perm[:n_val])
            train_rows = np.sort(perm[n_val:])
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

        params = [p for p in net.parameters() if p.requires_grad]
        if optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

        history: dict[str, Any] = {
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
        if 0 in ckpt_epochs:
            history["checkpoints"][0] = _state_copy(net, torch.device("cpu"))
        history["initial_train_loss"] = _evaluate(net, Ytr, Xtr, dev, tdtype)
        best_state = None
        if n_val > 0:
            history["initial_val_loss"] = _evaluate(net, Yva, Xva, dev, tdtype)
            history["best_val_loss"] = history["initial_val_loss"]
            history["best_epoch"] = 0
            if keep_best:
                best_state = _state_copy(net)
        history["setup_time"] = time.perf_counter() - t_setup

        bar = _progress_bar(epochs) if progress and epochs > 0 else None
        since_best = 0
        t0 = time.perf_counter()
        net.train()
        try:
            for epoch in range(1, epochs + 1):
                lr_e = lr * _lr_factor(schedule, epoch - 1, epochs)
                for group in opt.param_groups:
                    group["lr"] = lr_e
                loss_sum = torch.zeros((), dtype=tdtype, device=dev)
                if full_batch:
                    batches = [None]
                else:
                    order = torch.randperm(n_train, generator=g_shuffle).to(data_dev)
                    batches = [order[s : s + bs] for s in range(0, n_train, bs)]
                for idx in batches:
                    if idx is None:
                        yb, xb = Ytr, Xtr
                    else:
                        yb, xb = Ytr.index_select(0, idx), Xtr.index_select(0, idx)
                    if not data_on_device:
                        yb = yb.to(dev, non_blocking=True)
                        xb = xb.to(dev, non_blocking=True)
                    opt.zero_grad(set_to_none=True)
                    ssum = _objective_sum(net(yb), xb)
                    (ssum / yb.shape[0]).backward()
                    opt.step()
                    loss_sum += ssum.detach()
                    history["n_steps"] += 1
                train_loss = float(loss_sum.item()) / n_train
                if not math.isfinite(train_loss):
                    raise FastinvError(
                        f"training diverged at epoch {epoch} (train loss {train_loss}); lower lr "
                        f"(now {lr:g}) or rescale the data"
                    )
                val_loss = _evaluate(net, Yva, Xva, dev, tdtype) if n_val > 0 else None
                elapsed = time.perf_counter() - t0
                history["epoch"].append(epoch)
                history["train_loss"].append(train_loss)
                history["val_loss"].append(val_loss)
                history["lr"].append(lr_e)
                history["time"].append(elapsed)
                if epoch in ckpt_epochs:
                    history["checkpoints"][epoch] = _state_copy(net, torch.device("cpu"))
                stop = False
                if val_loss is not None:
                    if val_loss < history["best_val_loss"]:
                        history["best_val_loss"] = val_loss
                        history["best_epoch"] = epoch
                        since_best = 0
                        if keep_best:
                            best_state = _state_copy(net)
                    else:
                        since_best += 1
                        if patience is not None and since_best >= patience:
                            history["stopped_early"] = True
                            history["stop_reason"] = "patience"
                            stop = True
                if bar is not None:
                    post = f"loss={train_loss:.4g}"
                    if val_loss is not None:
                        post += f" val={val_loss:.4g}"
                    bar.set_postfix_str(post)
                    bar.update(1)
                if callback is not None:
                    logs = {
                        "train_loss": train_loss,
                        "val_loss": val_loss,
                        "lr": lr_e,
                        "time": elapsed,
                    }
                    if callback(epoch, logs, net) and not stop:
                        history["stopped_early"] = True
                        history["stop_reason"] = "callback"
                        stop = True
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
        if keep_best and best_state is not None:
            net.load_state_dict(best_state)
    finally:
        if old_threads is not None:
            torch.set_num_threads(old_threads)
        if old_prec is not None:
            torch.set_float32_matmul_precision(old_prec)

    net.fastinv_history = history
    cfg_model = dict(getattr(net, "fastinv_spec", {})) if isinstance(model, str) else {}
    net.fastinv_config = {
        "model": model_name,
        "width": cfg_model.get("width", width),
        "depth": depth,
        "activation": activation,
        "bias": bool(bias),
        "init": init,
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "epochs": epochs,
        "batch_size": None if batch_size is None else int(batch_size),
        "effective_batch_size": int(bs),
        "schedule": schedule,
        "weight_decay": weight_decay,
        "val_fraction": val_fraction,
        "patience": patience,
        "dtype": dtype_name(tdtype),
        "device": str(dev),
        "seed": seed,
        "checkpoints": ckpt_epochs,
        "num_threads": num_threads,
        "matmul_precision": matmul_precision,
        "n_samples": int(N),
        "n_in": int(n_in),
        "n_out": int(n_out),
        "n_train": int(n_train),
        "n_val": int(n_val),
        "loss": "1/(2B) sum_i ||f(y_i) - x_i||^2",
    }
    return net.eval()


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
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FastinvError(
            f"the model fails on a probe batch of shape {tuple(yb.shape)} ({msg}); it must map "
            f"(m, {Y.shape[1]}) inputs to (m, {n_out}) outputs"
        ) from None
    finally:
        net.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (m, n_out):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise FastinvError(
            f"the model maps a probe batch of shape {tuple(yb.shape)} to {got}, but X needs "
            f"{(m, n_out)}; make its output width match X ({n_out} columns)"
        )


# --------------------------------------------------------------------------- predict
def predict(
    model: nn.Module,
    Y: np.ndarray,
    *,
    batch_size: int = 4096,
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
    batch_size : int
        Rows per forward pass.
    device : str or torch.device, optional
        Where to run; None uses the device of the model's parameters (CPU if it has none).
        A different device moves the model there (in place).

    Returns
    -------
    ndarray of shape (N, n_out), float64
    """
    Y = check_2d(Y, "Y")
    check_finite(Y, "Y")
    batch_size = _check_int(batch_size, "batch_size", lo=1)
    if not isinstance(model, nn.Module):
        raise FastinvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.is_floating_point()]
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
                yb = _from_numpy(Y[s:e]).to(device=dev, dtype=tdtype)
                try:
                    ob = model(yb)
                except Exception as exc:  # noqa: BLE001
                    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise FastinvError(
                        f"the model fails on inputs of shape {tuple(yb.shape)} ({msg}); pass Y "
                        "with the number of columns the model expects"
                    ) from None
                if not isinstance(ob, torch.Tensor) or ob.ndim != 2 or ob.shape[0] != e - s:
                    got = tuple(ob.shape) if isinstance(ob, torch.Tensor) else type(ob).__name__
                    raise FastinvError(
                        f"the model maps inputs of shape {tuple(yb.shape)} to {got}; it must "
                        "return a 2-D tensor with one row per input row"
                    )
                if out is None:
                    out = np.empty((N, ob.shape[1]), dtype=np.float64)
                out[s:e] = ob.detach().to("cpu", torch.float64).numpy()
    finally:
        _set_mode(model, was_training)
    assert out is not None
    return out
