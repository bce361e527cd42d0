"""Argument validation: every check of user input, one message format.

Each check takes the value and ``what`` (the name the user knows it by: ``"n"``,
``"--epochs"``, ``"shaw: parameter n"``) and returns the value converted to the plain Python
type, or raises :class:`~fastinv.errors.FastinvError` with one message of the form

    ``{what} must be {constraint}, got {value!r}``

so that the CLI can print it on one line. Constraints are declared once, at the call:
``check_int(k, "k", lo=1, hi=n)``, ``check_float(lr, "lr", lo=0, lo_open=True)``,
``check_choice(opt, "optimizer", OPTIMIZERS)``. Array checks (``check_2d``,
``check_finite``) live here too.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from fastinv.errors import FastinvError

__all__ = [
    "check_2d",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_float",
    "check_int",
    "check_keys",
    "check_matrix",
    "check_real_array",
    "check_seed",
    "fail",
    "int_range",
]


def fail(what: str, constraint: str, value) -> FastinvError:
    """The one message format: ``{what} must be {constraint}, got {value!r}``."""
    return FastinvError(f"{what} must be {constraint}, got {value!r}")


def int_range(lo: int | None, hi: int | None) -> str:
    """Words for an integer range: 'a positive integer', 'an integer >= 0', 'an integer in
    [1, 8]'."""
    if lo is not None and hi is not None:
        return f"an integer in [{lo}, {hi}]"
    if lo == 1:
        return "a positive integer"
    if lo is not None:
        return f"an integer >= {lo}"
    if hi is not None:
        return f"an integer <= {hi}"
    return "an integer"


def check_int(
    value,
    what: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    integral_float: bool = False,
    from_str: bool = False,
) -> int:
    """``value`` as a Python int in [lo, hi] (either bound may be None).

    Booleans are refused. ``integral_float=True`` accepts floats with an integer value (``4.0``,
    as JSON and YAML configs give them); ``from_str=True`` parses strings (``"64"``).
    """
    constraint = int_range(lo, hi)
    v = value
    if from_str and isinstance(v, str):
        try:
            v = int(v.strip())
        except ValueError:
            raise fail(what, constraint, value) from None
    if integral_float and isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise fail(what, constraint, value)
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise fail(what, constraint, value)
    return v


def check_float(
    value,
    what: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a Python float in the interval given by ``lo``/``hi`` (open or closed).

    Booleans and strings are refused; NaN always, ±Inf unless ``finite=False``.
    """
    constraint = _interval_words(lo, hi, lo_open, hi_open, finite)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise fail(what, constraint, value)
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise fail(what, constraint, value)
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        raise fail(what, constraint, value)
    return v


def _interval_words(lo, hi, lo_open, hi_open, finite) -> str:
    kind = "a finite number" if finite else "a number"
    if lo is None and hi is None:
        return kind
    if hi is None:
        return f"{kind} {'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f"{kind} {'<' if hi_open else '<='} {hi}"
    left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
    return f"{kind} in {left}{lo}, {hi}{right}"


def check_choice(value, what: str, choices: Iterable[str], *, normalize: bool = True) -> str:
    """``value`` as one of ``choices`` (strings; compared lower-cased and stripped unless
    ``normalize=False``)."""
    options = list(choices)
    if not isinstance(value, str):
        raise fail(what, "one of " + ", ".join(map(repr, options)), value)
    v = value.strip().lower() if normalize else value
    if v not in options:
        raise fail(what, "one of " + ", ".join(map(repr, options)), value)
    return v


def check_bool(value, what: str) -> bool:
    """``value`` as a bool (Python or NumPy bool only: 0/1 and strings are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise fail(what, "True or False", value)
    return bool(value)


def check_seed(value, what: str = "seed") -> int:
    """A seed: an integer in [0, 2**64)."""
    return check_int(value, what, lo=0, hi=2**64 - 1)


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


def check_matrix(arr, what: str) -> np.ndarray:
    """``arr`` as a non-empty, finite, real 2-D float64 ndarray (no copy when it is one)."""
    a = check_2d(arr, what)
    if a.size == 0:
        raise FastinvError(f"{what} is empty (shape {a.shape}); give a non-empty matrix")
    check_finite(a, what)
    return np.asarray(a, dtype=np.float64)


def check_real_array(arr, what: str, *, ndim: int | None = None) -> np.ndarray:
    """``arr`` as a real float64 ndarray (with ``ndim`` dimensions when given), or
    FastinvError: for None, strings, complex or other non-numeric input, and a wrong ``ndim``.
    Booleans and integers are converted; no copy when ``arr`` is float64 already."""
    try:
        a = np.asarray(arr)
        ok = arr is not None and (a.dtype.kind in "biuf" or a.dtype == object)
        a = a.astype(np.float64, copy=False) if ok else None
    except (TypeError, ValueError):
        a = None
    if a is None:
        got = f"an array of dtype {arr.dtype}" if isinstance(arr, np.ndarray) else repr(arr)
        raise fail(what, "a real numeric array", got if len(got) < 80 else got[:77] + "...")
    if ndim is not None and a.ndim != ndim:
        raise FastinvError(f"{what} must be a {ndim}-D array, got shape {a.shape}")
    return a


def check_model_output(out_shape, in_shape, n_out: int) -> None:
    """A model's outputs on a batch of shape ``in_shape`` (rows, m) must have shape
    (rows, ``n_out``): one signal per measurement. One message wherever models are run."""
    rows, m = tuple(in_shape)
    want = (rows, n_out)
    if tuple(out_shape) != want:
        sizes = "" if m == n_out else f" ({m} entries) to a signal ({n_out} entries)"
        raise FastinvError(
            f"model output has shape {tuple(out_shape)} for input {(rows, m)}; it must map "
            f"each measurement{sizes or ' to a signal'}: {want}"
        )


def check_keys(params, allowed, what: str) -> None:
    """Refuse keys of ``params`` that are not in ``allowed``, naming what is allowed:
    ``unknown parameter(s) a, b for {what}; it takes: ...``."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise FastinvError(
            f"unknown parameter(s) {', '.join(map(str, unknown))} for {what}; "
            f"it takes: {', '.join(sorted(allowed))}"
        )
