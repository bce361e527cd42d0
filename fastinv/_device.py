"""Device and dtype policy: the one place that decides CPU or CUDA, NumPy or torch, and which
float type a result has.

- Devices: :func:`resolve_device` turns ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a
  ``torch.device`` (``"auto"``: CUDA when torch sees a device); :func:`cuda_available` asks
  without raising; :func:`device_free_bytes` is the free memory on a CUDA device.
- Backends: :func:`is_torch` tells a torch tensor from an array without importing torch.
- Dtypes: float32 stays float32 and everything else computes in float64
  (:func:`float_dtype`); :func:`torch_dtype` and :func:`dtype_name` convert names; the one
  tolerance table :data:`TOL`, keyed by dtype, serves tests and checks alike.

torch is imported only inside the functions that need it, so ``import fastinv`` stays light.
"""

from __future__ import annotations

import sys

import numpy as np

from fastinv.errors import FastinvError

__all__ = [
    "TOL",
    "cuda_available",
    "device_free_bytes",
    "dtype_name",
    "float_dtype",
    "is_torch",
    "resolve_device",
    "rtol",
    "torch_dtype",
]

#: relative tolerances by dtype: ``rtol`` for comparing results of equal algorithms,
#: ``eps`` the unit roundoff.
TOL = {
    np.dtype(np.float32): {"rtol": 2e-4, "eps": float(np.finfo(np.float32).eps)},
    np.dtype(np.float64): {"rtol": 1e-10, "eps": float(np.finfo(np.float64).eps)},
}


def float_dtype(dtype) -> np.dtype:
    """float32 stays float32; every other input (ints, float16, float64) maps to float64."""
    d = np.dtype(dtype)
    return d if d == np.float32 else np.dtype(np.float64)


def rtol(dtype) -> float:
    """The comparison tolerance of :data:`TOL` for ``dtype``'s float type."""
    return TOL[float_dtype(dtype)]["rtol"]


def is_torch(x) -> bool:
    """True for a torch tensor (without importing torch when nobody has)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def cuda_available() -> bool:
    """True when torch sees a CUDA device."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device=None):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a ``torch.device``.

    ``"auto"`` (or None) is CUDA when torch sees a CUDA device, else the CPU. Asking for CUDA
    without one raises :class:`FastinvError` rather than failing later inside torch.
    """
    import torch

    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise FastinvError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    d = device.strip().lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d == "cpu":
        return torch.device("cpu")
    if d == "cuda" or d.startswith("cuda:"):
        return _cuda_device(device, d)
    raise FastinvError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def _cuda_device(asked: str, d: str):
    import torch

    if not torch.cuda.is_available():
        raise FastinvError(
            f"--device {asked} was asked for but torch sees no CUDA device; "
            "use --device cpu or auto"
        )
    try:
        dev = torch.device(d)
    except RuntimeError:
        raise FastinvError(f"cannot parse device {asked!r}; use 'cuda' or 'cuda:N'") from None
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise FastinvError(
            f"--device {asked} was asked for but torch sees only "
            f"{torch.cuda.device_count()} CUDA device(s); use a smaller index or 'cuda'"
        )
    return dev


def device_free_bytes(dev) -> int | None:
    """Free memory on a CUDA device in bytes; None for the CPU or when torch cannot tell."""
    if getattr(dev, "type", str(dev)) != "cuda":
        return None
    import torch

    try:
        free, _total = torch.cuda.mem_get_info(dev)
    except Exception:  # noqa: BLE001 - no reliable figure: the caller skips its check
        return None
    return int(free)


def torch_dtype(dtype):
    """Map ``"float32"``/``"float64"``, a numpy dtype or a torch dtype to a torch float dtype."""
    import torch

    table = {"float32": torch.float32, "float64": torch.float64}
    if isinstance(dtype, torch.dtype):
        if dtype in table.values():
            return dtype
        raise FastinvError(f"dtype must be float32 or float64, got {dtype}")
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    name = str(name).replace("torch.", "")
    if name in table:
        return table[name]
    raise FastinvError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def dtype_name(dtype) -> str:
    """``torch.float32`` (or ``np.float32``) -> ``"float32"``."""
    return str(getattr(dtype, "name", None) or dtype).replace("torch.", "")


__all__ += ["to_numpy"]


def to_numpy(x) -> np.ndarray:
    """A torch tensor as a NumPy array (detached, on the CPU); anything else by ``np.asarray``."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
