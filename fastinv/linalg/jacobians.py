"""Jacobians of a torch model at probe points: all of them, or their mean.

``torch.func.jacrev`` (or ``jacfwd``) of the model on one probe, vmapped over batches of
probes; the model runs in its own dtype and on its own device. :func:`jacobians` returns the
(m, k, n) stack in float64, :func:`mean_jacobian` accumulates the mean without storing it.
"""

from __future__ import annotations

import math

import numpy as np

from fastinv._device import is_torch
from fastinv._validation import check_choice, check_int
from fastinv.errors import FastinvError
from fastinv.io import available_memory
from fastinv.linalg.moments import check_real_2d

__all__ = ["jacobians", "mean_jacobian", "module_dtype_device"]

#: a batch of Jacobians takes at most this many bytes (caps ``batch_size``); the vmapped
#: reverse pass holds several times that in intermediates, so it is kept moderate
_JAC_BATCH_BYTES = 1 << 28


def module_dtype_device(model, Y):
    """(torch dtype, torch device) a module computes in: those of its first floating-point
    parameter or buffer, else of the probes ``Y`` (float64 unless they are float32, CPU
    for NumPy probes)."""
    import torch

    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    if is_torch(Y):
        dt = Y.dtype if Y.is_floating_point() else torch.float64
        return dt, Y.device
    dt = torch.float32 if np.asarray(Y).dtype == np.float32 else torch.float64
    return dt, torch.device("cpu")


def _available_bytes() -> float:
    """Memory available now, in bytes (inf when unknown)."""
    avail = available_memory()
    return math.inf if avail is None else float(avail)


def _batch_rows(batch_size, m: int, n: int, dtype) -> int:
    """``batch_size`` checked and capped so that a batch of (n, n) Jacobians takes at most
    256 MiB."""
    import torch

    batch_size = check_int(batch_size, "batch_size", lo=1)
    item = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8
    cap = max(1, _JAC_BATCH_BYTES // max(1, n * n * item))
    return int(min(batch_size, cap, m))


def _vmapped_jacobian(model, mode: str):
    """``Y (b, n) -> J (b, k, n)``: the Jacobian of one probe, vmapped."""
    import torch

    def single(y):
        out = model(y.unsqueeze(0))
        return out.squeeze(0)

    jac = torch.func.jacrev(single) if mode == "rev" else torch.func.jacfwd(single)
    return torch.func.vmap(jac)


def _jacobian_batches(vj, Y, bs: int, dtype, dev, n: int):
    """Yield ``(first row, J)`` for the probes in batches of ``bs`` rows."""
    import torch

    for a in range(0, Y.shape[0], bs):
        Yb = Y[a : a + bs]
        if isinstance(Yb, torch.Tensor):
            yt = Yb.detach().to(device=dev, dtype=dtype)
        else:
            yt = torch.as_tensor(np.asarray(Yb)).to(device=dev, dtype=dtype)
        try:
            with torch.no_grad():
                J = vj(yt)
        except Exception as e:  # noqa: BLE001
            raise FastinvError(
                f"the model raised {type(e).__name__}: {e} while differentiating a batch of "
                f"shape {tuple(yt.shape)}"
            ) from e
        if J.ndim != 3 or J.shape[0] != yt.shape[0] or J.shape[2] != n:
            raise FastinvError(
                f"the model's Jacobians have shape {tuple(J.shape)} for a batch "
                f"{tuple(yt.shape)}; the model must map (m, n) to (m, k)"
            )
        yield a, J


def _jac_setup(model, Y, batch_size, mode):
    """Check the arguments; returns ``(torch, m, n, batches)`` with ``batches()`` yielding
    ``(first row, J)``."""
    import torch

    if not isinstance(model, torch.nn.Module) and not callable(model):
        raise FastinvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    mode = check_choice(mode, "mode", ("rev", "fwd"), normalize=False)
    Y = check_real_2d(Y, "Y")
    m, n = Y.shape
    if m == 0:
        raise FastinvError("Y has no rows; pass at least one probe")
    if isinstance(model, torch.nn.Module):
        dtype, dev = module_dtype_device(model, Y)
    else:
        dtype, dev = torch.float64, torch.device("cpu")
    bs = _batch_rows(batch_size, m, n, dtype)
    vj = _vmapped_jacobian(model, mode)
    return torch, m, n, lambda: _jacobian_batches(vj, Y, bs, dtype, dev, n)


def jacobians(model, Y, *, batch_size: int = 64, mode: str = "rev") -> np.ndarray:
    """Jacobians ``J_i = ∂model(y)/∂y`` at the probes ``y_i`` (torch.func, vmapped).

    Parameters
    ----------
    model : torch.nn.Module
        Maps (m, n) to (m, k); evaluated in its own dtype and on its own device.
    Y : ndarray or torch.Tensor of shape (m, n)
        Probes.
    batch_size : int
        Probes per vmapped call (capped so that one batch of Jacobians takes ≤ 256 MiB).
    mode : {"rev", "fwd"}
        ``torch.func.jacrev`` (default) or ``jacfwd``.

    Returns
    -------
    ndarray of shape (m, k, n)
        float64; ``J[i, a, b] = ∂f_a/∂y_b`` at ``y_i``.

    Raises
    ------
    FastinvError
        If the (m, k, n) result would not fit in the available memory (use
        :func:`mean_jacobian`, or fewer probes).
    """
    torch, m, n, batches = _jac_setup(model, Y, batch_size, mode)
    out = None
    for a, J in batches():
        if out is None:
            out = _allocate(m, J.shape[1], n)
        # cast while copying into ``out``: no float64 temporary of the whole batch
        J = J.detach()
        if J.dtype not in (torch.float32, torch.float64):  # bfloat16 etc.: no NumPy dtype
            J = J.to(torch.float64)
        out[a : a + J.shape[0]] = J.cpu().numpy()
    return out


def _allocate(m: int, k: int, n: int) -> np.ndarray:
    """The (m, k, n) float64 result, refused up front when it would not fit in memory."""
    need = m * k * n * 8
    avail = _available_bytes()
    if need > 0.8 * avail:
        raise FastinvError(
            f"the {m} Jacobians of shape ({k}, {n}) need {need / 2**30:.1f} GiB but "
            f"only {avail / 2**30:.1f} GiB are free; use mean_jacobian() or fewer probes"
        )
    return np.empty((m, k, n))


def mean_jacobian(model, Y, *, batch_size: int = 64, mode: str = "rev") -> np.ndarray:
    """Mean Jacobian ``(1/m) Σ_i ∂model(y_i)/∂y``, accumulated without storing all of them.

    Parameters
    ----------
    model : torch.nn.Module
    Y : ndarray or torch.Tensor of shape (m, n)
    batch_size : int
        Probes per vmapped call (capped so that one batch of Jacobians takes ≤ 256 MiB).
    mode : {"rev", "fwd"}

    Returns
    -------
    ndarray of shape (k, n)
        float64 (accumulated in float64 on the model's device).
    """
    torch, m, n, batches = _jac_setup(model, Y, batch_size, mode)
    acc = None
    for _, J in batches():
        s = J.sum(0, dtype=torch.float64)
        acc = s if acc is None else acc.add_(s)
    return (acc / m).cpu().numpy()
