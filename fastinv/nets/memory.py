"""Memory planning for training: will the model, a batch and the data fit, and where?

:func:`plan_memory` estimates the bytes that training needs (parameters, gradients,
optimizer state, a best-weights copy, the activations of one batch, the data) and decides,
before anything is allocated, whether the data are moved to the device once or stay in host
memory, or that nothing fits (then it says what to change).
"""

from __future__ import annotations

from torch import nn

from fastinv._device import device_free_bytes
from fastinv.errors import FastinvError

__all__ = ["plan_memory"]

#: share of the free memory that training may plan to use
_HEADROOM = 0.9


def plan_memory(
    net: nn.Module,
    *,
    rows: int,
    batch_rows: int,
    n_in: int,
    n_out: int,
    itemsize: int,
    optimizer: str,
    momentum: float,
    keep_best: bool,
    device,
    zero_copy: bool,
    host_free: int | None,
) -> bool:
    """Whether the training data go to ``device`` once (else each batch is copied over).

    Parameters
    ----------
    net : torch.nn.Module
        The model (its parameter count and layer widths are read).
    rows : int
        Data rows (training and validation).
    batch_rows : int
        Most rows in one forward/backward pass.
    n_in, n_out : int
        Input and output widths of the data.
    itemsize : int
        Bytes per number in the training dtype.
    optimizer : str
        ``"adam"`` keeps two state tensors per parameter, SGD with momentum one.
    momentum : float
        The momentum actually used.
    keep_best : bool
        A copy of the best weights is kept (early stopping).
    device : torch.device
        Where training runs.
    zero_copy : bool
        On the CPU, the arrays are used as they are (no copy of the data is made).
    host_free : int or None
        Free host memory in bytes (None: unknown, no check).

    Raises
    ------
    FastinvError
        The model, its optimizer state and a batch do not fit on the device, or the data fit
        neither on the device nor on the host, or (on the CPU) the whole does not fit.
    """
    model_b = _model_bytes(net, optimizer, momentum, keep_best)
    act_b = _activation_bytes(net, batch_rows, n_in, n_out, itemsize)
    data_b = rows * (n_in + n_out) * itemsize
    if device.type == "cuda":
        return _plan_cuda(device, model_b, act_b, data_b, host_free)
    need = (0 if zero_copy else data_b) + model_b + act_b
    if host_free is not None and need > _HEADROOM * host_free:
        raise FastinvError(
            f"training needs about {_fmt_bytes(need)} of host memory (data "
            f"{_fmt_bytes(data_b)}, model and optimizer {_fmt_bytes(model_b)}) but only "
            f"{_fmt_bytes(host_free)} is available; use fewer samples, dtype='float32', a "
            "smaller width or batch_size, or device='cuda'"
        )
    return True


def _plan_cuda(dev, model_b: int, act_b: int, data_b: int, host_free: int | None) -> bool:
    dev_free = device_free_bytes(dev)
    if dev_free is None:
        return True
    if model_b + act_b > _HEADROOM * dev_free:
        raise FastinvError(
            f"training needs about {_fmt_bytes(model_b + act_b)} on {dev} for the model, "
            f"its optimizer state and a batch but only {_fmt_bytes(dev_free)} is free; use "
            "a smaller width or batch_size, dtype='float32', or device='cpu'"
        )
    if data_b + model_b + act_b <= _HEADROOM * dev_free:
        return True
    if host_free is not None and data_b > _HEADROOM * host_free:
        raise FastinvError(
            f"the training data need about {_fmt_bytes(data_b)} but neither {dev} "
            f"({_fmt_bytes(dev_free)} free) nor the host ({_fmt_bytes(host_free)} free) "
            "can hold them; use fewer samples or dtype='float32'"
        )
    return False


#: a forward pass without gradients (evaluation) keeps its activations below about this
EVAL_BYTES = 1 << 30


def eval_rows(model: nn.Module, n_in: int, n_out: int, itemsize: int, *, cap: int) -> int:
    """Rows per forward pass without gradients: at most ``cap``, and few enough that the
    pass's activations (:func:`_activation_bytes`) stay below :data:`EVAL_BYTES` (a CNN on
    256 × 256 images holds 32 channels of 65536 pixels per row: 8192 rows would be 137 GiB);
    at least 1."""
    per_row = _activation_bytes(model, 1, n_in, n_out, itemsize)
    return int(max(1, min(cap, EVAL_BYTES // max(per_row, 1))))


def _fmt_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if b < 1024 or unit == "TiB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{int(b)} B"
        b /= 1024
    return f"{b:.1f} TiB"  # pragma: no cover


def _model_bytes(model: nn.Module, optimizer: str, momentum: float, keep_best: bool) -> int:
    """Parameters, gradients, optimizer state and a best-weights copy; buffers (a CNN's
    back-projection) once, and once more in the best-weights copy."""
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    copies = 2  # parameters + gradients
    copies += 2 if optimizer == "adam" else (1 if momentum > 0 else 0)
    copies += 1 if keep_best else 0
    return nbytes * copies + buffers * (2 if keep_best else 1)


def _activation_bytes(model: nn.Module, rows: int, n_in: int, n_out: int, itemsize: int) -> int:
    """Rough activations of one forward/backward pass over ``rows`` rows.

    Three numbers per output of every linear layer, and per output pixel of every 2-D
    convolution: out_channels × H × W, with (H, W) the model's ``image_shape`` when it states
    one (fastinv's CNN keeps the image size), else n_out pixels.
    """
    widths = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    pixels = _pixels(model, n_out)
    widths += [m.out_channels * pixels for m in model.modules() if isinstance(m, nn.Conv2d)]
    per_row = n_in + 2 * n_out + 3 * sum(widths)
    return rows * per_row * itemsize


def _pixels(model: nn.Module, n_out: int) -> int:
    """Pixels per channel of the model's images: H·W of its ``image_shape``, else n_out."""
    shape = getattr(model, "image_shape", None)
    if isinstance(shape, tuple) and len(shape) >= 2:
        return int(shape[-1]) * int(shape[-2])
    return n_out
