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
import inspect
import math
import os
from pathlib import Path

import numpy as np

from fastinv._device import float_dtype, is_torch, to_numpy
from fastinv._imports import import_object, is_object_ref
from fastinv._validation import check_finite, check_int
from fastinv.errors import FastinvError
from fastinv.io import to_jsonable
from fastinv.problem.adapters import as_linear_map
from fastinv.problem.catalogue import CATALOGUE, build, random_singular_values
from fastinv.problem.files import LOADABLE_SUFFIXES, read_matrix
from fastinv.problem.structured import (
    DenseBasis,
    DenseMap,
    LinearMap,
    SparseMap,
    SpectralBasis,
    check_dense_size,
)

__all__ = [
    "LOADABLE_SUFFIXES",
    "Operator",
    "as_operator",
    "is_factory_spec",
    "list_operators",
    "load_operator",
    "make_operator",
    "random_singular_values",
]


# --------------------------------------------------------------------------------------
# Operator
# --------------------------------------------------------------------------------------


#: to_dict computes cond(A) by a full SVD of a dense A up to this size
_COND_SVD_MAX = 2048


class Operator:
    """A forward operator ``A`` (m, n) with its test problem and a cached SVD.

    A dense operator holds the matrix (``.A``); a structured or matrix-free one holds a
    :class:`~fastinv.problem.structured.LinearMap` and makes ``.A`` only when asked (once,
    cached, refused above :data:`~fastinv.problem.structured.DENSE_MAX_BYTES` or the memory
    available), so the dense pipeline runs on it at small n while :meth:`apply`,
    :meth:`adjoint` and :meth:`svd_topk` never need the matrix.

    Parameters
    ----------
    A : array_like of shape (m, n), or LinearMap
        The matrix (validated: real, finite, non-empty; stored as a C-contiguous
        float64 array; do not modify ``op.A`` in place: the SVD is cached), or a linear map
        of shape (m, n) (not validated further).
    name : str
        Catalogue name, or the file name for a loaded matrix.
    params : dict, optional
        The parameters that built ``A`` (all of them, defaults included).
    x : array_like of shape (n,), optional
        Exact solution of the test problem, if it has one.
    b : array_like of shape (m,), optional
        Exact right-hand side of the test problem where defined (``A @ x`` for most
        problems; the discretised analytic right-hand side for deriv2, phillips, baart,
        foxgood and wing, where ``A @ x`` only approximates it).
    description : str, optional
        One line describing the operator.
    image_shape : tuple (H, W), optional
        Image shape of the signals (row-major flattening); default that of the linear map.

    Attributes
    ----------
    A : ndarray of shape (m, n), float64
    x, b : ndarray of shape (n,), (m,) or None
    n, m : int
        Columns (signal size) and rows (measurement size) of A.
    shape : tuple (m, n)
    image_shape : tuple (H, W) or None
        None for 1-D signals.
    structure : str
        ``"dense"``, ``"sparse"``, ``"fft2"``, ``"dct2"``, ``"kronecker"``, ``"diagonal"``
        or ``"matrix-free"``.
    linear_map : LinearMap
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
        image_shape=None,
    ) -> None:
        if isinstance(A, LinearMap):
            self._A = None
            self.linear_map: LinearMap = A
        else:
            self._A = _as_matrix(A, "A")
            self.linear_map = DenseMap(self._A)
        self.shape: tuple[int, int] = self.linear_map.shape
        self.m, self.n = self.shape
        self.image_shape = _image_shape(image_shape or self.linear_map.image_shape, self.n)
        self.structure: str = self.linear_map.structure
        self.name: str = str(name)
        self.params: dict = dict(params or {})
        self.description: str = description
        self.x: np.ndarray | None = _as_vector(x, self.n, "x")
        self.b: np.ndarray | None = _as_vector(b, self.m, "b")

    @classmethod
    def from_array(cls, A, *, name: str = "matrix", x=None, b=None) -> Operator:
        """Wrap a user's array (copied, validated) as an Operator.

        Parameters
        ----------
        A : array_like of shape (m, n)
            Real, finite matrix (a singular or rectangular one is allowed).
        name : str
            Name to report.
        x, b : array_like of shape (n,), optional
            Exact solution and right-hand side, if known.
        """
        A = np.array(A, copy=True) if isinstance(A, np.ndarray) else A
        return cls(A, name=name, params={}, x=x, b=b, description="user-supplied matrix")

    @classmethod
    def from_linear_map(
        cls, obj, *, name: str = "linear map", image_shape=None, x=None, b=None
    ) -> Operator:
        """Wrap a linear map the user already has (see :func:`as_operator`)."""
        return as_operator(obj, name=name, image_shape=image_shape, x=x, b=b)

    # the matrix ---------------------------------------------------------------------
    @property
    def A(self) -> np.ndarray:
        """The dense matrix (made from the linear map on first use and cached)."""
        if self._A is None:
            self._A = self.to_dense()
        return self._A

    def to_dense(self, *, max_bytes: float | None = None) -> np.ndarray:
        """A as a dense (m, n) float64 array; refused with a FastinvError when it would need
        more than ``max_bytes`` (default :data:`~fastinv.problem.structured.DENSE_MAX_BYTES`)
        or 80 % of the memory available. The returned array is ``.A`` itself for a dense
        operator: do not modify it."""
        if self._A is not None:
            return self._A
        check_dense_size(self.shape, f"{self.name}: to_dense()", max_bytes=max_bytes)
        return np.ascontiguousarray(self.linear_map.to_dense(), dtype=np.float64)

    # the linear map -------------------------------------------------------------------
    def apply(self, X):
        """``X Aᵀ``: A applied to each row of X (n,) or (b, n); NumPy or torch, dtype kept."""
        return self._rows(X, adjoint=False)

    def adjoint(self, Y):
        """``Y A``: Aᵀ applied to each row of Y (m,) or (b, m); NumPy or torch, dtype kept."""
        return self._rows(Y, adjoint=True)

    def check_adjoint(self, *, rows: int = 2, seed: int = 0, rtol: float | None = None) -> float:
        """Refuse an adjoint that is not the transpose of ``apply``: ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ on
        random rows (the dot test of PyLops), to ``rtol`` (1e-8; 1e-4 for an operator that
        computes in float32) relative to ‖A x‖ ‖y‖. Returns the relative difference."""
        if rtol is None:
            rtol = 1e-4 if str(self.params.get("dtype", "")).endswith("32") else 1e-8
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((rows, self.n))
        Y = rng.standard_normal((rows, self.m))
        AX = np.asarray(self.apply(X), dtype=np.float64)
        ATY = np.asarray(self.adjoint(Y), dtype=np.float64)
        lhs, rhs = float(np.sum(AX * Y)), float(np.sum(X * ATY))
        scale = float(np.linalg.norm(AX) * np.linalg.norm(Y)) or 1.0
        rel = abs(lhs - rhs) / scale
        if not rel <= rtol:
            raise FastinvError(
                f"{self.name}: the adjoint fails the adjoint test: ⟨A x, y⟩ = {lhs:.6g} but "
                f"⟨x, Aᵀ y⟩ = {rhs:.6g} (relative difference {rel:.3g} > {rtol:g}); make the "
                "adjoint (rmatvec, rmatmat, A_adjoint) the transpose of apply"
            )
        return rel

    def _rows(self, X, *, adjoint: bool):
        n_in = self.m if adjoint else self.n
        what = "adjoint input" if adjoint else "apply input"
        shp = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
        if len(shp) not in (1, 2) or shp[-1] != n_in:
            raise FastinvError(
                f"{what} must have shape ({n_in},) or (batch, {n_in}) for A of shape "
                f"{self.shape}, got {shp}"
            )
        if is_torch(X):
            return self._torch_rows(X, adjoint)
        arr = np.asarray(X)
        dt = float_dtype(arr.dtype)
        rows = arr.reshape(1, -1) if arr.ndim == 1 else arr
        if self.structure == "dense":  # one GEMM in the input's precision
            A = self._A if dt == np.float64 else self._A.astype(dt)
            out = rows @ A if adjoint else rows @ A.T
        else:
            rows = np.asarray(rows, dtype=np.float64)
            f = self.linear_map.rmatmat_rows if adjoint else self.linear_map.matmat_rows
            out = f(rows)
        out = np.asarray(out, dtype=dt)
        return out[0] if arr.ndim == 1 else out

    @property
    def torch_native(self) -> bool:
        """True when :meth:`apply` and :meth:`adjoint` compute torch tensors with torch on
        their device (dense, FFT, DCT, zero-boundary, Kronecker and diagonal maps; a deepinv
        physics), so the products are differentiable; False where they go through NumPy."""
        return self.linear_map.has_torch

    def _torch_rows(self, X, adjoint: bool):
        """torch: the linear map's own torch path on X's device (differentiable) where it has
        one, else NumPy on the CPU (not differentiable); X's dtype kept (float64 for others)."""
        import torch

        dt = X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float64
        rows = X.to(dt).reshape(1, -1) if X.ndim == 1 else X.to(dt)
        out = self.linear_map.torch_rows(rows, adjoint)
        if out is None:
            out = self._rows(to_numpy(rows).astype(np.float64), adjoint=adjoint)
            out = torch.as_tensor(out, dtype=dt, device=X.device)
        return out[0] if X.ndim == 1 else out

    # spectra --------------------------------------------------------------------------
    @functools.cached_property
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(U, s, Vt)`` with ``A = U @ diag(s) @ Vt``, s descending; computed once.

        Exact from the structure where the operator has one (FFT, DCT, Kronecker, diagonal;
        the singular vectors are then made dense, so the same memory limit as
        :meth:`to_dense` applies), else LAPACK ``gesdd`` (divide and conquer) on ``.A``,
        falling back to ``gesvd`` when it does not converge. The thin SVD: shapes U (m, r),
        s (r,), Vt (r, n) with r = min(m, n) (all of U and V for a square A).
        """
        if self.linear_map.exact_svd:
            check_dense_size(self.shape, f"{self.name}: the full SVD", copies=2)
            return self.linear_map.exact_topk(None)
        import scipy.linalg

        try:
            U, s, Vt = scipy.linalg.svd(
                self.A, full_matrices=False, lapack_driver="gesdd", check_finite=False
            )
        except np.linalg.LinAlgError:
            U, s, Vt = scipy.linalg.svd(
                self.A, full_matrices=False, lapack_driver="gesvd", check_finite=False
            )
        return U, s, Vt

    @functools.cached_property
    def singular_values(self) -> np.ndarray:
        """All min(m, n) singular values, descending (exact and O(n log n) where structured)."""
        if self.linear_map.exact_svd and "svd" not in self.__dict__:
            return np.sort(self.linear_map.sigma_items())[::-1]
        return self.svd[1]

    @functools.cached_property
    def spectral_basis(self) -> SpectralBasis | None:
        """Coefficients in A's singular bases without forming U or V (computed once).

        A :class:`~fastinv.problem.structured.SpectralBasis` with exactly the U, s, Vt of
        :attr:`svd` (FFT, DCT, Kronecker factors or the diagonal, O(n log n) per row) for a
        structured operator with an exact SVD; a
        :class:`~fastinv.problem.structured.DenseBasis` built from :attr:`svd` for a dense
        operator; None for a matrix-free or sparse one (use :meth:`svd_topk`).
        """
        if self.linear_map.exact_svd:
            return self.linear_map.spectral_basis()
        if self.structure == "dense":
            return DenseBasis(*self.svd)
        return None

    def svd_topk(self, k: int, **options):
        """The k largest singular triplets ``(U (m, k), s (k,), Vt (k, n), info)``.

        Exact from the structure where there is one (``info["method"] == "exact"``); sliced
        from :attr:`svd` when that is already computed; otherwise
        :func:`fastinv.linalg.randomized.svd_topk` on ``.A`` (dense) or on :meth:`apply` /
        :meth:`adjoint` (matrix-free), with ``options`` passed on.
        """
        k = check_int(k, "k", lo=1, hi=min(self.shape))
        if self.linear_map.exact_svd or "svd" in self.__dict__:
            if "svd" in self.__dict__:
                U, s, Vt = self.svd
                U, s, Vt = U[:, :k].copy(), s[:k].copy(), Vt[:k].copy()
            else:
                U, s, Vt = self.linear_map.exact_topk(k)
            return U, s, Vt, {"method": "exact", "structure": self.structure, "k": k}
        from fastinv.linalg.randomized import svd_topk

        if self.structure == "dense":
            return svd_topk(self.A, k, **options)
        lm = self.linear_map
        return svd_topk(
            None,
            k,
            matvec=lambda X: lm.matmat_rows(np.ascontiguousarray(X.T)).T,
            rmatvec=lambda Y: lm.rmatmat_rows(np.ascontiguousarray(Y.T)).T,
            shape=self.shape,
            **options,
        )

    @property
    def singular(self) -> bool:
        """True when ``s[-1] <= max(m, n) * eps * s[0]`` (numerically singular)."""
        s = self.singular_values
        return bool(s[-1] <= max(self.shape) * np.finfo(np.float64).eps * s[0])

    @property
    def cond(self) -> float:
        """2-norm condition number ``s[0] / s[-1]``; ``inf`` when :attr:`singular`."""
        s = self.singular_values
        if self.singular:
            return math.inf
        return float(s[0] / s[-1])

    def to_dict(self) -> dict:
        """JSON-friendly summary: ``{"name", "n", "params", "cond"}`` (cond may be inf; None
        when it would take a full SVD that was not computed: a dense A above n = 2048 or a
        matrix-free one), plus ``structure``, ``shape`` and ``image_shape`` for an operator
        that is not dense."""
        d = {
            "name": self.name,
            "n": self.n,
            "params": to_jsonable(self.params),
            "cond": self.cond if self._cond_is_cheap() else None,
        }
        if self.structure != "dense" or self.image_shape is not None or self.m != self.n:
            d.update(structure=self.structure, shape=list(self.shape))
            d["image_shape"] = None if self.image_shape is None else list(self.image_shape)
        return d

    def _cond_is_cheap(self) -> bool:
        if "svd" in self.__dict__ or "singular_values" in self.__dict__:
            return True
        if self.linear_map.exact_svd:
            return True
        return self.structure == "dense" and max(self.shape) <= _COND_SVD_MAX

    def __repr__(self) -> str:
        return f"Operator(name={self.name!r}, n={self.n}, params={self.params!r})"


def as_operator(obj, *, name: str | None = None, image_shape=None, x=None, b=None, params=None):
    """An :class:`Operator` from what a user has: an Operator (returned as is), a dense array
    (NumPy or torch), a ``scipy.sparse`` matrix, a ``scipy.sparse.linalg.LinearOperator``, a
    PyLops ``LinearOperator``, a deepinv ``LinearPhysics`` (needs ``image_shape`` (H, W) or
    (C, H, W) unless the physics states its image size) or a
    :class:`~fastinv.problem.structured.LinearMap` (see :mod:`fastinv.problem.adapters`)."""
    if isinstance(obj, Operator):
        return obj
    info: dict = {}
    if isinstance(obj, (np.ndarray, list, tuple)) or is_torch(obj):
        lm = np.array(to_numpy(obj), copy=True)
        kind = "dense array"
    else:
        lm, info = as_linear_map(obj, image_shape=image_shape)
        kind = info.pop("kind")
    p = {**info, **(params or {})}
    op_name = name or type(obj).__name__
    return Operator(lm, name=op_name, params=p, x=x, b=b, description=f"user-supplied {kind}",
                    image_shape=image_shape)  # fmt: skip


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------


def _is_sparse(A) -> bool:
    import scipy.sparse

    return scipy.sparse.issparse(A)


def _as_sparse_map(S, what: str) -> SparseMap:
    """A real, finite, non-empty sparse matrix kept sparse (a matrix-free operator)."""
    if S.shape[0] == 0 or S.shape[1] == 0:
        raise FastinvError(f"{what} is empty (shape {S.shape}); supply a non-empty (m, n) matrix")
    if np.iscomplexobj(S.data):
        raise FastinvError(f"{what} must be real, got dtype {S.dtype}")
    check_finite(np.asarray(S.data, dtype=np.float64), what)
    return SparseMap(S)


def _as_matrix(A, what: str) -> np.ndarray:
    """Validate ``A`` (real, numeric, non-empty, 2-D, finite); return float64 C. A may be
    rectangular (m ≠ n): it is then audited against its pseudo-inverse A⁺."""
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
        raise FastinvError(f"{what} is empty (shape {a.shape}); supply a non-empty (m, n) matrix")
    if a.ndim != 2:
        raise FastinvError(f"{what} must be a 2-D array (m, n), got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    check_finite(a, what)
    return a


def _image_shape(shape, n: int) -> tuple[int, ...] | None:
    if shape is None:
        return None
    try:
        shp = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise FastinvError(f"image_shape must be a tuple of integers, got {shape!r}") from None
    if math.prod(shp) != n or any(d < 1 for d in shp):
        raise FastinvError(
            f"image_shape {shp} has {math.prod(shp)} pixels but A has n = {n} columns; give "
            "an image shape whose product is n"
        )
    return shp


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
        A catalogue name (see :func:`list_operators`), a path to a file ending in
        ``.npy``, ``.npz``, ``.mat``, ``.csv`` or ``.txt`` (see :func:`load_operator`), or a
        factory ``package.module:function`` or ``path/to/file.py:function`` (called with
        ``n=`` when it takes n, and ``params``; what it returns is wrapped by
        :func:`as_operator`).
    n : int, optional
        Size of A (n, n); required for catalogue names. With a path it is optional and,
        if given, must match the file's matrix.
    **params
        Operator parameters (see :func:`list_operators`); for a path only ``key``.

    Returns
    -------
    Operator
    """
    if is_factory_spec(name_or_path):
        return _operator_from_factory(name_or_path.strip(), n, params)
    if _looks_like_path(name_or_path):
        return _operator_from_file(name_or_path, n, params)
    return _operator_from_catalogue(name_or_path, n, params)


def is_factory_spec(name) -> bool:
    """True for ``"package.module:function"`` or ``"path/to/file.py:function"``, an operator
    factory to import and call."""
    return is_object_ref(name)


def _load_factory(spec: str):
    f = import_object(spec, what="operator")
    if not callable(f):
        raise FastinvError(
            f"operator {spec}: {spec.rpartition(':')[2]!r} is a {type(f).__name__}, not a "
            "function; name a function that returns the operator"
        )
    return f


def _takes_n(f) -> bool:
    try:
        ps = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "n" or p.kind is inspect.Parameter.VAR_KEYWORD for p in ps)


def _operator_from_factory(spec: str, n, params: dict) -> Operator:
    """``module:function``: import it, call it (with ``n=`` when it takes n, and the params),
    and wrap what it returns (:func:`as_operator`)."""
    f = _load_factory(spec)
    if n is not None:
        n = check_int(n, "n", lo=1)
    kwargs = {**params, **({"n": n} if n is not None and _takes_n(f) else {})}
    try:
        obj = f(**kwargs)
    except FastinvError:
        raise
    except Exception as e:
        msg = " ".join(str(e).split())
        raise FastinvError(f"operator factory {spec} failed: {type(e).__name__}: {msg}") from e
    op = as_operator(obj, name=spec, params={"factory": spec, **params})
    if n is not None and n != op.n:
        raise FastinvError(
            f"n={n} does not match the operator from {spec}, which has n = {op.n}; drop n "
            f"or pass n={op.n}"
        )
    return op


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
            f"unknown operator {name!r}; choose one of {', '.join(CATALOGUE)}, give a "
            f"path to a {'/'.join(LOADABLE_SUFFIXES)} file, or a factory as module:function"
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
        ``scipy.sparse.save_npz`` file stays sparse), ``.mat`` (``scipy.io.loadmat``;
        same key rule, MATLAB's ``__header__`` entries ignored; sparse stays sparse), or
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
    A = _as_sparse_map(A, what) if _is_sparse(A) else _as_matrix(A, what)
    p = Path(path)
    params = {"path": str(p.resolve())}
    if chosen is not None:
        params["key"] = chosen
    return Operator(A, name=p.name, params=params, description=f"matrix loaded from {spath}")
