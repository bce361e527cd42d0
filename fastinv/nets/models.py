"""Torch networks that map measurements y to signals x: MLP, linear, residual and CNN models.

Every model maps a tensor of shape (m, n) to (m, n_out) (n_out = n unless asked otherwise).
:func:`make_model` builds one reproducibly: the weights are drawn on the CPU from a
``torch.Generator`` seeded with ``seed`` (the global torch RNG is neither read nor changed),
then moved to ``device``, so the same seed gives the same initial weights on every device.
The construction arguments are stored on the module as ``module.fastinv_spec`` (plain
values), which :func:`save_model` writes next to the state_dict and :func:`load_saved_model`
uses to rebuild the module. (A user's own model, in any form, is loaded by
:func:`fastinv.nets.loading.load_model`.)

This module imports torch at import time; ``fastinv`` itself only loads it on use.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from fastinv._device import dtype_name
from fastinv._device import torch_dtype as resolve_dtype
from fastinv._validation import check_int, check_matrix
from fastinv.errors import FastinvError
from fastinv.nets.spec import (
    ACTIVATIONS,
    CNN_WIDTH,
    INITS,
    MODELS,
    check_architecture,
    check_image_shape,
)

__all__ = [
    "ACTIVATIONS",
    "CNN_WIDTH",
    "INITS",
    "MODELS",
    "ImageCNN",
    "ImageModelAdapter",
    "ResidualMLP",
    "build_model",
    "default_width",
    "load_saved_model",
    "make_model",
    "save_model",
]


def default_width(n: int) -> int:
    """Hidden width used when ``width=None``: ``max(n, 64)``.

    A network whose hidden layers are narrower than n cannot represent a full-rank inverse
    (its Jacobian has rank at most the narrowest width), so the default never goes below n.
    """
    return max(int(n), 64)


def _activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "identity": nn.Identity,
    }[name]()


def _gain(activation: str) -> float:
    """Gain for orthogonal init of a layer followed by ``activation``."""
    if activation in ("relu", "gelu", "silu"):
        return math.sqrt(2.0)
    if activation == "tanh":
        return 5.0 / 3.0
    return 1.0


def _linear(n_in: int, n_out: int, bias: bool, dtype: torch.dtype) -> nn.Linear:
    # skip_init builds on the meta device: no draw from the global RNG, no wasted init.
    return torch.nn.utils.skip_init(nn.Linear, n_in, n_out, bias=bias, device="cpu", dtype=dtype)


def _with_gen(fn, tensor: torch.Tensor, gen: torch.Generator, **kw) -> None:
    """Call an ``nn.init`` function with ``generator=gen``.

    Older torch releases lack the ``generator`` argument; there the global CPU RNG is seeded
    from ``gen`` inside ``torch.random.fork_rng``, so its state outside is left untouched.
    """
    try:
        fn(tensor, generator=gen, **kw)
    except TypeError:
        sub = int(torch.randint(0, 2**62, (1,), generator=gen))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sub)
            fn(tensor, **kw)


def _init_linear(
    layer: nn.Module, init: str, gen: torch.Generator, *, gain: float = 1.0, zero: bool = False
) -> None:
    """Initialise ``layer`` in place from ``gen``.

    ``layer`` is an ``nn.Linear`` or ``nn.Conv2d`` (fan_in = inputs times kernel size).
    ``default`` reproduces PyTorch's nn.Linear / nn.Conv2d init (Kaiming-uniform with
    a = sqrt(5), bias uniform in ±1/sqrt(fan_in)); ``orthogonal`` draws an orthogonal weight
    scaled by ``gain`` and a zero bias; ``zero=True`` (or ``init="zeros"``) sets weight and
    bias to zero.
    """
    with torch.no_grad():
        if zero or init == "zeros":
            layer.weight.zero_()
            if layer.bias is not None:
                layer.bias.zero_()
            return
        if init == "orthogonal":
            _with_gen(nn.init.orthogonal_, layer.weight, gen, gain=gain)
            if layer.bias is not None:
                layer.bias.zero_()
            return
        _with_gen(nn.init.kaiming_uniform_, layer.weight, gen, a=math.sqrt(5))
        if layer.bias is not None:
            fan_in = layer.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            _with_gen(nn.init.uniform_, layer.bias, gen, a=-bound, b=bound)


def _mlp(
    n: int,
    n_out: int,
    width: int,
    depth: int,
    activation: str,
    bias: bool,
    init: str,
    dtype: torch.dtype,
    gen: torch.Generator,
    *,
    zero_last: bool = False,
) -> nn.Sequential:
    sizes = [n] + [width] * depth + [n_out]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = _linear(sizes[i], sizes[i + 1], bias, dtype)
        last = i == len(sizes) - 2
        _init_linear(
            lin,
            init,
            gen,
            gain=1.0 if last else _gain(activation),
            zero=zero_last and last,
        )
        layers.append(lin)
        if not last:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


class ResidualMLP(nn.Module):
    """``f(y) = skip(y) + correction(y)``: a learned linear map plus an MLP correction.

    ``skip`` is one ``nn.Linear(n, n_out)``; ``correction`` is an MLP whose output layer
    starts at zero, so at initialisation the network is exactly its linear part and the
    nonlinear correction grows only as far as training asks for it.
    """

    def __init__(self, skip: nn.Linear, correction: nn.Sequential):
        super().__init__()
        self.skip = skip
        self.correction = correction

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.skip(y) + self.correction(y)


class ImageCNN(nn.Module):
    """``f(y) = B y + CNN(B y)``: a residual CNN on the back-projection (post-processing).

    ``B`` is the fixed back-projection (an (n_out, n_in) buffer, usually Aᵀ; None when the
    network works on y itself, n_in = n_out). Rows of shape (m, n_out) are viewed as images
    (m, C, H, W) (row-major: pixel (r, c) of channel k is entry k·H·W + r·W + c) for the
    3×3 convolutions (zero padding, same size) and flattened back. The output layer starts at
    zero, so at initialisation the network is exactly the back-projection.
    """

    def __init__(self, body: nn.Sequential, image_shape, backprojection):
        super().__init__()
        self.image_shape = tuple(int(d) for d in image_shape)  # (C, H, W)
        self.body = body
        if isinstance(backprojection, torch.Tensor) or backprojection is None:
            self.register_buffer("backprojection", backprojection)
            self.operator = None
        else:  # an operator with a torch path: Aᵀ y matrix-free, nothing stored
            self.register_buffer("backprojection", None)
            self.operator = backprojection

    def back_project(self, y: torch.Tensor) -> torch.Tensor:
        """``B y`` for each row of y (y itself without a back-projection)."""
        if self.operator is not None:
            return self.operator.adjoint(y)
        if self.backprojection is None:
            return y
        return nn.functional.linear(y, self.backprojection)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        b = self.back_project(y)
        z = self.body(b.reshape(b.shape[0], *self.image_shape))
        return b + z.reshape(b.shape)


def _cnn_body(
    channels: int, width: int, depth: int, activation: str, bias: bool, init: str, dtype, gen
) -> nn.Sequential:
    """Conv(C→width) - act - [Conv(width→width) - act] * (depth-1) - Conv(width→C), all 3×3;
    the output layer is zero (``init="zeros"``: the hidden layers get the default init)."""
    sizes = [channels] + [width] * depth + [channels]
    hidden_init = "default" if init == "zeros" else init
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        conv = torch.nn.utils.skip_init(
            nn.Conv2d, sizes[i], sizes[i + 1], 3, padding=1, bias=bias, device="cpu", dtype=dtype
        )
        last = i == len(sizes) - 2
        _init_linear(conv, hidden_init, gen, gain=_gain(activation), zero=last)
        layers.append(conv)
        if not last:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


def _image_shape_for(image_shape, backprojection, n_out: int) -> tuple[int, int, int]:
    """The CNN's image shape (C, H, W): the one given, else the operator's; C·H·W = n_out."""
    shape = check_image_shape(image_shape)
    if shape is None:
        shape = check_image_shape(getattr(backprojection, "image_shape", None))
    if shape is None:
        raise FastinvError(
            "model 'cnn' needs the image shape of the signals; pass image_shape=(H, W) (or "
            "the operator, whose image_shape it reads, as backprojection)"
        )
    if len(shape) == 2:
        shape = (1, *shape)
    if math.prod(shape) != n_out:
        raise FastinvError(
            f"image_shape {shape[1:] if shape[0] == 1 else shape} has {math.prod(shape)} "
            f"pixels but the signals have {n_out} entries; give the operator's image shape"
        )
    return shape


def _matrix_free(backprojection) -> bool:
    """Apply Aᵀ through the operator rather than as a stored matrix: an operator whose
    products are torch code (``torch_native``) and that is not a plain dense matrix."""
    return bool(getattr(backprojection, "torch_native", False)) and (
        getattr(backprojection, "structure", "dense") != "dense"
    )


def _operator_record(op, n: int, n_out: int) -> dict:
    """What rebuilds a matrix-free back-projection: the catalogue name, n and parameters."""
    if tuple(op.shape) != (n, n_out):
        raise FastinvError(
            f"the operator A of shape {tuple(op.shape)} does not map x ({n_out} entries) to y "
            f"({n} entries); the back-projection must be A of shape ({n}, {n_out}) or Aᵀ"
        )
    return {"operator": op.name, "n": int(op.n), "params": dict(op.params)}


def _operator_from_record(rec: dict):
    """The operator of :func:`_operator_record` (catalogue operators only)."""
    from fastinv.problem.catalogue import CATALOGUE
    from fastinv.problem.operators import make_operator

    name = rec.get("operator")
    if name not in CATALOGUE:
        raise FastinvError(
            f"this CNN's back-projection is the operator {name!r}, which is not in fastinv's "
            "catalogue and cannot be rebuilt from a file; rebuild the network with "
            "make_model('cnn', ..., backprojection=your_operator) and load its state_dict"
        )
    return make_operator(name, rec["n"], **rec.get("params", {}))


def _backprojection_matrix(backprojection, n: int, n_out: int) -> np.ndarray | None:
    """The back-projection as an (n_out, n) float64 matrix: Aᵀ of an operator A (anything
    with ``to_dense()``), or the matrix given; None (work on y) needs n = n_out."""
    if backprojection is None:
        if n != n_out:
            raise FastinvError(
                f"model 'cnn' without a back-projection works on y itself, which needs n = "
                f"n_out, got n = {n}, n_out = {n_out}; pass backprojection=A (the operator) or Aᵀ"
            )
        return None
    if callable(getattr(backprojection, "to_dense", None)):
        B = np.asarray(backprojection.to_dense(), dtype=np.float64).T
        what = f"the operator's Aᵀ (A of shape {tuple(B.shape[::-1])})"
    else:
        if isinstance(backprojection, torch.Tensor):
            backprojection = backprojection.detach().cpu().numpy()
        B = check_matrix(backprojection, "backprojection")
        what = f"backprojection of shape {B.shape}"
    if B.shape != (n_out, n):
        raise FastinvError(
            f"{what} does not map y ({n} entries) to x ({n_out} entries); the back-projection "
            f"must be an ({n_out}, {n}) matrix Aᵀ, or the operator A of shape ({n}, {n_out})"
        )
    return np.ascontiguousarray(B)


def _build_cnn(n, n_out, width, depth, activation, bias, init, dtype, gen, *, image_shape, B):
    """``"cnn"``: :class:`ImageCNN` with the back-projection ``B`` (an array, an operator
    applied matrix-free, or None)."""
    body = _cnn_body(image_shape[0], width, depth, activation, bias, init, dtype, gen)
    bp = B if B is None or _matrix_free(B) else torch.as_tensor(B, dtype=dtype).clone()
    return ImageCNN(body, image_shape, bp)


class ImageModelAdapter(nn.Module):
    """Rows in, rows out, for a user's model that works on image tensors.

    ``forward(y)`` views the rows y (b, n_in) as measurements of shape (b, *y_shape), calls
    ``model(y_img)`` — or ``model(y_img, physics)`` (deepinv's convention) when a physics is
    given — checks that the result is a tensor of shape (b, *x_shape) and returns it
    flattened row-major to (b, n). Differentiable, and fine under ``torch.func`` (the audit's
    Jacobians). The physics is kept outside the module tree, so moving or casting the adapter
    leaves the operator alone.
    """

    def __init__(self, model, x_shape, y_shape, physics=None):
        super().__init__()
        self.model = model
        self.x_shape = tuple(int(d) for d in x_shape)
        self.y_shape = tuple(int(d) for d in y_shape)
        self._physics = () if physics is None else (physics,)

    @property
    def physics(self):
        """The physics passed to the model, or None."""
        return self._physics[0] if self._physics else None

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        b = y.shape[0]
        y_img = y.reshape(b, *self.y_shape)
        out = self.model(y_img, *self._physics)
        want = (b, *self.x_shape)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            call = "model(y, physics)" if self._physics else "model(y)"
            raise FastinvError(
                f"{call} maps images of shape {tuple(y_img.shape)} to {got}; it must return "
                f"images of shape {want} (batch, channels, height, width) for this operator"
            )
        return out.reshape(b, -1)


def make_model(
    model: str = "mlp",
    n: int | None = None,
    *,
    n_out: int | None = None,
    width: int | None = None,
    depth: int = 2,
    activation: str = "relu",
    bias: bool = True,
    init: str = "default",
    dtype: Any = torch.float32,
    seed: int = 0,
    device: str | torch.device | None = None,
    image_shape: tuple[int, ...] | None = None,
    backprojection: Any = None,
) -> nn.Module:
    """Build a network mapping y of shape (m, n) to x of shape (m, n_out).

    Parameters
    ----------
    model : {"mlp", "linear", "residual", "cnn"}
        ``"mlp"``: Linear(n, width) - act - [Linear(width, width) - act] * (depth - 1) -
        Linear(width, n_out); ``depth=0`` is a single Linear(n, n_out).
        ``"linear"``: one ``nn.Linear(n, n_out, bias=bias)`` (f(y) = W y + b).
        ``"residual"``: a learned linear skip plus an MLP correction whose output layer
        starts at zero (see :class:`ResidualMLP`).
        ``"cnn"``: x = B y + CNN(B y) with B the fixed ``backprojection`` (y itself without
        one) and CNN = Conv(1, width) - act - [Conv(width, width) - act] * (depth - 1) -
        Conv(width, 1), 3×3 convolutions on the rows viewed as ``image_shape`` images; the
        output layer starts at zero, so the network starts as exactly B y (see
        :class:`ImageCNN`).
    n : int
        Input dimension (length of y).
    n_out : int, optional
        Output dimension (length of x); default ``n``.
    width : int, optional
        Hidden width; default :func:`default_width` = ``max(n, 64)`` (never narrower than n,
        since a narrower layer caps the rank of the map the network can represent). For
        ``"cnn"``: channels of the hidden layers, default :data:`CNN_WIDTH` = 32.
    depth : int
        Number of hidden layers (>= 0). Ignored by ``"linear"``.
    activation : {"relu", "tanh", "gelu", "silu", "identity"}
        ``"identity"`` gives a deep linear network.
    bias : bool
        Biases in every layer. A bias-free ReLU MLP is positively homogeneous,
        f(y) = J(y) y.
    init : {"default", "zeros", "orthogonal"}
        ``"default"``: PyTorch's nn.Linear initialisation, drawn from the seeded generator.
        ``"orthogonal"``: orthogonal weights (gain sqrt(2) before relu/gelu/silu, 5/3 before
        tanh, 1 before the output) and zero biases.
        ``"zeros"``: the network starts as the zero map: for ``"linear"`` W = 0 (and b = 0);
        for ``"residual"`` the skip and the correction's output layer are zero while the
        hidden layers get the default init (so too for ``"cnn"``, whose output layer always
        starts at zero). Refused for ``"mlp"``, whose gradients all vanish at zero so it could
        never leave it.
    dtype : "float32", "float64" or torch dtype
        Parameter dtype.
    seed : int
        Seed of the CPU ``torch.Generator`` that draws the initial weights.
    device : str or torch.device, optional
        Where to put the module (default CPU). Weights are drawn on the CPU first, so they
        do not depend on the device.
    image_shape : tuple (H, W) or (C, H, W), optional
        ``"cnn"`` only (ignored otherwise): the image shape of x (C·H·W = n_out); default the
        ``backprojection`` operator's ``image_shape``.
    backprojection : array of shape (n_out, n), or an operator A of shape (n, n_out), optional
        ``"cnn"`` only: the fixed map B applied before the CNN, usually Aᵀ. A fastinv
        ``Operator`` whose products are torch code (``op.torch_native``: FFT, DCT, zero
        boundary, Kronecker, diagonal, a deepinv physics) is applied matrix-free through
        ``op.adjoint`` (differentiable, on the model's device; nothing n × n is stored, and a
        saved model records the catalogue name and parameters to rebuild it). Any other
        operator is made dense with its ``to_dense()``, and a matrix is used as given: stored
        as a buffer (saved with the weights, never trained). None: the CNN works on y itself
        (needs n = n_out).

    Returns
    -------
    torch.nn.Module
        Maps a tensor (m, n) to (m, n_out). ``module.fastinv_spec`` holds the arguments as
        plain values, enough for :func:`build_model` to rebuild it.
    """
    if not isinstance(model, str) or model not in MODELS:
        raise FastinvError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if n is None:
        raise FastinvError("make_model needs the input dimension n, e.g. make_model('mlp', n=64)")
    n = check_int(n, "n", lo=1)
    n_out = n if n_out is None else check_int(n_out, "n_out", lo=1)
    width, depth = check_architecture(
        model, width=width, depth=depth, activation=activation, init=init
    )
    tdtype = resolve_dtype(dtype)
    seed = int(seed)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    spec = {"model": model, "n": n, "n_out": n_out}
    if model == "cnn":
        if isinstance(backprojection, dict):  # a saved model's matrix-free operator
            backprojection = _operator_from_record(backprojection)
        shape = _image_shape_for(image_shape, backprojection, n_out)
        if _matrix_free(backprojection):
            B, record = backprojection, _operator_record(backprojection, n, n_out)
        else:
            B = _backprojection_matrix(backprojection, n, n_out)
            record = B is not None
        width = CNN_WIDTH if width is None else width
        args = (n, n_out, width, depth, activation, bool(bias), init, tdtype, gen)
        net = _build_cnn(*args, image_shape=shape, B=B)
        spec["image_shape"] = list(shape[1:] if shape[0] == 1 else shape)
        spec["backprojection"] = record
    elif backprojection is not None:
        raise FastinvError(
            f"backprojection is used by model 'cnn' only, not {model!r}; drop it or choose "
            "model='cnn'"
        )
    else:
        if width is None:
            width = default_width(max(n, n_out))
        net = _BUILDERS[model](n, n_out, width, depth, activation, bool(bias), init, tdtype, gen)
    net.fastinv_spec = {
        **spec,
        "width": width,
        "depth": depth,
        "activation": activation,
        "bias": bool(bias),
        "init": init,
        "dtype": dtype_name(tdtype),
        "seed": seed,
    }
    if device is not None:
        net.to(device)
    return net


def _build_linear(n, n_out, width, depth, activation, bias, init, dtype, gen) -> nn.Linear:
    """``"linear"``: one ``nn.Linear(n, n_out)`` (width, depth and activation unused)."""
    net = _linear(n, n_out, bias, dtype)
    _init_linear(net, init, gen)
    return net


def _build_residual(n, n_out, width, depth, activation, bias, init, dtype, gen) -> ResidualMLP:
    """``"residual"``: a linear skip plus an MLP correction whose output layer starts at 0.

    ``init="zeros"`` zeroes the skip only; the correction's hidden layers get the default init.
    """
    skip = _linear(n, n_out, bias, dtype)
    _init_linear(skip, init, gen)
    hidden_init = "default" if init == "zeros" else init
    corr = _mlp(n, n_out, width, depth, activation, bias, hidden_init, dtype, gen, zero_last=True)
    return ResidualMLP(skip, corr)


#: model name -> builder(n, n_out, width, depth, activation, bias, init, dtype, generator)
_BUILDERS = {"mlp": _mlp, "linear": _build_linear, "residual": _build_residual}


def build_model(spec: dict, *, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild an (initial) module from a ``fastinv_spec`` dict; load a state_dict into it.

    A CNN's back-projection (``"backprojection": true``) is rebuilt as zeros: it is a buffer,
    and the state_dict loaded into the module holds the matrix."""
    known = {"model", "n", "n_out", "width", "depth", "activation", "bias", "init", "dtype", "seed"}
    known |= {"image_shape", "backprojection"}
    unknown = set(spec) - known
    if unknown:
        raise FastinvError(
            f"model spec has unknown keys {sorted(unknown)}; expected keys among {sorted(known)}"
        )
    spec = dict(spec)
    name = spec.pop("model", "mlp")
    n = spec.pop("n", None)
    bp = spec.pop("backprojection", False)
    if isinstance(bp, dict):  # a matrix-free operator: rebuilt from its catalogue record
        spec["backprojection"] = bp
    elif bp:  # a placeholder: the state_dict holds the matrix
        spec["backprojection"] = np.zeros((spec.get("n_out") or n, n))
    return make_model(name, n, device=device, **spec)


def save_model(module: nn.Module, path: str | os.PathLike) -> None:
    """Save ``{"fastinv_spec", "state_dict", "history", "config"}`` with ``torch.save``.

    The module must carry ``fastinv_spec`` (built by :func:`make_model`). The history's
    checkpoints and all tensors are saved on the CPU. The file is written to a temporary name
    and renamed, so an interrupted save never leaves a half-written file.
    """
    spec = getattr(module, "fastinv_spec", None)
    if spec is None:
        raise FastinvError(
            "this module has no fastinv_spec (it was not built by fastinv.make_model); save its "
            "state_dict with torch.save instead"
        )
    payload = {
        "fastinv_spec": dict(spec),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }
    hist = getattr(module, "fastinv_history", None)
    if hist is not None:
        payload["history"] = hist
    cfg = getattr(module, "fastinv_config", None)
    if cfg is not None:
        payload["config"] = cfg
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_saved_model(
    path: str | os.PathLike, *, device: str | torch.device | None = None
) -> nn.Module:
    """Load a module saved by :func:`save_model` (rebuilt from its spec, weights loaded).

    Uses ``torch.load(weights_only=True)``: no arbitrary code runs. The module is returned in
    eval mode on ``device`` (default CPU), with ``fastinv_history``/``fastinv_config`` restored
    when saved.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FastinvError(f"model file {path!r} does not exist; check the path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not our format"
        raise FastinvError(
            f"could not read {path!r} as a fastinv model file ({type(exc).__name__}); save models "
            "with fastinv.nets.models.save_model"
        ) from None
    if not isinstance(payload, dict) or "fastinv_spec" not in payload:
        raise FastinvError(
            f"{path!r} holds no fastinv_spec (it was not written by fastinv's save_model); "
            "rebuild your network yourself and load its state_dict"
        )
    net = build_model(payload["fastinv_spec"])
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise FastinvError(
            f"the weights in {path!r} do not fit the saved spec ({str(exc).splitlines()[0]}); "
            "the file is damaged or was edited"
        ) from None
    if "history" in payload:
        net.fastinv_history = payload["history"]
    if "config" in payload:
        net.fastinv_config = payload["config"]
    if device is not None:
        net.to(device)
    return net.eval()
