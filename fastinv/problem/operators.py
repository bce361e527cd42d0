"""Forward operators: the :class:`Operator` type, the catalogue, and loading a user's matrix.

Every operator is an :class:`Operator`: a dense, square matrix ``A`` of shape (n, n) in
float64, with the test problem's exact solution ``x`` and right-hand side ``b`` where the
problem defines them, and a cached SVD. :func:`make_operator` builds one from the catalogue
(:mod:`fastinv.problem.catalogue`: P. C. Hansen's Regularization Tools problems ``shaw``,
``deriv2``, ``heat``, ``phillips``, ``baart``, ``foxgood``, ``gravity``, ``wing``, and
``blur1d``, ``random``, ``identity``) or from a file (:func:`load_operator`, read by
:mod:`fastinv.problem.files`).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from fastinv._validation import check_finite, check_int
from fastinv.errors import FastinvError
from fastinv.io import to_jsonable
from fastinv.problem.catalogue import CATALOGUE, build, random_singular_values
from fastinv.problem.files import LOADABLE_SUFFIXES, read_matrix

__all__ = [
    "LOADABLE_SUFFIXES",
    "Operator",
    "list_operators",
    "load_operator",
    "make_operator",
    "random_singular_values",
]


# --------------------------------------------------------------------------------------
# Operator
# --------------------------------------------------------------------------------------


class Operator:
    """A square forward operator ``A`` with its test problem and a cached SVD.

    Parameters
    ----------
    A : array_like of shape (n, n)
        The matrix. It is validated (real, finite, square, non-empty) and stored as a
        C-contiguous float64 array. Do not modify ``op.A`` in place: the SVD is cached.
    name : str
        Catalogue name, or the file name for a loaded matrix.
    params : dict, optional
        The parameters that built ``A`` (all of them, defaults included).
    x : array_like of shape (n,), optional
        Exact solution of the test problem, if it has one.
    b : array_like of shape (n,), optional
        Exact right-hand side of the test problem where defined (``A @ x`` for most
        problems; the discretised analytic right-hand side for deriv2, phillips, baart,
        foxgood and wing, where ``A @ x`` only approximates it).
    description : str, optional
        One line describing the operator.

    Attributes
    ----------
    A : ndarray of shape (n, n), float64
    x, b : ndarray of shape (n,) or None
    n : int
    name : str
    params : dict
    """

    def __init__(
        self,
        A,
        *,
        name: str,
        params: dict | None = None,
        x=None,
        b=None,
        description: str = "",
    ) -> None:
        self.A: np.ndarray = _as_square_matrix(A, "A")
        self.n: int = int(self.A.shape[0])
        self.name: str = str(name)
        self.params: dict = dict(params or {})
        self.description: str = description
        self.x: np.ndarray | None = _as_vector(x, self.n, "x")
        self.b: np.ndarray | None = _as_vector(b, self.n, "b")

    @classmethod
    def from_array(cls, A, *, name: str = "matrix", x=None, b=None) -> Operator:
        """Wrap a user's array (copied, validated) as an Operator.

        Parameters
        ----------
        A : array_like of shape (n, n)
            Real, finite, square matrix (a singular one is allowed).
        name : str
            Name to report.
        x, b : array_like of shape (n,), optional
            Exact solution and right-hand side, if known.
        """
        A = np.array(A, copy=True) if isinstance(A, np.ndarray) else A
        return cls(A, name=name, params={}, x=x, b=b, description="user-supplied matrix")

    @functools.cached_property
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(U, s, Vt)`` with ``A = U @ diag(s) @ Vt``, s descending; computed once.

        LAPACK ``gesdd`` (divide and conquer), falling back to ``gesvd`` when it does not
        converge. Shapes: U (n, n), s (n,), Vt (n, n).
        """
        import scipy.linalg

        try:
            U, s, Vt = scipy.linalg.svd(self.A, lapack_driver="gesdd", check_finite=False)
        except np.linalg.LinAlgError:
            U, s, Vt = scipy.linalg.svd(self.A, lapack_driver="gesvd", check_finite=False)
        return U, s, Vt

    @property
    def singular(self) -> bool:
        """True when ``s[-1] <= n * eps * s[0]`` (numerically singular)."""
        s = self.svd[1]
        return bool(s[-1] <= self.n * np.finfo(np.float64).eps * s[0])

    @property
    def cond(self) -> float:
        """2-norm condition number ``s[0] / s[-1]``; ``inf`` when :attr:`singular`."""
        s = self.svd[1]
        if self.singular:
            return math.inf
        return float(s[0] / s[-1])

    def to_dict(self) -> dict:
        """JSON-friendly summary: ``{"name", "n", "params", "cond"}`` (cond may be inf)."""
        return {
            "name": self.name,
            "n": self.n,
            "params": to_jsonable(self.params),
            "cond": self.cond,
        }

    def __repr__(self) -> str:
        return f"Operator(name={self.name!r}, n={self.n}, params={self.params!r})"


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------


def _as_square_matrix(A, what: str) -> np.ndarray:
    """Validate ``A`` (real, numeric, non-empty, 2-D, square, finite); return float64 C."""
    if hasattr(A, "toarray") and callable(A.toarray):  # scipy.sparse
        A = A.toarray()
    a = np.asarray(A)
    if np.iscomplexobj(a):
        raise FastinvError(
            f"{what} must be real, got dtype {a.dtype}; pass its real part if the "
            "imaginary part is zero"
        )
    if a.dtype != np.bool_ and not np.issubdtype(a.dtype, np.number):
        raise FastinvError(
            f"{what} must hold real numbers, got dtype {a.dtype}; convert it to a numeric array"
        )
    if a.size == 0:
        raise FastinvError(f"{what} is empty (shape {a.shape}); supply a non-empty (n, n) matrix")
    if a.ndim != 2:
        raise FastinvError(f"{what} must be a 2-D array (n, n), got shape {a.shape}")
    if a.shape[0] != a.shape[1]:
        raise FastinvError(
            f"{what} must be square (n, n) to have an inverse; got ({a.shape[0]}, {a.shape[1]})"
        )
    a = np.ascontiguousarray(a, dtype=np.float64)
    check_finite(a, what)
    return a


def _as_vector(v, n: int, what: str) -> np.ndarray | None:
    if v is None:
        return None
    v = np.ascontiguousarray(v, dtype=np.float64).reshape(-1)
    if v.shape != (n,):
        raise FastinvError(f"{what} must have shape ({n},), got {v.shape}")
    return v


# --------------------------------------------------------------------------------------
# the catalogue and matrix files
# --------------------------------------------------------------------------------------


def list_operators() -> list[dict]:
    """Describe the catalogue.

    Returns
    -------
    list of dict
        One per operator, with keys ``name``, ``description``, ``params`` (name ->
        default), ``param_doc`` (name -> help), ``constraint`` (a sentence about n, or
        None), ``reference``, ``symmetric`` and ``b`` (how the right-hand side is defined).
        Matrices can also be loaded from files ending in :data:`LOADABLE_SUFFIXES`.
    """
    return [
        {
            "name": s.name,
            "description": s.description,
            "params": dict(s.defaults),
            "param_doc": dict(s.param_doc),
            "constraint": s.constraint,
            "reference": s.reference,
            "symmetric": s.symmetric,
            "b": s.b_kind,
        }
        for s in CATALOGUE.values()
    ]


def make_operator(name_or_path, n: int | None = None, **params) -> Operator:
    """Build a catalogue operator, or load a matrix from a file.

    Parameters
    ----------
    name_or_path : str or path-like
        A catalogue name (see :func:`list_operators`), or a path to a file ending in
        ``.npy``, ``.npz``, ``.mat``, ``.csv`` or ``.txt`` (see :func:`load_operator`).
    n : int, optional
        Size of A (n, n); required for catalogue names. With a path it is optional and,
        if given, must match the file's matrix.
    **params
        Operator parameters (see :func:`list_operators`); for a path only ``key``.

    Returns
    -------
    Operator
    """
    if _looks_like_path(name_or_path):
        return _operator_from_file(name_or_path, n, params)
    return _operator_from_catalogue(name_or_path, n, params)


def _looks_like_path(name) -> bool:
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str):
        return False
    if name.strip().lower() in CATALOGUE and os.sep not in name:
        return False
    return (
        os.path.exists(name)
        or name.lower().endswith(LOADABLE_SUFFIXES)
        or os.sep in name
        or (os.altsep is not None and os.altsep in name)
    )


def _operator_from_file(path, n, params: dict) -> Operator:
    unknown = sorted(set(params) - {"key"})
    if unknown:
        raise FastinvError(
            f"unknown parameter(s) {', '.join(unknown)} for a matrix file; only key= is allowed"
        )
    op = load_operator(path, key=params.get("key"))
    if n is not None:
        n = check_int(n, "n", lo=1)
        if n != op.n:
            raise FastinvError(
                f"n={n} does not match the matrix in {path}, which is "
                f"({op.n}, {op.n}); drop n or pass n={op.n}"
            )
    return op


def _operator_from_catalogue(name, n, params: dict) -> Operator:
    if not isinstance(name, str):
        raise FastinvError(f"operator must be a name or a file path, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in CATALOGUE:
        raise FastinvError(
            f"unknown operator {name!r}; choose one of {', '.join(CATALOGUE)} or give a "
            f"path to a {'/'.join(LOADABLE_SUFFIXES)} file"
        )
    if n is None:
        raise FastinvError(f"{key} needs a size: pass n (e.g. n=64)")
    n = check_int(n, "n", lo=1)
    A, b, x, p = build(key, n, params)
    return Operator(A, name=key, params=p, x=x, b=b, description=CATALOGUE[key].description)


def load_operator(path, *, key: str | None = None) -> Operator:
    """Load a square matrix A from a file.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (one array), ``.npz`` (one array, or the one named ``key``; a
        ``scipy.sparse.save_npz`` file is densified), ``.mat`` (``scipy.io.loadmat``;
        same key rule, MATLAB's ``__header__`` entries ignored; sparse densified), or
        ``.csv`` / ``.txt`` (``np.loadtxt``, comma- or whitespace-delimited, ``#``
        comments).
    key : str, optional
        Which array to take from a ``.npz`` or ``.mat`` file holding several.

    Returns
    -------
    Operator
        ``name`` is the file name, ``params`` ``{"path": ..., "key": ...}``, ``x`` and
        ``b`` are None. A singular A is allowed (``op.singular`` is then True).
    """
    A, chosen = read_matrix(path, key=key)
    spath = str(path)
    what = f"A in {spath}" + (f" (key {chosen!r})" if chosen is not None else "")
    A = _as_square_matrix(A, what)
    p = Path(path)
    params = {"path": str(p.resolve())}
    if chosen is not None:
        params["key"] = chosen
    return Operator(A, name=p.name, params=params, description=f"matrix loaded from {spath}")
