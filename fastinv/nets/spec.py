"""The training settings: one validated :class:`TrainSpec` and the names it chooses from.

:func:`fastinv.nets.training.train` takes its keyword arguments through a ``TrainSpec``, so a
run config or a sweep can build, check and record the same settings without training:

>>> spec = TrainSpec(model="linear", optimizer="gd", lr=0.5, epochs=10, val_fraction=0.0)
>>> spec.effective_momentum
0.0
>>> TrainSpec.from_dict(spec.to_dict()) == spec
True

The checks of a named model's arguments (:func:`check_architecture`) live here too, shared
with :func:`fastinv.nets.models.make_model`. This module does not import torch.
"""

from __future__ import annotations

import dataclasses
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastinv._validation import (
    check_choice,
    check_float,
    check_int,
    check_seed,
    fail,
)
from fastinv.errors import FastinvError

__all__ = [
    "ACTIVATIONS",
    "CNN_WIDTH",
    "INITS",
    "MATMUL_PRECISIONS",
    "MODELS",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "TrainSpec",
    "check_architecture",
    "check_image_shape",
]

MODELS = ("mlp", "linear", "residual", "cnn")
#: channels of the CNN's hidden layers when ``width=None`` (``model="cnn"``)
CNN_WIDTH = 32
ACTIVATIONS = ("relu", "tanh", "gelu", "silu", "identity")
INITS = ("default", "zeros", "orthogonal")
OPTIMIZERS = ("adam", "gd", "sgd")
SCHEDULES = ("constant", "cosine", "step")
MATMUL_PRECISIONS = ("highest", "high", "medium")
#: arithmetic of the training steps: float32; bfloat16 autocast of forward and loss (CPU and
#: CUDA); TF32 matrix products (CUDA only; float32 on the CPU)
PRECISIONS = ("float32", "bf16", "tf32")


def check_image_shape(image_shape: Any, what: str = "image_shape") -> tuple[int, ...] | None:
    """None, or ``image_shape`` as a tuple (H, W) or (C, H, W) of positive ints.

    Raises
    ------
    FastinvError
        Anything else (a number, a string, a tuple of another length, a zero or negative size).
    """
    if image_shape is None:
        return None
    constraint = "None or a tuple (H, W) or (C, H, W) of positive integers"
    if isinstance(image_shape, str | bytes | Mapping):
        raise fail(what, constraint, image_shape)
    try:
        dims = tuple(operator.index(d) for d in image_shape)
    except TypeError:
        raise fail(what, constraint, image_shape) from None
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise fail(what, constraint, image_shape)
    return dims


def check_architecture(
    model: str, *, width: Any, depth: Any, activation: Any, init: Any
) -> tuple[int | None, int]:
    """Check the arguments of a named model; return ``(width, depth)`` as ints.

    ``width`` may be None (the default width, which depends on n). The model name itself is
    checked by the caller (the messages differ: ``train`` also takes a module).

    Raises
    ------
    FastinvError
        A non-positive width, a negative depth, an unknown activation or init, or an MLP
        initialised at zero (it could never leave it).
    """
    width = None if width is None else check_int(width, "width", lo=1)
    depth = check_int(depth, "depth", lo=0)
    check_choice(activation, "activation", ACTIVATIONS, normalize=False)
    check_choice(init, "init", INITS, normalize=False)
    if model == "mlp" and init == "zeros" and depth > 0:
        raise FastinvError(
            "an MLP initialised at zero never leaves it (every hidden-layer gradient vanishes); "
            "use init='default' or 'orthogonal', or model='linear'/'residual' with init='zeros'"
        )
    return width, depth


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Every setting of :func:`fastinv.nets.training.train`, validated once when made.

    The fields are ``train``'s keyword arguments with the same defaults and meaning (see its
    docstring). Values are stored normalised: numbers as plain ``int``/``float``, ``dtype``
    as ``"float32"``/``"float64"`` (or None), ``device`` as a string, ``checkpoints`` as a
    sorted tuple without repeats (or None). ``momentum`` stays None when not given (see
    :attr:`effective_momentum`). ``device`` is only resolved when training starts, since
    whether CUDA is there is a property of the machine, not of the settings.
    ``image_shape`` is stored as a tuple (H, W) or (C, H, W) (or None); ``backprojection``
    (``model="cnn"`` only: an (n, m) matrix Aᵀ or the operator A itself) is kept as given,
    and left out of ``==`` (a matrix has no single truth value).

    Raises
    ------
    FastinvError
        Any setting out of range, with the one message format of :mod:`fastinv._validation`.
    """

    model: Any = "mlp"
    width: int | None = None
    depth: int = 2
    activation: str = "relu"
    bias: bool = True
    init: str = "default"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float | None = None
    epochs: int = 100
    batch_size: int | None = 256
    schedule: str = "constant"
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int | None = None
    dtype: Any = None
    device: Any = "auto"
    seed: int = 0
    progress: bool = False
    checkpoints: Sequence[int] | None = None
    callback: Callable | None = None
    num_threads: int | None = None
    matmul_precision: str | None = None
    precision: str = "float32"
    image_shape: tuple[int, ...] | None = None
    backprojection: Any = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._check_optimisation()
        self._check_run()
        self._check_model()
        self._check_precision()

    # ----------------------------------------------------------------------- checks
    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_optimisation(self) -> None:
        check_choice(self.optimizer, "optimizer", OPTIMIZERS, normalize=False)
        check_choice(self.schedule, "schedule", SCHEDULES, normalize=False)
        self._set("lr", check_float(self.lr, "lr", lo=0.0, lo_open=True))
        self._set("epochs", check_int(self.epochs, "epochs", lo=0))
        self._set("weight_decay", check_float(self.weight_decay, "weight_decay", lo=0.0))
        self._set(
            "val_fraction",
            check_float(self.val_fraction, "val_fraction", lo=0.0, hi=1.0, hi_open=True),
        )
        if self.batch_size is not None:
            self._set("batch_size", check_int(self.batch_size, "batch_size", lo=1))
        if self.patience is not None:
            self._set("patience", check_int(self.patience, "patience", lo=1))
            if self.val_fraction == 0:
                raise FastinvError(
                    "patience (early stopping) needs validation rows; set val_fraction > 0 "
                    "or patience=None"
                )
        if self.momentum is not None:
            if self.optimizer == "adam":
                raise FastinvError(
                    "momentum applies to optimizer 'gd' or 'sgd' only; drop it for Adam "
                    "(or choose optimizer='sgd')"
                )
            self._set(
                "momentum", check_float(self.momentum, "momentum", lo=0.0, hi=1.0, hi_open=True)
            )

    def _check_run(self) -> None:
        self._set("seed", check_seed(self.seed))
        self._set("checkpoints", _checkpoint_epochs(self.checkpoints, self.epochs))
        if self.num_threads is not None:
            self._set("num_threads", check_int(self.num_threads, "num_threads", lo=1))
        if self.matmul_precision is not None:
            check_choice(
                self.matmul_precision, "matmul_precision", MATMUL_PRECISIONS, normalize=False
            )
        self._set("device", _device_name(self.device))
        if self.callback is not None and not callable(self.callback):
            raise fail("callback", "a callable or None", self.callback)
        self._set("progress", bool(self.progress))

    def _check_precision(self) -> None:
        """``precision``: one of PRECISIONS; bf16/tf32 need float32 weights, and tf32 (which
        sets the matmul precision itself) no ``matmul_precision`` other than "high"."""
        check_choice(self.precision, "precision", PRECISIONS, normalize=False)
        if self.precision == "float32":
            return
        if self.dtype not in (None, "float32"):
            raise FastinvError(
                f"precision={self.precision!r} speeds up float32 training; with "
                f"dtype={self.dtype!r} use precision='float32' (or dtype='float32')"
            )
        if self.precision == "tf32" and self.matmul_precision not in (None, "high"):
            raise FastinvError(
                f"precision='tf32' sets the float32 matmul precision to 'high'; drop "
                f"matmul_precision={self.matmul_precision!r} or use precision='float32'"
            )

    def _check_model(self) -> None:
        if isinstance(self.model, str):
            if self.model not in MODELS:
                raise FastinvError(
                    f"unknown model {self.model!r}; choose one of {', '.join(MODELS)} or pass "
                    "an nn.Module"
                )
            width, depth = check_architecture(
                self.model,
                width=self.width,
                depth=self.depth,
                activation=self.activation,
                init=self.init,
            )
            self._set("width", width)
            self._set("depth", depth)
        elif not _is_module(self.model):
            raise FastinvError(
                f"model must be one of {', '.join(MODELS)} or a torch.nn.Module, got "
                f"{type(self.model).__name__}"
            )
        self._set("bias", bool(self.bias))
        self._set("dtype", _dtype_field(self.dtype))
        self._set("image_shape", check_image_shape(self.image_shape))
        if self.backprojection is not None:
            if self.model != "cnn":
                raise FastinvError(
                    "backprojection is used by model='cnn' only; drop it or choose model='cnn'"
                )
            shape = getattr(self.backprojection, "shape", None)
            if shape is None or len(shape) != 2:
                raise fail(
                    "backprojection",
                    "None, an (n, m) matrix Aᵀ or an operator A (with shape (m, n) and to_dense)",
                    self.backprojection,
                )

    # ----------------------------------------------------------------------- derived
    @property
    def effective_momentum(self) -> float:
        """The momentum used: the given one, else 0.9 for ``"sgd"`` and 0 for ``"gd"``/Adam."""
        if self.momentum is not None:
            return self.momentum
        return 0.9 if self.optimizer == "sgd" else 0.0

    @property
    def keep_best(self) -> bool:
        """Early stopping is on: the weights of the best validation loss are restored."""
        return self.patience is not None

    # ----------------------------------------------------------------------- dicts
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the settings, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict:
        """The settings as a dict (``checkpoints`` as a list).

        Plain JSON values when ``model`` is a name and ``callback`` and ``backprojection``
        are None (``image_shape`` as a list).
        """
        d = {name: getattr(self, name) for name in self.field_names()}
        for name in ("checkpoints", "image_shape"):
            if d[name] is not None:
                d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> TrainSpec:
        """A spec from a dict of settings (missing ones take their defaults).

        Parameters
        ----------
        d : mapping
            Setting name -> value, e.g. :meth:`to_dict`'s output or a run config's fields.
        strict : bool
            Refuse keys that are not settings; with False they are skipped (so a larger
            config, such as a run's, can be passed whole).
        """
        names = cls.field_names()
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown and strict:
            raise FastinvError(
                f"unknown training settings {unknown}; known settings: {sorted(names)}"
            )
        return cls(**{k: v for k, v in d.items() if k in names})


def _checkpoint_epochs(checkpoints, epochs: int) -> tuple[int, ...] | None:
    if checkpoints is None:
        return None
    out = []
    for c in checkpoints:
        c = check_int(c, "each checkpoint epoch", lo=0)
        if c > epochs:
            raise FastinvError(
                f"checkpoint epoch {c} lies beyond epochs={epochs}; ask for epochs in [0, {epochs}]"
            )
        out.append(c)
    return tuple(sorted(set(out)))


def _is_module(obj) -> bool:
    """True for a torch.nn.Module (without importing torch when nobody has)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _device_name(device):
    """A torch.device as its string; anything else as given (resolve_device checks it)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(device, torch.device):
        return str(device)
    return device


def _dtype_field(dtype) -> str | None:
    """None, or the float type's name (``"float32"``/``"float64"``) of any dtype spelling."""
    if dtype is None or (isinstance(dtype, str) and dtype in ("float32", "float64")):
        return dtype
    from fastinv._device import dtype_name, torch_dtype

    return dtype_name(torch_dtype(dtype))
