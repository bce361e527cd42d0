"""Streamed moments of pairs ``(y, x)`` and the affine least-squares fit they determine.

:class:`MomentAccumulator` keeps the co-moment matrices ``M_yy = Σ (y_i − ȳ)(y_i − ȳ)ᵀ`` and
``M_xy = Σ (x_i − x̄)(y_i − ȳ)ᵀ`` of chunks fed to it, in O(n²) memory, and solves for the
affine map ``x ≈ C y + b`` (:class:`LinearFit`). The arithmetic lives in one of two backends
chosen once by the constructor: :class:`NumpyMoments` (NumPy arrays, BLAS, LAPACK) or
:class:`TorchMoments` (float64 tensors on a torch device). :class:`R2Stream` scores a fit on
new data chunk by chunk.

Numerics
--------
* Accumulators are float64 whatever the input dtype (float32 chunks are cast per chunk).
* Centring is stable: the first chunk fixes a per-column *shift* ``s`` (its mean, or 0 for
  columns whose mean is within one standard deviation of 0 -- then using 0 costs at most a
  factor 2 in cancellation and saves a copy); the sums of ``y − s`` and the products
  ``Σ (y − s)(y − s)ᵀ`` are accumulated, and ``M = P − S Sᵀ / N`` at the end.  Data with a
  huge mean (1e8 + unit variance) keep all their digits, where raw moments keep none.
* Two accumulators (threads, processes, devices) merge by the pairwise formula of
  Chan, Golub & LeVeque: ``M = M_a + M_b + (N_a N_b / N) δ δᵀ``, ``δ = ȳ_b − ȳ_a``.
* ``YᵀY`` is one BLAS ``syrk`` (upper triangle only) and ``YᵀX`` one ``gemm`` per chunk,
  accumulated in place (``beta = 1``); the CPU backend keeps ``M_yy`` as an n×n
  Fortran-ordered array of which only the upper triangle is maintained.
* Solve: ``(M_yy + ridge·N·I) Cᵀ = M_yx`` by Cholesky (LAPACK ``potrf`` + two ``trtrs``,
  in place). The ridge is on the scale of the *covariance* ``M_yy / N``: ``ridge`` is added
  to its diagonal (``C = Cov(x, y) (Cov(y) + ridge·I)⁻¹``), and the intercept is not
  penalised. When Cholesky fails or the normal matrix is numerically singular -- estimated
  1-norm condition number (Hager–Higham estimator on the Cholesky factor) above
  ``1 / (n·eps)`` -- the solve falls back to an eigen-decomposition and the minimum-norm
  solution ``C = M_xy M_yy⁺``, keeping eigenvalues ``λ > n·eps·λ_max``. The numerical rank
  and the condition number are reported.
* Without intercept the same code uses the raw moments about 0, ``Σ y yᵀ = P + s Sᵀ + S sᵀ
  + N s sᵀ`` (reconstructed in float64 from the shifted sums).
* Fewer samples than unknowns (``N < n``, or ``N ≤ n`` with an intercept): the fit is the
  minimum-norm solution of rank ≤ N; ``LinearFit.min_norm`` is True and a ``UserWarning``
  says so. With an intercept "minimum norm" is over ``C`` only (the intercept is not
  penalised): it equals ``numpy.linalg.lstsq`` on the centred data, not on ``[Y, 1]``.

R²
--
``R² = 1 − Σ_i ‖x̂_i − x_i‖² / Σ_i ‖x_i − x̄‖²`` pooled over all outputs (x̂ the affine
prediction, x̄ the mean of the data it is evaluated on; also without intercept). In sample it
comes from the moments: ``Σ‖x̂ − x‖² = tr M_xx − 2⟨C, M_xy⟩ + ⟨C M_yy, C⟩``, and with the
normal equations ``⟨C, M_xy⟩ = ‖U⁻ᵀ M_yx‖²_F`` (U the Cholesky factor) and
``⟨C M_yy, C⟩ = ⟨C, M_xy⟩ − ridge·N·‖C‖²_F`` -- no extra O(n³) work. It is exact up to the
rounding of ``tr M_xx`` (≈ 1e-15 absolute on R²). On new data :class:`R2Stream` sums the
residuals themselves.

Rows of error messages
----------------------
Chunks carry ``row0``, the number of their first row (int) or the absolute numbers of their
rows (ndarray, for a holdout selection), so that a NaN is reported at the row the user knows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

from fastinv._device import float_dtype, is_torch, resolve_device, to_numpy
from fastinv._validation import check_choice, check_float, check_int
from fastinv.errors import FastinvError
from fastinv.kernels import moments as _k

__all__ = [
    "LinearFit",
    "MomentAccumulator",
    "NumpyMoments",
    "R2Stream",
    "TorchMoments",
    "abs_row",
    "check_real_2d",
    "chunk_rows",
    "raise_nonfinite",
    "rows_text",
]

_EPS = float(np.finfo(np.float64).eps)
#: one chunk of float64 Y and X together takes at most this many bytes by default
_CHUNK_BYTES = 1 << 26
#: the same for tensors that live on a GPU
_CHUNK_BYTES_GPU = 1 << 30


# ----------------------------------------------------------------------------------------
# chunks and their rows


def chunk_rows(chunk_size, n_in: int, n_out: int, *, gpu: bool = False) -> int:
    """Rows per chunk: ``chunk_size`` checked, or by default a chunk of Y and X together
    of at most 64 MiB (256..8192 rows; 1 GiB and up to 65536 rows for data on a GPU)."""
    if chunk_size is None:
        if gpu:  # data already on the device: few, large chunks (each one syncs with the host)
            return int(max(256, min(_CHUNK_BYTES_GPU // (8 * (n_in + n_out)), 65536)))
        c = _CHUNK_BYTES // (8 * (n_in + n_out))
        return int(max(256, min(c, 8192)))
    return check_int(chunk_size, "chunk_size", lo=1)


def abs_row(row0, i: int) -> int:
    """Absolute row number of row ``i`` of a chunk; ``row0`` is the chunk's first row (int)
    or the absolute indices of its rows (ndarray, for a holdout selection)."""
    return int(row0[i]) if isinstance(row0, np.ndarray) else int(row0) + i


def rows_text(row0, m: int) -> str:
    """``"first..last"``: the absolute rows of a chunk of ``m`` rows."""
    return f"{abs_row(row0, 0)}..{abs_row(row0, m - 1)}"


def raise_nonfinite(A: np.ndarray, what: str, row0) -> None:
    """Raise FastinvError naming the first NaN/Inf of the chunk ``A`` by its absolute row."""
    fin = np.isfinite(A)
    if fin.all():
        return
    i, j = (int(t) for t in np.argwhere(~fin)[0])
    raise FastinvError(
        f"{what} has a non-finite value ({A[i, j]}) at row {abs_row(row0, i)}, column {j}; "
        "remove or replace NaN/Inf entries"
    )


def check_real_2d(A, what: str):
    """``A`` itself when it is a 2-D real array or tensor (no copy; lists become arrays)."""
    if is_torch(A):
        if A.ndim != 2:
            raise FastinvError(f"{what} must be a 2-D array, got shape {tuple(A.shape)}")
        if A.is_complex() or str(A.dtype) == "torch.bool":
            raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")
        return A
    A = np.asarray(A)
    if A.ndim != 2:
        raise FastinvError(f"{what} must be a 2-D array, got shape {A.shape}")
    _check_real(A, what)
    return A


def _check_width(A, what: str, k: int) -> None:
    if A.ndim != 2 or A.shape[1] != k:
        raise FastinvError(f"{what} must have shape (m, {k}), got {tuple(A.shape)}")


def _check_real(A: np.ndarray, what: str) -> None:
    if A.dtype.kind not in "fiu":
        raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")


def _real_rows(A, what: str, k: int) -> np.ndarray:
    """``A`` (array or tensor) as a NumPy array of shape (m, k) with real entries."""
    A = to_numpy(A)
    _check_width(A, what, k)
    _check_real(A, what)
    return A


def _float_rows(A, what: str, k: int) -> np.ndarray:
    """:func:`_real_rows`, in float32 or float64 (other real dtypes become float64)."""
    A = _real_rows(A, what, k)
    return A if A.dtype in (np.float32, np.float64) else A.astype(np.float64)


# ----------------------------------------------------------------------------------------
# result object


@dataclass
class LinearFit:
    """An affine surrogate ``x ≈ C y + b`` and how well it fits.

    Attributes
    ----------
    C : ndarray of shape (n_out, n_in)
        float64, C-contiguous.
    b : ndarray of shape (n_out,)
        Intercept (zeros when ``intercept=False``).
    r2 : float
        R² of the fit: held-out when a holdout was used, else in-sample (nan when the
        outputs are constant).
    r2_heldout : float or None
        Held-out R² (None without holdout).
    rank : int
        Numerical rank of the normal matrix ``M_yy + ridge·N·I``.
    n_samples : int
        Number of samples the fit was computed from (training rows).
    min_norm : bool
        True when the normal matrix was singular (N < n, or collinear inputs) and the
        minimum-norm solution was returned.
    cond : float
        Condition number of ``M_yy + ridge·N·I``: a 1-norm estimate after Cholesky, the
        exact 2-norm ratio λ_max/λ_min after eigh (inf when singular).
    method : str
        ``"cholesky"`` or ``"eigh"`` (the minimum-norm fallback).
    ridge : float
        Ridge on the covariance scale (added to the diagonal of ``M_yy / N``).
    intercept : bool
        Whether ``b`` was fitted.
    r2_insample : float
        In-sample R² (equals ``r2`` without holdout).
    n_heldout : int
        Number of held-out rows (0 without holdout).
    """

    C: np.ndarray
    b: np.ndarray
    r2: float
    r2_heldout: float | None
    rank: int
    n_samples: int
    min_norm: bool
    cond: float
    method: str
    ridge: float
    intercept: bool
    r2_insample: float = float("nan")
    n_heldout: int = 0

    @property
    def n_in(self) -> int:
        return int(self.C.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.C.shape[0])

    def predict(self, Y) -> np.ndarray:
        """Return ``Y Cᵀ + b``.

        Parameters
        ----------
        Y : array_like of shape (m, n_in)

        Returns
        -------
        ndarray of shape (m, n_out)
            float32 for float32 input, float64 otherwise.
        """
        Y = _real_rows(Y, "Y", self.n_in)
        dt = float_dtype(Y.dtype)
        out = np.asarray(Y, dtype=dt) @ self.C.T.astype(dt, copy=False)
        out += self.b.astype(dt, copy=False)
        return out

    def score(self, Y, X, *, chunk_size: int | None = None) -> float:
        """R² of this fit on new data ``(Y, X)``, streamed chunk by chunk.

        Parameters
        ----------
        Y : array_like of shape (m, n_in)
        X : array_like of shape (m, n_out)
            Targets (e.g. the model's outputs on ``Y``).
        chunk_size : int, optional
            Rows per chunk.

        Returns
        -------
        float
            ``1 − Σ‖C y + b − x‖² / Σ‖x − x̄‖²`` (nan when ``X`` is constant).
        """
        Y = _real_rows(Y, "Y", self.n_in)
        X = _real_rows(X, "X", self.n_out)
        if X.shape[0] != Y.shape[0]:
            raise FastinvError(
                f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; pass one target row per input"
            )
        chunk = chunk_rows(chunk_size, self.n_in, self.n_out)
        sc = R2Stream(self.C, self.b, None, None)
        for a in range(0, Y.shape[0], chunk):
            sc.update(Y[a : a + chunk], X[a : a + chunk], a)
        return sc.result()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays: norms of C and b instead)."""
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "r2": _jf(self.r2),
            "r2_heldout": None if self.r2_heldout is None else _jf(self.r2_heldout),
            "r2_insample": _jf(self.r2_insample),
            "rank": int(self.rank),
            "n_samples": int(self.n_samples),
            "n_heldout": int(self.n_heldout),
            "min_norm": bool(self.min_norm),
            "cond": _jf(self.cond),
            "method": self.method,
            "ridge": float(self.ridge),
            "intercept": bool(self.intercept),
            "C_fro_norm": _jf(np.linalg.norm(self.C)),
            "b_norm": _jf(np.linalg.norm(self.b)),
        }


def _jf(v) -> float | None:
    """float for JSON: nan -> None, inf stays a float (json writes Infinity)."""
    v = float(v)
    return None if math.isnan(v) else v


# ----------------------------------------------------------------------------------------
# backends: the array operations of the accumulator


class NumpyMoments:
    """NumPy float64 matrices updated by BLAS (syrk, gemm, syr, ger) and solved by LAPACK.

    ``P_yy`` is Fortran-ordered and only its upper triangle is maintained. Chunks that must
    be cast or shifted go through one reused buffer per operand.

    A backend has these methods (:class:`TorchMoments` the same): ``zeros``; per chunk
    ``prepare`` (check), ``as_data`` (convert), ``choose_shift``, ``shifted`` (data minus
    shift, column sums in NumPy), ``syrk`` and ``gemm`` (the updates), ``host`` (a chunk as
    NumPy, for error messages); on the matrices ``iadd``, ``syr``, ``ger``, ``syr2``,
    ``copy``, ``diagonal``, ``to_numpy``, ``symmetric``; ``adopt`` (another accumulator's
    matrices), ``solve`` and ``clear`` (forget caches).
    """

    name = "cpu"
    device = None

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def zeros(self, rows: int, cols: int) -> np.ndarray:
        return np.zeros((rows, cols), order="F")

    def prepare(self, A, what: str, k: int) -> np.ndarray:
        """A chunk as a float32/float64 array of shape (m, k) (tensors are copied over)."""
        return _float_rows(A, what, k)

    def as_data(self, A: np.ndarray) -> np.ndarray:
        return A

    def host(self, A: np.ndarray) -> np.ndarray:
        return A

    def choose_shift(self, A: np.ndarray) -> np.ndarray:
        return _choose_shift(A)

    def shifted(self, A: np.ndarray, shift: np.ndarray, key: str, first: bool, squares: bool):
        """(matrix for BLAS holding A − shift in float64, column sums, sums of squares)."""
        m, k = A.shape
        s = np.zeros(k)
        q = np.zeros(k)
        contiguous = A.flags.c_contiguous or A.flags.f_contiguous
        if A.dtype == np.float64 and contiguous and not shift.any():
            _k._colsums(A, shift, s, q)
            return A, s, q
        buf = self._bufs.get(key)
        if buf is None or buf.shape[0] < m:
            buf = np.empty((m, k))
            self._bufs[key] = buf
        out = buf[:m]
        _k._shift_copy(A, shift, out, s, q)
        return out, s, q

    def syrk(self, P: np.ndarray, A: np.ndarray) -> None:
        """P += Aᵀ A (upper triangle)."""
        a, t = _blas_t(A)
        blas.dsyrk(1.0, a, beta=1.0, c=P, trans=t, lower=0, overwrite_c=1)

    def gemm(self, P: np.ndarray, A: np.ndarray, B: np.ndarray) -> None:
        """P += Aᵀ B."""
        a, ta = _blas_t(A)
        b, tb = _blas_t(B)
        blas.dgemm(1.0, a, b, beta=1.0, c=P, trans_a=ta, trans_b=1 - tb, overwrite_c=1)

    def iadd(self, P: np.ndarray, Q: np.ndarray) -> None:
        np.add(P, Q, out=P)

    def syr(self, P: np.ndarray, alpha: float, u: np.ndarray) -> None:
        blas.dsyr(alpha, u, a=P, lower=0, overwrite_a=1)

    def ger(self, P: np.ndarray, alpha: float, u: np.ndarray, v: np.ndarray) -> None:
        blas.dger(alpha, u, v, a=P, overwrite_a=1)

    def syr2(self, P: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        """P += u vᵀ + v uᵀ (upper triangle)."""
        blas.dsyr2(1.0, u, v, a=P, lower=0, overwrite_a=1)

    def copy(self, P: np.ndarray) -> np.ndarray:
        return P.copy(order="F")

    def diagonal(self, P: np.ndarray) -> np.ndarray:
        return np.diagonal(P)

    def to_numpy(self, P: np.ndarray) -> np.ndarray:
        return P

    def symmetric(self, P: np.ndarray) -> np.ndarray:
        """The full symmetric matrix of which ``P`` holds the upper triangle (new array)."""
        return np.triu(P) + np.triu(P, 1).T

    def adopt(self, other, pyy, pyx):
        """Another accumulator's ``(P_yy, P_yx)`` as matrices of this backend."""
        if isinstance(other, NumpyMoments):
            return pyy, pyx
        return np.asfortranarray(other.symmetric(pyy)), np.asfortranarray(other.to_numpy(pyx))

    def solve(self, A: np.ndarray, B: np.ndarray, lam: float):
        """:func:`_spd_solve_np` with ``C = Xᵀ`` C-contiguous."""
        CT, quad, cmc, rank, cond, method = _spd_solve_np(A, B, lam)
        C = CT.T
        if not C.flags.c_contiguous:
            C = np.ascontiguousarray(C)
        return C, quad, cmc, rank, cond, method

    def clear(self) -> None:
        """Forget the chunk buffers."""
        self._bufs.clear()


class TorchMoments:
    """float64 tensors on a torch device (``addmm_``, ``addr_``, cholesky_ex / eigh); the
    methods of :class:`NumpyMoments`. ``P_yy`` is kept full."""

    name = "torch"

    def __init__(self, device) -> None:
        import torch

        self._torch = torch
        self.device = device
        self._shifts: dict[str, Any] = {}

    def zeros(self, rows: int, cols: int):
        t = self._torch
        return t.zeros((rows, cols), dtype=t.float64, device=self.device)

    def prepare(self, A, what: str, k: int):
        """A chunk as it is when it is a real tensor of shape (m, k), else as for NumPy."""
        if not is_torch(A):
            return _float_rows(A, what, k)
        _check_width(A, what, k)
        if A.is_complex() or A.dtype == self._torch.bool:
            raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")
        return A

    def as_data(self, A):
        """A float64 tensor on the device."""
        t = self._torch
        if isinstance(A, t.Tensor):
            return A.detach().to(device=self.device, dtype=t.float64)
        return t.as_tensor(np.asarray(A, dtype=np.float64), device=self.device)

    def host(self, A) -> np.ndarray:
        return A.cpu().numpy()

    def choose_shift(self, A) -> np.ndarray:
        return _choose_shift_torch(A)

    def shifted(self, A, shift: np.ndarray, key: str, first: bool, squares: bool):
        """(A − shift, column sums, sums of squares or None); the sums as NumPy arrays."""
        As = self._sub_shift(A, shift, key, first)
        s = As.sum(0)
        q = (As * As).sum(0) if squares else None
        return As, s.cpu().numpy(), None if q is None else q.cpu().numpy()

    def _sub_shift(self, A, shift: np.ndarray, key: str, fresh: bool):
        if not shift.any():
            return A
        t = None if fresh else self._shifts.get(key)
        if t is None:
            t = self._tensor(shift)
            if not fresh:
                self._shifts[key] = t
        return A - t

    def _tensor(self, v: np.ndarray):
        return self._torch.as_tensor(v, device=self.device)

    def syrk(self, P, A) -> None:
        P.addmm_(A.T, A)

    def gemm(self, P, A, B) -> None:
        P.addmm_(A.T, B)

    def iadd(self, P, Q) -> None:
        P.add_(Q)

    def syr(self, P, alpha: float, u: np.ndarray) -> None:
        ut = self._tensor(u)
        P.addr_(ut, ut, alpha=alpha)

    def ger(self, P, alpha: float, u: np.ndarray, v: np.ndarray) -> None:
        P.addr_(self._tensor(u), self._tensor(v), alpha=alpha)

    def syr2(self, P, u: np.ndarray, v: np.ndarray) -> None:
        a, c = self._tensor(u), self._tensor(v)
        P.addr_(a, c).addr_(c, a)

    def copy(self, P):
        return P.clone()

    def diagonal(self, P) -> np.ndarray:
        return P.diagonal().cpu().numpy()

    def to_numpy(self, P) -> np.ndarray:
        return P.cpu().numpy()

    def symmetric(self, P) -> np.ndarray:
        return P.cpu().numpy()  # kept full

    def adopt(self, other, pyy, pyx):
        """Another accumulator's ``(P_yy, P_yx)`` as tensors on this device."""
        if isinstance(other, TorchMoments):
            return pyy.to(self.device), pyx.to(self.device)
        return self._tensor(other.symmetric(pyy)), self._tensor(np.ascontiguousarray(pyx))

    def solve(self, A, B, lam: float):
        """:func:`_spd_solve_torch` with ``C = Xᵀ`` as a C-contiguous NumPy array (transposed
        on the device: a host-side transposing copy of an 8192² C took 0.35-1.9 s)."""
        CT, quad, cmc, rank, cond, method = _spd_solve_torch(self._torch, A, B, lam)
        C = CT.mT.contiguous()
        del CT
        return C.cpu().numpy(), quad, cmc, rank, cond, method

    def clear(self) -> None:
        """Forget the cached shift tensors."""
        self._shifts.clear()


def _make_backend(backend: str, device):
    backend = check_choice(backend, "backend", ("cpu", "torch"), normalize=False)
    if backend == "torch":
        return TorchMoments(resolve_device(device))
    if device is not None and str(device) != "cpu":
        raise FastinvError(
            f"backend='cpu' runs on the CPU, got device={device!r}; use "
            "backend='torch' for another device"
        )
    return NumpyMoments()


# ----------------------------------------------------------------------------------------
# the accumulator


class MomentAccumulator:
    """Streamed first and second moments of pairs ``(y, x)`` for an affine least-squares fit.

    Parameters
    ----------
    n_in : int
        Dimension of the inputs ``y``.
    n_out : int
        Dimension of the outputs ``x``.
    backend : {"cpu", "torch"}
        ``"cpu"``: NumPy arrays, BLAS syrk/gemm, LAPACK solve (:class:`NumpyMoments`).
        ``"torch"``: float64 tensors on ``device`` (:class:`TorchMoments`).
    device : str or torch.device, optional
        Torch device for ``backend="torch"`` (default: CUDA when available, else CPU).

    Notes
    -----
    State: the count ``N``; per-column shifts ``s_y, s_x`` (fixed by the first chunk);
    ``S_y = Σ (y − s_y)``, ``S_x = Σ (x − s_x)``, ``q_x = Σ (x − s_x)²`` (per column);
    ``P_yy = Σ (y − s_y)(y − s_y)ᵀ`` (n_in × n_in) and ``P_yx = Σ (y − s_y)(x − s_x)ᵀ``
    (n_in × n_out). Memory: ``(n_in² + n_in·n_out)·8`` bytes plus one chunk buffer
    (only when a chunk must be cast or shifted).
    """

    def __init__(self, n_in: int, n_out: int, *, backend: str = "cpu", device=None) -> None:
        self.n_in = check_int(n_in, "n_in", lo=1)
        self.n_out = check_int(n_out, "n_out", lo=1)
        self._be = _make_backend(backend, device)
        self.backend = self._be.name
        self.device = self._be.device
        self._pyy = self._be.zeros(self.n_in, self.n_in)
        self._pyx = self._be.zeros(self.n_in, self.n_out)
        self.count = 0
        self._shift_y: np.ndarray | None = None
        self._shift_x: np.ndarray | None = None
        self._sum_y = np.zeros(self.n_in)
        self._sum_x = np.zeros(self.n_out)
        self._sumsq_x = np.zeros(self.n_out)
        self._consumed = False

    @property
    def n_samples(self) -> int:
        return self.count

    @property
    def mean_x(self) -> np.ndarray:
        """Mean of the outputs seen so far (float64, shape (n_out,))."""
        self._require_samples("call update() first")
        return self._shift_x + self._sum_x / self.count

    # -- update ---------------------------------------------------------------------------

    def update(self, Y_c, X_c, *, row0=0, what_y: str = "Y", what_x: str = "X"):
        """Add a chunk of pairs.

        Parameters
        ----------
        Y_c : array_like or torch.Tensor of shape (m, n_in)
        X_c : array_like or torch.Tensor of shape (m, n_out)
        row0 : int or ndarray
            Number of the chunk's first row, or the numbers of its rows, for error messages.
        what_y, what_x : str
            Names of ``Y_c`` and ``X_c`` in error messages.

        Returns
        -------
        MomentAccumulator
            ``self``.
        """
        self._check_live()
        be = self._be
        Y_c = be.prepare(Y_c, what_y, self.n_in)
        X_c = be.prepare(X_c, what_x, self.n_out)
        m = Y_c.shape[0]
        if X_c.shape[0] != m:
            raise FastinvError(
                f"{what_x} has {X_c.shape[0]} rows but {what_y} has {m}; pass one output row "
                "per input row"
            )
        if m > 0:
            self._add_chunk(be.as_data(Y_c), be.as_data(X_c), row0, what_y, what_x)
        return self

    def _add_chunk(self, Y, X, row0, what_y: str, what_x: str) -> None:
        be = self._be
        first = self._shift_y is None
        sh_y = be.choose_shift(Y) if first else self._shift_y
        sh_x = be.choose_shift(X) if first else self._shift_x
        Ys, sy, _ = be.shifted(Y, sh_y, "y", first, squares=False)
        Xs, sx, qx = be.shifted(X, sh_x, "x", first, squares=True)
        if not (np.isfinite(sy).all() and np.isfinite(sx).all() and np.isfinite(qx).all()):
            raise_nonfinite(be.host(Y), what_y, row0)
            raise_nonfinite(be.host(X), what_x, row0)
            raise FastinvError(
                f"the sums of rows {rows_text(row0, Y.shape[0])} overflowed; rescale the data"
            )
        if first:
            self._shift_y, self._shift_x = sh_y, sh_x
        be.syrk(self._pyy, Ys)
        be.gemm(self._pyx, Ys, Xs)
        self.count += Y.shape[0]
        self._sum_y += sy
        self._sum_x += sx
        self._sumsq_x += qx

    def _check_live(self) -> None:
        if self._consumed:
            raise FastinvError(
                "this accumulator was consumed by an in-place solve; build a new one"
            )

    def _require_samples(self, hint: str) -> int:
        if self.count == 0:
            raise FastinvError(f"the accumulator holds no samples; {hint}")
        return self.count

    def _syr(self, P, alpha: float, u: np.ndarray) -> None:
        """P += alpha u uᵀ (upper triangle on the CPU backend)."""
        if alpha == 0.0 or not u.any():
            return
        self._be.syr(P, alpha, u)

    def _ger(self, P, alpha: float, u: np.ndarray, v: np.ndarray) -> None:
        """P += alpha u vᵀ."""
        if alpha == 0.0 or not u.any() or not v.any():
            return
        self._be.ger(P, alpha, u, v)

    # -- merge ----------------------------------------------------------------------------

    def merge(self, other: MomentAccumulator) -> MomentAccumulator:
        """Add the samples of ``other`` to ``self`` (pairwise formula); returns ``self``.

        The result equals one pass over both sets of data up to rounding.
        ``other`` is unchanged and may live on another backend.
        """
        self._check_mergeable(other)
        if other.count == 0:
            return self
        pyy_b, pyx_b = self._be.adopt(other._be, other._pyy, other._pyx)
        if self.count == 0:
            self._take_state(other, pyy_b, pyx_b)
        elif np.array_equal(self._shift_y, other._shift_y) and np.array_equal(
            self._shift_x, other._shift_x
        ):
            self._add_state(other, pyy_b, pyx_b)
        else:
            self._merge_chan(other, pyy_b, pyx_b)
        return self

    def _check_mergeable(self, other) -> None:
        if not isinstance(other, MomentAccumulator):
            raise FastinvError(f"can only merge a MomentAccumulator, got {type(other).__name__}")
        if (other.n_in, other.n_out) != (self.n_in, self.n_out):
            raise FastinvError(
                f"cannot merge an accumulator of shape ({other.n_in}, {other.n_out}) into one "
                f"of shape ({self.n_in}, {self.n_out}); both must have the same n_in and n_out"
            )
        if other is self:
            raise FastinvError("cannot merge an accumulator with itself; merge a copy instead")
        self._check_live()
        other._check_live()

    def _take_state(self, other: MomentAccumulator, pyy_b, pyx_b) -> None:
        """Merge into an empty accumulator: copy ``other``."""
        self.count = other.count
        self._shift_y = other._shift_y.copy()
        self._shift_x = other._shift_x.copy()
        self._sum_y = other._sum_y.copy()
        self._sum_x = other._sum_x.copy()
        self._sumsq_x = other._sumsq_x.copy()
        self._be.iadd(self._pyy, pyy_b)
        self._be.iadd(self._pyx, pyx_b)
        self._be.clear()

    def _add_state(self, other: MomentAccumulator, pyy_b, pyx_b) -> None:
        """Merge with equal shifts: the shifted sums simply add."""
        self.count += other.count
        self._sum_y += other._sum_y
        self._sum_x += other._sum_x
        self._sumsq_x += other._sumsq_x
        self._be.iadd(self._pyy, pyy_b)
        self._be.iadd(self._pyx, pyx_b)

    def _merge_chan(self, other: MomentAccumulator, pyy_b, pyx_b) -> None:
        """Merge with different shifts (Chan, Golub & LeVeque), then re-shift."""
        Na, Nb = self.count, other.count
        N = Na + Nb
        Sa_y, Sa_x, Sb_y, Sb_x = self._sum_y, self._sum_x, other._sum_y, other._sum_x
        dy = (other._shift_y - self._shift_y) + (Sb_y / Nb - Sa_y / Na)
        dx = (other._shift_x - self._shift_x) + (Sb_x / Nb - Sa_x / Na)
        w = Na * Nb / N
        # centred co-moments, merged in place into self's matrices
        self._syr(self._pyy, -1.0 / Na, Sa_y)
        self._be.iadd(self._pyy, pyy_b)
        self._syr(self._pyy, -1.0 / Nb, Sb_y)
        self._syr(self._pyy, w, dy)
        self._ger(self._pyx, -1.0 / Na, Sa_y, Sa_x)
        self._be.iadd(self._pyx, pyx_b)
        self._ger(self._pyx, -1.0 / Nb, Sb_y, Sb_x)
        self._ger(self._pyx, w, dy, dx)
        mxx = (self._sumsq_x - Sa_x * Sa_x / Na) + (other._sumsq_x - Sb_x * Sb_x / Nb) + w * dx * dx
        # re-express about a new shift: 0 where |mean| <= std, else whichever of the two old
        # shifts is closer to the mean -- never the rounded mean itself, whose rounding error
        # (an ulp of a huge mean) would be lost from the shifted sums
        var_y = self._be.diagonal(self._pyy) / N
        new_y, S_y = _merged_shift(self._shift_y, other._shift_y, Sa_y, Sb_y, Na, Nb, var_y)
        new_x, S_x = _merged_shift(self._shift_x, other._shift_x, Sa_x, Sb_x, Na, Nb, mxx / N)
        self._syr(self._pyy, 1.0 / N, S_y)
        self._ger(self._pyx, 1.0 / N, S_y, S_x)
        self.count = N
        self._shift_y, self._shift_x = new_y, new_x
        self._sum_y = S_y
        self._sum_x = S_x
        self._sumsq_x = mxx + S_x * S_x / N
        self._be.clear()

    # -- solve ----------------------------------------------------------------------------

    def solve(
        self,
        *,
        intercept: bool = True,
        ridge: float = 0.0,
        in_place: bool = False,
        stacklevel: int = 2,
    ) -> LinearFit:
        """Solve the least-squares problem for the data seen so far.

        Parameters
        ----------
        intercept : bool
            Fit ``b`` (centred moments); False fits ``x ≈ C y`` (raw moments about 0).
        ridge : float
            Added to the diagonal of ``M_yy / N`` (covariance scale); the intercept is not
            penalised.
        in_place : bool
            Work in the accumulator's own matrices (no copies); the accumulator cannot be
            used afterwards. By default the state is unchanged.
        stacklevel : int
            Of the minimum-norm ``UserWarning``, as in ``warnings.warn``: 2 names the caller
            of ``solve``; a wrapper adds its own depth.

        Returns
        -------
        LinearFit
            With the in-sample R².
        """
        self._check_live()
        ridge = check_float(ridge, "ridge", lo=0)
        N = self._require_samples("call update() with data before solve()")
        Sx, Qx = self._sum_x, self._sumsq_x
        sst = float(np.sum(np.maximum(Qx - Sx * Sx / N, 0.0)))
        Myy, Myx = self._normal_matrices(in_place)
        if intercept:
            self._centre(Myy, Myx)
            xx = sst
        else:
            xx = self._about_zero(Myy, Myx)
        C, quad, cmc, rank, cond, method = self._be.solve(Myy, Myx, ridge * N)
        mean_y = self._shift_y + self._sum_y / N
        b = self.mean_x - C @ mean_y if intercept else np.zeros(self.n_out)
        sse = max(xx - 2.0 * quad + cmc, 0.0)
        r2 = 1.0 - sse / sst if sst > 0 else float("nan")
        min_norm = method == "eigh" and rank < self.n_in
        if min_norm:
            _warn_min_norm(N, self.n_in, bool(intercept), rank, stacklevel)
        return LinearFit(
            C=C, b=b, r2=r2, r2_heldout=None, rank=rank, n_samples=N, min_norm=min_norm,
            cond=cond, method=method, ridge=ridge, intercept=bool(intercept), r2_insample=r2,
        )  # fmt: skip

    def _normal_matrices(self, in_place: bool):
        """``(P_yy, P_yx)`` to solve in: the state itself (consumed) or copies."""
        if in_place:
            self._consumed = True
            self._be.clear()
            return self._pyy, self._pyx
        return self._be.copy(self._pyy), self._be.copy(self._pyx)

    def _centre(self, Myy, Myx) -> None:
        """Shifted products -> centred co-moments ``M_yy``, ``M_yx``."""
        N, Sy = self.count, self._sum_y
        self._syr(Myy, -1.0 / N, Sy)
        self._ger(Myx, -1.0 / N, Sy, self._sum_x)

    def _about_zero(self, Myy, Myx) -> float:
        """Shifted products -> raw moments about 0; returns ``Σ ‖x‖²``."""
        N, sy, sx = self.count, self._shift_y, self._shift_x
        Sy, Sx, Qx = self._sum_y, self._sum_x, self._sumsq_x
        if sy.any():
            # Σ y yᵀ = P + s uᵀ + u sᵀ with u = S + (N/2) s
            self._be.syr2(Myy, sy, Sy + 0.5 * N * sy)
        self._ger(Myx, 1.0, sy, Sx + N * sx)
        self._ger(Myx, 1.0, Sy, sx)
        return float(np.sum(Qx + 2.0 * sx * Sx + N * sx * sx))

    def moments(self) -> dict[str, Any]:
        """Centred moments as NumPy float64 arrays (symmetrised; for inspection and tests).

        Returns
        -------
        dict
            ``n``, ``mean_y`` (n_in,), ``mean_x`` (n_out,), ``M_yy`` (n_in, n_in),
            ``M_xy`` (n_out, n_in), ``trace_M_xx`` float.
        """
        self._check_live()
        N = self._require_samples("call update() first")
        pyy = self._be.symmetric(self._pyy)
        pyx = self._be.to_numpy(self._pyx)
        Sy, Sx = self._sum_y, self._sum_x
        Myy = pyy - np.outer(Sy, Sy) / N
        Myy = (Myy + Myy.T) / 2
        Mxy = (pyx - np.outer(Sy, Sx) / N).T
        return {
            "n": N,
            "mean_y": self._shift_y + Sy / N,
            "mean_x": self.mean_x,
            "M_yy": Myy,
            "M_xy": np.ascontiguousarray(Mxy),
            "trace_M_xx": float(np.sum(self._sumsq_x - Sx * Sx / N)),
        }


def _warn_min_norm(N: int, n: int, intercept: bool, rank: int, stacklevel: int) -> None:
    """The minimum-norm UserWarning; ``stacklevel`` as seen from :meth:`MomentAccumulator.solve`."""
    need = n + int(intercept)
    if N < need:
        msg = (
            f"only N = {N} samples for n = {n} input dimensions"
            + (" plus an intercept" if intercept else "")
            + f": the fit is the minimum-norm solution, of rank <= N (rank {rank}); "
            f"use at least {need} samples for a unique fit"
        )
    else:
        msg = (
            f"the inputs are numerically rank-deficient (rank {rank} of n = {n}, "
            f"N = {N} samples): the fit is the minimum-norm solution"
        )
    warnings.warn(msg, UserWarning, stacklevel=stacklevel + 1)


# ----------------------------------------------------------------------------------------
# shifts


def _choose_shift(A: np.ndarray) -> np.ndarray:
    """Per-column shift from a first chunk: its mean, or 0 where mean² <= variance.

    One pass over at most 1024 rows. The variance ``q/m − mean²`` is cancellation-prone
    for huge means, but then it is tiny against mean² and the decision is still right.
    """
    A = A[:1024]
    m, k = A.shape
    s = np.zeros(k)
    q = np.zeros(k)
    _k._colsums(A, np.zeros(k), s, q)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf are reported by the caller
        mu = s / m
        var = q / m - mu * mu
        keep = mu * mu > var
    return np.where(keep & np.isfinite(mu), mu, 0.0)


def _choose_shift_torch(At) -> np.ndarray:
    mu = At.mean(0)
    var = ((At - mu) ** 2).mean(0)
    mu_n = mu.cpu().numpy()
    var_n = var.cpu().numpy()
    with np.errstate(invalid="ignore"):
        keep = mu_n * mu_n > var_n
    return np.where(keep & np.isfinite(mu_n), mu_n, 0.0)


def _merged_shift(sa, sb, Sa, Sb, Na: int, Nb: int, var):
    """(shift, Σ (v − shift)) for merged data from two (shift, shifted sum, count) triples."""
    N = Na + Nb
    about_a = Sa + Sb + Nb * (sb - sa)
    about_b = Sa + Sb + Na * (sa - sb)
    about_0 = (Sa + Na * sa) + (Sb + Nb * sb)
    mean = about_0 / N
    use0 = mean * mean <= var
    useb = ~use0 & (np.abs(about_b) < np.abs(about_a))
    shift = np.where(use0, 0.0, np.where(useb, sb, sa))
    S = np.where(use0, about_0, np.where(useb, about_b, about_a))
    return shift, S


def _blas_t(A: np.ndarray) -> tuple[np.ndarray, int]:
    """(a, op) with op(a) = Aᵀ and ``a`` Fortran-contiguous (no copy for C or F input)."""
    if A.flags.c_contiguous:
        return A.T, 0
    if A.flags.f_contiguous:
        return A, 1
    return np.ascontiguousarray(A).T, 0  # pragma: no cover  (callers pass contiguous)


# ----------------------------------------------------------------------------------------
# symmetric positive (semi-)definite solves


def _inv_norm1_est(solve: Callable[[np.ndarray], np.ndarray], n: int) -> float:
    """Hager–Higham lower estimate of ‖A⁻¹‖₁ for symmetric A, given ``v -> A⁻¹ v``."""
    x = np.full(n, 1.0 / n)
    est = 0.0
    for it in range(5):
        y = solve(x)
        new = float(np.abs(y).sum())
        if not math.isfinite(new):
            return math.inf
        if it > 0 and new <= est:
            break
        est = new
        xi = np.where(y >= 0, 1.0, -1.0)
        z = solve(xi)
        j = int(np.argmax(np.abs(z)))
        if it > 0 and abs(z[j]) <= float(z @ x):
            break
        x = np.zeros(n)
        x[j] = 1.0
    if n > 1:
        alt = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * (1.0 + np.arange(n) / (n - 1))
        a = float(np.abs(solve(alt)).sum()) * 2.0 / (3.0 * n)
        if not math.isfinite(a):
            return math.inf
        est = max(est, a)
    return est


def _singular(cond: float, n: int) -> bool:
    return not math.isfinite(cond) or cond * n * _EPS >= 1.0


def _eig_rank_cond(w: np.ndarray, n: int) -> tuple[int, float]:
    """Numerical rank (eigenvalues above ``n·eps·λ_max``) and ``λ_max/λ_min`` of ascending
    eigenvalues ``w``."""
    wmax = float(w[-1])
    r = int(np.count_nonzero(w > n * _EPS * wmax)) if wmax > 0 else 0
    cond = wmax / float(w[0]) if w[0] > 0 else math.inf
    return r, cond


def _spd_solve_np(A: np.ndarray, B: np.ndarray, lam: float):
    """Solve ``(A + lam I) X = B`` in place (A F-ordered, upper triangle valid; B F-ordered).

    Returns ``(X, quad, cmc, rank, cond, method)`` with ``X`` stored in ``B``,
    ``quad = ⟨X, B⟩`` and ``cmc = ⟨X, A X⟩`` (for the in-sample R²).
    """
    n = A.shape[0]
    _k._sym_fill(A, True)  # lower := upper, so that the lower triangle survives potrf
    di = np.diag_indices(n)
    if lam:
        A[di] += lam
    diag = A[di].copy()
    colsum = np.empty(n)
    _k._abs_colsums(A, colsum)
    anorm = float(colsum.max())
    U, info = lapack.dpotrf(A, lower=0, clean=0, overwrite_a=1)
    if info == 0 and anorm > 0:
        cond = anorm * _inv_norm1_est(lambda v: lapack.dpotrs(U, v, lower=0)[0], n)
        if not _singular(cond, n):
            return _cholesky_solve_np(U, B, lam, cond)
    # minimum-norm fallback on the intact lower triangle
    if U is A:
        A[di] = diag
    else:  # pragma: no cover  (potrf always works in place here)
        A = np.asfortranarray(np.tril(A) + np.tril(A, -1).T)
    return _min_norm_np(A, B, lam)


def _cholesky_solve_np(U: np.ndarray, B: np.ndarray, lam: float, cond: float):
    """``X = U⁻¹ U⁻ᵀ B`` in B's storage, given the Cholesky factor ``U``."""
    Z, info = lapack.dtrtrs(U, B, lower=0, trans=1, overwrite_b=1)
    zf = Z.T.reshape(-1)
    quad = float(zf @ zf)
    X, info = lapack.dtrtrs(U, Z, lower=0, trans=0, overwrite_b=1)
    xf = X.T.reshape(-1)
    cmc = quad - lam * float(xf @ xf)
    return X, quad, cmc, U.shape[0], cond, "cholesky"


def _min_norm_np(A: np.ndarray, B: np.ndarray, lam: float):
    """Minimum-norm ``X = A⁺ B`` by eigh of the lower triangle of ``A`` (destroyed)."""
    n = A.shape[0]
    w, V = scipy.linalg.eigh(A, lower=True, overwrite_a=True, check_finite=False, driver="evr")
    r, cond = _eig_rank_cond(w, n)
    if r == 0:
        B[...] = 0.0
        return B, 0.0, 0.0, 0, cond, "eigh"
    Vk = V[:, n - r :]
    wk = w[n - r :]
    # G = Λ⁻¹ Vᵀ B (r, n_out), written into A's storage (eigh destroyed A) when it fits, so
    # the fallback needs one n×n array (V) beyond the two co-moment matrices
    k = B.shape[1]
    if r * k <= A.size and A.flags.f_contiguous and not np.shares_memory(A, V):
        G = A.reshape(-1, order="F")[: r * k].reshape(r, k)
        np.dot(Vk.T, B, out=G)
    else:
        G = Vk.T @ B
    G /= wk[:, None]
    g2 = np.einsum("ij,ij->i", G, G)
    quad = float(np.dot(wk, g2))
    cmc = float(np.dot(wk - lam, g2))
    np.dot(G.T, Vk.T, out=B.T)
    return B, quad, cmc, r, cond, "eigh"


def _spd_solve_torch(torch, A, B, lam: float):
    """Torch version of :func:`_spd_solve_np` (A full symmetric, overwritten)."""
    n = A.shape[0]
    if lam:
        A.diagonal().add_(lam)
    anorm = float(torch.linalg.matrix_norm(A, ord=1))
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0 and anorm > 0:

        def solve(v: np.ndarray) -> np.ndarray:
            vt = torch.as_tensor(v, device=A.device).unsqueeze(1)
            return torch.cholesky_solve(vt, L).squeeze(1).cpu().numpy()

        cond = anorm * _inv_norm1_est(solve, n)
        if not _singular(cond, n):
            return _cholesky_solve_torch(torch, L, B, lam, cond)
    L = None  # free the failed factor before eigh
    return _min_norm_torch(torch, A, B, lam)


def _cholesky_solve_torch(torch, L, B, lam: float, cond: float):
    Z = torch.linalg.solve_triangular(L, B, upper=False)
    quad = float((Z * Z).sum())
    X = torch.linalg.solve_triangular(L.mT, Z, upper=True)
    cmc = quad - lam * float((X * X).sum())
    return X, quad, cmc, L.shape[0], cond, "cholesky"


def _min_norm_torch(torch, A, B, lam: float):
    n = A.shape[0]
    w, V = torch.linalg.eigh(A)
    r, cond = _eig_rank_cond(w.cpu().numpy(), n)
    if r == 0:
        return torch.zeros_like(B), 0.0, 0.0, 0, cond, "eigh"
    Vk = V[:, n - r :]
    wk = w[n - r :]
    G = (Vk.T @ B) / wk[:, None]
    g2 = (G * G).sum(1)
    quad = float((wk * g2).sum())
    cmc = float(((wk - lam) * g2).sum())
    return Vk @ G, quad, cmc, r, cond, "eigh"


# ----------------------------------------------------------------------------------------
# streamed R² of a fit on new data


class R2Stream:
    """Σ‖C y + b − x‖² and Σ‖x − x̄‖² over chunks, for the R² of a fit on new data.

    x̄ is only known at the end, so deviations are summed about a reference ``xref`` (the
    training mean of x, or the first chunk's mean): ``Σ‖x − x̄‖² = Σ‖x − r‖² − N‖x̄ − r‖²``
    stays accurate because ``r`` is close to ``x̄``.

    Parameters
    ----------
    C, b : ndarray
        The fit.
    xref : ndarray or None
        Reference for the deviations (None: the mean of the first chunk's first 1024 rows).
    device : torch.device or None
        Compute with torch on this device; None: NumPy.
    """

    def __init__(self, C: np.ndarray, b: np.ndarray, xref: np.ndarray | None, device) -> None:
        self.n = 0
        k = C.shape[0]
        self.sse = np.zeros(k)
        self.sdev = np.zeros(k)
        self.sdev2 = np.zeros(k)
        self.xref = None if xref is None else np.asarray(xref, dtype=np.float64)
        self.b = np.ascontiguousarray(b, dtype=np.float64)
        self.device = device
        if device is None:
            self.CT = C.T
            self._sums = self._sums_np
        else:
            import torch

            self.torch = torch
            self.Ct = torch.as_tensor(C, device=device)
            self.bt = torch.as_tensor(self.b, device=device)
            self._sums = self._sums_torch

    def update(self, Yc, Xc, row0=0, what_y: str = "Y", what_x: str = "X") -> None:
        """Add a chunk of inputs ``Yc`` and targets ``Xc`` (rows ``row0`` on)."""
        m = Yc.shape[0]
        if m == 0:
            return
        sse, sdev, sdev2 = self._sums(Yc, Xc)
        if not (np.isfinite(sse).all() and np.isfinite(sdev2).all()):
            raise_nonfinite(to_numpy(Yc), what_y, row0)
            raise_nonfinite(to_numpy(Xc), what_x, row0)
            raise FastinvError(
                f"the residuals of rows {rows_text(row0, m)} overflowed; rescale the data"
            )
        self.sse += sse
        self.sdev += sdev
        self.sdev2 += sdev2
        self.n += m

    def _sums_np(self, Yc, Xc):
        Yc = np.asarray(Yc)
        Xc = np.asarray(Xc)
        if Xc.dtype not in (np.float32, np.float64):
            Xc = Xc.astype(np.float64)
        if self.xref is None:
            self.xref = np.asarray(Xc[:1024], dtype=np.float64).mean(0)
        P = np.asarray(Yc, dtype=np.float64) @ self.CT
        sse, sdev, sdev2 = (np.zeros(P.shape[1]) for _ in range(3))
        _k._resid_sums(Xc, P, self.b, self.xref, sse, sdev, sdev2)
        return sse, sdev, sdev2

    def _sums_torch(self, Yc, Xc):
        t = self.torch
        Yt = t.as_tensor(Yc).to(device=self.device, dtype=t.float64)
        Xt = t.as_tensor(Xc).to(device=self.device, dtype=t.float64)
        if self.xref is None:
            self.xref = Xt[:1024].mean(0).cpu().numpy()
        R = Xt - Yt @ self.Ct.T - self.bt
        D = Xt - t.as_tensor(self.xref, device=self.device)
        return (R * R).sum(0).cpu().numpy(), D.sum(0).cpu().numpy(), (D * D).sum(0).cpu().numpy()

    def result(self) -> float:
        """``1 − SSE / SST`` over the chunks seen (nan when the targets are constant)."""
        sst = float(np.sum(np.maximum(self.sdev2 - self.sdev * self.sdev / max(self.n, 1), 0)))
        sse = float(np.sum(self.sse))
        return 1.0 - sse / sst if sst > 0 else float("nan")
