"""dtype handling and the one tolerance table (keyed by dtype) that tests and checks use."""

from __future__ import annotations

import numpy as np

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
    return TOL[float_dtype(dtype)]["rtol"]
