"""The one exception type fastinv raises for bad input.

Every check of user input raises :class:`FastinvError` with a message that says what was
wrong and how to fix it. The CLI turns it into one line on stderr and exit code 2.
"""

from __future__ import annotations

import numpy as np


class FastinvError(ValueError):
    """Bad input: the message says what was wrong and what to do instead."""


def check_finite(arr: np.ndarray, what: str) -> None:
    """Raise FastinvError naming the first non-finite entry of ``arr``."""
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        idx = tuple(int(i) for i in bad[0])
        val = arr[idx]
        raise FastinvError(
            f"{what} contains {bad.shape[0]} non-finite value(s) (first: {val} at index "
            f"{idx}); remove or replace NaN/Inf entries"
        )


def check_2d(arr, what: str, *, shape: tuple | None = None) -> np.ndarray:
    """Return ``arr`` as a 2-D ndarray or raise FastinvError describing the shape problem.

    ``shape`` may hold None for a free dimension.
    """
    a = np.asarray(arr)
    if a.ndim != 2:
        raise FastinvError(f"{what} must be a 2-D array, got shape {a.shape}")
    if shape is not None:
        for got, want in zip(a.shape, shape, strict=True):
            if want is not None and got != want:
                raise FastinvError(f"{what} must have shape {_fmt(shape)}, got {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise FastinvError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return a


def _fmt(shape) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
