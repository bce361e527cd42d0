"""The affine surrogate of a model, by streaming least squares, and its Jacobians.

A model ``f`` (a trained network, or any map ``(m, n) -> (m, n)``) is summarised by the
affine map that best explains it on a set of probes ``y_i``::

    x̂_i = f(y_i) ≈ C y_i + b,     C = M_xy M_yy⁻¹,  b = x̄ − C ȳ,

with the co-moment matrices ``M_yy = Σ (y_i − ȳ)(y_i − ȳ)ᵀ`` and
``M_xy = Σ (x_i − x̄)(y_i − ȳ)ᵀ``. They are accumulated chunk by chunk
(:class:`MomentAccumulator`), so the memory is O(n²) -- the N×n data, or the N×n outputs
of ``f``, are never stacked.

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
rounding of ``tr M_xx`` (≈ 1e-15 absolute on R²). Held-out R² (``holdout > 0``) is computed
by a second streamed pass over the held-out rows from the residuals themselves.

Performance (measured on the 2-core development machine, n = 2048, N = 8192, float64)
--------------------------------------------------------------------------------------
``fit_linear`` costs what its BLAS/LAPACK calls cost: 1.05× "syrk + gemm + Cholesky solve"
with one BLAS thread (CPU time 2.67 s vs 2.55 s), about 1.0× with two; 8.4× faster than
``numpy.linalg.lstsq`` and 4.8× faster than ``scipy.linalg.lstsq(lapack_driver="gelsy")``
with one thread (wall, two threads, loaded machine: 31× and 11×). Extra memory (tracemalloc):
2.01·n²·8 bytes for float64 data (no chunk copies), 3.02·n²·8 on the eigh fallback, plus one
chunk when chunks must be cast (float32) or shifted. Chunks are fed to one multi-threaded
BLAS call each; Python-thread accumulators would not help, since SciPy's f2py BLAS wrappers
hold the GIL -- use :meth:`MomentAccumulator.merge` across processes instead.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

from fastinv._device import cuda_available, float_dtype
from fastinv.errors import FastinvError
from fastinv.kernels import moments as _k

__all__ = [
    "LinearFit",
    "MomentAccumulator",
    "fit_linear",
    "fit_surrogate",
    "jacobians",
    "mean_jacobian",
]

_EPS = float(np.finfo(np.float64).eps)
#: one chunk of float64 Y and X together takes at most this many bytes by default
_CHUNK_BYTES = 1 << 26
#: the same for tensors that live on a GPU
_CHUNK_BYTES_GPU = 1 << 30
#: a batch of Jacobians takes at most this many bytes (caps ``batch_size``); the vmapped
#: reverse pass holds several times that in intermediates, so it is kept moderate
_JAC_BATCH_BYTES = 1 << 28


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
        Y = _as_numpy_2d(Y, "Y", self.n_in)
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
        Y = _as_numpy_2d(Y, "Y", self.n_in)
        X = _as_numpy_2d(X, "X", self.n_out)
        if X.shape[0] != Y.shape[0]:
            raise FastinvError(
                f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; pass one target row per input"
            )
        chunk = _chunk_rows(chunk_size, self.n_in, self.n_out, Y.shape[0])
        sc = _R2Stream(self.C, self.b, None, None)
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
        ``"cpu"``: NumPy arrays, BLAS syrk/gemm, LAPACK solve. ``"torch"``: float64 tensors
        on ``device`` (torch.addmm, torch.linalg.cholesky_ex / eigh).
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
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise FastinvError(f"{name} must be a positive integer, got {v!r}")
        if backend not in ("cpu", "torch"):
            raise FastinvError(f"backend must be 'cpu' or 'torch', got {backend!r}")
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.backend = backend
        self._torch = None
        self.device = None
        if backend == "torch":
            import torch

            self._torch = torch
            if device is None:
                device = "cuda" if cuda_available() else "cpu"
            self.device = torch.device(device)
            self._pyy = torch.zeros((n_in, n_in), dtype=torch.float64, device=self.device)
            self._pyx = torch.zeros((n_in, n_out), dtype=torch.float64, device=self.device)
        else:
            if device is not None and str(device) != "cpu":
                raise FastinvError(
                    f"backend='cpu' runs on the CPU, got device={device!r}; use "
                    "backend='torch' for another device"
                )
            self._pyy = np.zeros((n_in, n_in), order="F")
            self._pyx = np.zeros((n_in, n_out), order="F")
        self.count = 0
        self._shift_y: np.ndarray | None = None
        self._shift_x: np.ndarray | None = None
        self._sum_y = np.zeros(n_in)
        self._sum_x = np.zeros(n_out)
        self._sumsq_x = np.zeros(n_out)
        self._bufs: dict[str, np.ndarray] = {}
        self._tshift: dict[str, Any] = {}
        self._consumed = False

    # -- public -------------------------------------------------------------------------

    @property
    def n_samples(self) -> int:
        return self.count

    def update(self, Y_c, X_c) -> MomentAccumulator:
        """Add a chunk of pairs.

        Parameters
        ----------
        Y_c : array_like or torch.Tensor of shape (m, n_in)
        X_c : array_like or torch.Tensor of shape (m, n_out)

        Returns
        -------
        MomentAccumulator
            ``self``.
        """
        self._update(Y_c, X_c, 0, "Y", "X")
        return self

    def merge(self, other: MomentAccumulator) -> MomentAccumulator:
        """Add the samples of ``other`` to ``self`` (pairwise formula); returns ``self``.

        The result equals one pass over both sets of data up to rounding.
        ``other`` is unchanged and may live on another backend.
        """
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
        if other.count == 0:
            return self
        pyy_b, pyx_b = self._import_mats(other)
        if self.count == 0:
            self.count = other.count
            self._shift_y = other._shift_y.copy()
            self._shift_x = other._shift_x.copy()
            self._sum_y = other._sum_y.copy()
            self._sum_x = other._sum_x.copy()
            self._sumsq_x = other._sumsq_x.copy()
            self._mat_iadd(self._pyy, pyy_b)
            self._mat_iadd(self._pyx, pyx_b)
            self._tshift.clear()
            return self
        if np.array_equal(self._shift_y, other._shift_y) and np.array_equal(
            self._shift_x, other._shift_x
        ):
            self.count += other.count
            self._sum_y += other._sum_y
            self._sum_x += other._sum_x
            self._sumsq_x += other._sumsq_x
            self._mat_iadd(self._pyy, pyy_b)
            self._mat_iadd(self._pyx, pyx_b)
            return self
        self._merge_chan(other, pyy_b, pyx_b)
        return self

    def solve(self, *, intercept: bool = True, ridge: float = 0.0) -> LinearFit:
        """Solve the least-squares problem for the data seen so far (state unchanged).

        Parameters
        ----------
        intercept : bool
            Fit ``b`` (centred moments); False fits ``x ≈ C y`` (raw moments about 0).
        ridge : float
            Added to the diagonal of ``M_yy / N`` (covariance scale); the intercept is not
            penalised.

        Returns
        -------
        LinearFit
            With the in-sample R².
        """
        return self._solve(intercept=intercept, ridge=ridge, consume=False, stacklevel=3)

    def moments(self) -> dict[str, Any]:
        """Centred moments as NumPy float64 arrays (symmetrised; for inspection and tests).

        Returns
        -------
        dict
            ``n``, ``mean_y`` (n_in,), ``mean_x`` (n_out,), ``M_yy`` (n_in, n_in),
            ``M_xy`` (n_out, n_in), ``trace_M_xx`` float.
        """
        self._check_live()
        N = self.count
        if N == 0:
            raise FastinvError("the accumulator holds no samples; call update() first")
        pyy = self._to_numpy(self._pyy)
        pyx = self._to_numpy(self._pyx)
        if self._torch is None:
            pyy = np.triu(pyy) + np.triu(pyy, 1).T
        Sy, Sx = self._sum_y, self._sum_x
        Myy = pyy - np.outer(Sy, Sy) / N
        Myy = (Myy + Myy.T) / 2
        Mxy = (pyx - np.outer(Sy, Sx) / N).T
        return {
            "n": N,
            "mean_y": self._shift_y + Sy / N,
            "mean_x": self._shift_x + Sx / N,
            "M_yy": Myy,
            "M_xy": np.ascontiguousarray(Mxy),
            "trace_M_xx": float(np.sum(self._sumsq_x - Sx * Sx / N)),
        }

    # -- update ---------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self._consumed:
            raise FastinvError(
                "this accumulator was consumed by an in-place solve; build a new one"
            )

    def _update(self, Y_c, X_c, row0, what_y: str, what_x: str) -> None:
        self._check_live()
        Y_c = self._prep_input(Y_c, what_y, self.n_in)
        X_c = self._prep_input(X_c, what_x, self.n_out)
        m = Y_c.shape[0]
        if X_c.shape[0] != m:
            raise FastinvError(
                f"{what_x} has {X_c.shape[0]} rows but {what_y} has {m}; pass one output row "
                "per input row"
            )
        if m == 0:
            return
        if self._torch is None:
            self._update_np(Y_c, X_c, row0, what_y, what_x)
        else:
            self._update_torch(Y_c, X_c, row0, what_y, what_x)

    def _prep_input(self, A, what: str, k: int):
        torch = sys.modules.get("torch")
        is_t = torch is not None and isinstance(A, torch.Tensor)
        if self._torch is None:
            if is_t:
                A = A.detach().cpu().numpy()
            A = np.asarray(A)
        elif not is_t:
            A = np.asarray(A)
        if A.ndim != 2 or A.shape[1] != k:
            raise FastinvError(f"{what} must have shape (m, {k}), got {tuple(A.shape)}")
        if is_t and self._torch is not None:
            if A.is_complex() or A.dtype == torch.bool:
                raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")
        else:
            if A.dtype.kind not in "fiu":
                raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")
            if A.dtype not in (np.float32, np.float64):
                A = A.astype(np.float64)
        return A

    def _update_np(self, Y_c, X_c, row0, what_y, what_x) -> None:
        first = self._shift_y is None
        if first:
            sh_y, sh_x = _choose_shift(Y_c), _choose_shift(X_c)
        else:
            sh_y, sh_x = self._shift_y, self._shift_x
        Ym, sy, _ = self._shifted(Y_c, sh_y, "y")
        Xm, sx, qx = self._shifted(X_c, sh_x, "x")
        if not (np.isfinite(sy).all() and np.isfinite(sx).all() and np.isfinite(qx).all()):
            _raise_nonfinite(Y_c, what_y, row0)
            _raise_nonfinite(X_c, what_x, row0)
            raise FastinvError(
                f"the sums of rows {_rows_txt(row0, Y_c.shape[0])} overflowed; rescale the data"
            )
        if first:
            self._shift_y, self._shift_x = sh_y, sh_x
        aY, tY = _blas_t(Ym)
        aX, tX = _blas_t(Xm)
        blas.dsyrk(1.0, aY, beta=1.0, c=self._pyy, trans=tY, lower=0, overwrite_c=1)
        blas.dgemm(1.0, aY, aX, beta=1.0, c=self._pyx, trans_a=tY, trans_b=1 - tX, overwrite_c=1)
        self.count += Y_c.shape[0]
        self._sum_y += sy
        self._sum_x += sx
        self._sumsq_x += qx

    def _shifted(self, A: np.ndarray, shift: np.ndarray, key: str):
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

    def _update_torch(self, Y_c, X_c, row0, what_y, what_x) -> None:
        torch = self._torch
        first = self._shift_y is None
        Yt = self._as_tensor(Y_c)
        Xt = self._as_tensor(X_c)
        if first:
            sh_y, sh_x = _choose_shift_torch(Yt), _choose_shift_torch(Xt)
        else:
            sh_y, sh_x = self._shift_y, self._shift_x
        Ys = self._sub_shift(Yt, sh_y, "y", first)
        Xs = self._sub_shift(Xt, sh_x, "x", first)
        sy = Ys.sum(0)
        sx = Xs.sum(0)
        qx = (Xs * Xs).sum(0)
        ok = bool(torch.isfinite(torch.cat([sy, sx, qx])).all())
        if not ok:
            _raise_nonfinite(Yt.cpu().numpy(), what_y, row0)
            _raise_nonfinite(Xt.cpu().numpy(), what_x, row0)
            raise FastinvError(
                f"the sums of rows {_rows_txt(row0, Yt.shape[0])} overflowed; rescale the data"
            )
        if first:
            self._shift_y, self._shift_x = sh_y, sh_x
        self._pyy.addmm_(Ys.T, Ys)
        self._pyx.addmm_(Ys.T, Xs)
        self.count += Yt.shape[0]
        self._sum_y += sy.cpu().numpy()
        self._sum_x += sx.cpu().numpy()
        self._sumsq_x += qx.cpu().numpy()

    def _as_tensor(self, A):
        torch = self._torch
        if isinstance(A, torch.Tensor):
            return A.detach().to(device=self.device, dtype=torch.float64)
        return torch.as_tensor(np.asarray(A, dtype=np.float64), device=self.device)

    def _sub_shift(self, At, shift: np.ndarray, key: str, fresh: bool):
        if not shift.any():
            return At
        t = None if fresh else self._tshift.get(key)
        if t is None:
            t = self._torch.as_tensor(shift, device=self.device)
            if not fresh:
                self._tshift[key] = t
        return At - t

    # -- matrices: backend-specific small ops --------------------------------------------

    def _to_numpy(self, M) -> np.ndarray:
        if self._torch is None:
            return M
        return M.cpu().numpy()

    def _import_mats(self, other: MomentAccumulator):
        """other's (P_yy, P_yx) in self's backend (full symmetric P_yy for torch)."""
        a, b = other._pyy, other._pyx
        if self._torch is None:
            if other._torch is not None:
                a = np.asfortranarray(a.cpu().numpy())
                b = np.asfortranarray(b.cpu().numpy())
            return a, b
        torch = self._torch
        if other._torch is None:
            a = np.triu(a) + np.triu(a, 1).T
            return (
                torch.as_tensor(a, device=self.device),
                torch.as_tensor(np.ascontiguousarray(b), device=self.device),
            )
        return a.to(self.device), b.to(self.device)

    def _mat_iadd(self, P, Q) -> None:
        if self._torch is None:
            np.add(P, Q, out=P)
        else:
            P.add_(Q)

    def _syr(self, P, alpha: float, u: np.ndarray) -> None:
        """P += alpha u uᵀ (upper triangle on the CPU backend)."""
        if alpha == 0.0 or not u.any():
            return
        if self._torch is None:
            blas.dsyr(alpha, u, a=P, lower=0, overwrite_a=1)
        else:
            ut = self._torch.as_tensor(u, device=self.device)
            P.addr_(ut, ut, alpha=alpha)

    def _ger(self, P, alpha: float, u: np.ndarray, v: np.ndarray) -> None:
        """P += alpha u vᵀ."""
        if alpha == 0.0 or not u.any() or not v.any():
            return
        if self._torch is None:
            blas.dger(alpha, u, v, a=P, overwrite_a=1)
        else:
            ut = self._torch.as_tensor(u, device=self.device)
            vt = self._torch.as_tensor(v, device=self.device)
            P.addr_(ut, vt, alpha=alpha)

    def _merge_chan(self, other: MomentAccumulator, pyy_b, pyx_b) -> None:
        Na, Nb = self.count, other.count
        N = Na + Nb
        Sa_y, Sa_x, Sb_y, Sb_x = self._sum_y, self._sum_x, other._sum_y, other._sum_x
        dy = (other._shift_y - self._shift_y) + (Sb_y / Nb - Sa_y / Na)
        dx = (other._shift_x - self._shift_x) + (Sb_x / Nb - Sa_x / Na)
        w = Na * Nb / N
        # centred co-moments, merged in place into self's matrices
        self._syr(self._pyy, -1.0 / Na, Sa_y)
        self._mat_iadd(self._pyy, pyy_b)
        self._syr(self._pyy, -1.0 / Nb, Sb_y)
        self._syr(self._pyy, w, dy)
        self._ger(self._pyx, -1.0 / Na, Sa_y, Sa_x)
        self._mat_iadd(self._pyx, pyx_b)
        self._ger(self._pyx, -1.0 / Nb, Sb_y, Sb_x)
        self._ger(self._pyx, w, dy, dx)
        mxx = (self._sumsq_x - Sa_x * Sa_x / Na) + (other._sumsq_x - Sb_x * Sb_x / Nb) + w * dx * dx
        # re-express about a new shift: 0 where |mean| <= std, else whichever of the two old
        # shifts is closer to the mean -- never the rounded mean itself, whose rounding error
        # (an ulp of a huge mean) would be lost from the shifted sums
        if self._torch is None:
            var_y = np.diagonal(self._pyy) / N
        else:
            var_y = self._pyy.diagonal().cpu().numpy() / N
        new_y, S_y = _merged_shift(self._shift_y, other._shift_y, Sa_y, Sb_y, Na, Nb, var_y)
        new_x, S_x = _merged_shift(self._shift_x, other._shift_x, Sa_x, Sb_x, Na, Nb, mxx / N)
        self._syr(self._pyy, 1.0 / N, S_y)
        self._ger(self._pyx, 1.0 / N, S_y, S_x)
        self.count = N
        self._shift_y, self._shift_x = new_y, new_x
        self._sum_y = S_y
        self._sum_x = S_x
        self._sumsq_x = mxx + S_x * S_x / N
        self._tshift.clear()

    # -- solve ------------------------------------------------------------------------------

    def _solve(
        self, *, intercept: bool, ridge: float, consume: bool, stacklevel: int = 4
    ) -> LinearFit:
        """Solve; ``consume=True`` works in place in the state (which then cannot be used)."""
        self._check_live()
        ridge = _check_ridge(ridge)
        N = self.count
        if N == 0:
            raise FastinvError(
                "the accumulator holds no samples; call update() with data before solve()"
            )
        n = self.n_in
        sy, sx = self._shift_y, self._shift_x
        Sy, Sx, Qx = self._sum_y, self._sum_x, self._sumsq_x
        mean_y = sy + Sy / N
        mean_x = sx + Sx / N
        sst = float(np.sum(np.maximum(Qx - Sx * Sx / N, 0.0)))
        if consume:
            Myy, Myx = self._pyy, self._pyx
            self._consumed = True
            self._bufs.clear()
        elif self._torch is None:
            Myy, Myx = self._pyy.copy(order="F"), self._pyx.copy(order="F")
        else:
            Myy, Myx = self._pyy.clone(), self._pyx.clone()
        if intercept:
            self._syr(Myy, -1.0 / N, Sy)
            self._ger(Myx, -1.0 / N, Sy, Sx)
            xx = sst
        else:
            if sy.any():
                # Σ y yᵀ = P + s uᵀ + u sᵀ with u = S + (N/2) s
                u = Sy + 0.5 * N * sy
                if self._torch is None:
                    blas.dsyr2(1.0, sy, u, a=Myy, lower=0, overwrite_a=1)
                else:
                    a = self._torch.as_tensor(sy, device=self.device)
                    c = self._torch.as_tensor(u, device=self.device)
                    Myy.addr_(a, c).addr_(c, a)
            self._ger(Myx, 1.0, sy, Sx + N * sx)
            self._ger(Myx, 1.0, Sy, sx)
            xx = float(np.sum(Qx + 2.0 * sx * Sx + N * sx * sx))
        lam = ridge * N
        if self._torch is None:
            CT, quad, cmc, rank, cond, method = _spd_solve_np(Myy, Myx, lam)
            C = CT.T
            if not C.flags.c_contiguous:
                C = np.ascontiguousarray(C)
        else:
            CT, quad, cmc, rank, cond, method = _spd_solve_torch(self._torch, Myy, Myx, lam)
            C = np.ascontiguousarray(CT.cpu().numpy().T)
        b = mean_x - C @ mean_y if intercept else np.zeros(self.n_out)
        sse = max(xx - 2.0 * quad + cmc, 0.0)
        r2 = 1.0 - sse / sst if sst > 0 else float("nan")
        min_norm = method == "eigh" and rank < n
        if min_norm:
            need = n + int(intercept)
            if N < need:
                warnings.warn(
                    f"only N = {N} samples for n = {n} input dimensions"
                    + (" plus an intercept" if intercept else "")
                    + f": the fit is the minimum-norm solution, of rank <= N (rank {rank}); "
                    f"use at least {need} samples for a unique fit",
                    UserWarning,
                    stacklevel=stacklevel,
                )
            else:
                warnings.warn(
                    f"the inputs are numerically rank-deficient (rank {rank} of n = {n}, "
                    f"N = {N} samples): the fit is the minimum-norm solution",
                    UserWarning,
                    stacklevel=stacklevel,
                )
        return LinearFit(
            C=C,
            b=np.asarray(b, dtype=np.float64),
            r2=float(r2),
            r2_heldout=None,
            rank=int(rank),
            n_samples=int(N),
            min_norm=bool(min_norm),
            cond=float(cond),
            method=method,
            ridge=float(ridge),
            intercept=bool(intercept),
            r2_insample=float(r2),
            n_heldout=0,
        )


# ----------------------------------------------------------------------------------------
# helpers of the accumulator


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


def _choose_shift_torch(At) -> np.ndarray:
    mu = At.mean(0)
    var = ((At - mu) ** 2).mean(0)
    mu_n = mu.cpu().numpy()
    var_n = var.cpu().numpy()
    with np.errstate(invalid="ignore"):
        keep = mu_n * mu_n > var_n
    return np.where(keep & np.isfinite(mu_n), mu_n, 0.0)


def _blas_t(A: np.ndarray) -> tuple[np.ndarray, int]:
    """(a, op) with op(a) = Aᵀ and ``a`` Fortran-contiguous (no copy for C or F input)."""
    if A.flags.c_contiguous:
        return A.T, 0
    if A.flags.f_contiguous:
        return A, 1
    return np.ascontiguousarray(A).T, 0  # pragma: no cover  (callers pass contiguous)


def _abs_row(row0, i: int) -> int:
    """Absolute row number of row ``i`` of a chunk; ``row0`` is the chunk's first row (int)
    or the absolute indices of its rows (ndarray, for a holdout selection)."""
    return int(row0[i]) if isinstance(row0, np.ndarray) else int(row0) + i


def _rows_txt(row0, m: int) -> str:
    return f"{_abs_row(row0, 0)}..{_abs_row(row0, m - 1)}"


def _raise_nonfinite(A: np.ndarray, what: str, row0) -> None:
    fin = np.isfinite(A)
    if fin.all():
        return
    i, j = (int(t) for t in np.argwhere(~fin)[0])
    raise FastinvError(
        f"{what} has a non-finite value ({A[i, j]}) at row {_abs_row(row0, i)}, column {j}; "
        "remove or replace NaN/Inf entries"
    )


def _check_ridge(ridge) -> float:
    try:
        r = float(ridge)
    except (TypeError, ValueError):
        raise FastinvError(f"ridge must be a non-negative number, got {ridge!r}") from None
    if not math.isfinite(r) or r < 0:
        raise FastinvError(f"ridge must be a finite non-negative number, got {ridge!r}")
    return r


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
    ok = info == 0 and anorm > 0
    cond = math.inf
    if ok:
        inv = _inv_norm1_est(lambda v: lapack.dpotrs(U, v, lower=0)[0], n)
        cond = anorm * inv
        ok = not _singular(cond, n)
    if ok:
        Z, info = lapack.dtrtrs(U, B, lower=0, trans=1, overwrite_b=1)
        zf = Z.T.reshape(-1)
        quad = float(zf @ zf)
        X, info = lapack.dtrtrs(U, Z, lower=0, trans=0, overwrite_b=1)
        xf = X.T.reshape(-1)
        cmc = quad - lam * float(xf @ xf)
        return X, quad, cmc, n, cond, "cholesky"
    # minimum-norm fallback on the intact lower triangle
    if U is A:
        A[di] = diag
    else:  # pragma: no cover  (potrf always works in place here)
        A = np.asfortranarray(np.tril(A) + np.tril(A, -1).T)
    w, V = scipy.linalg.eigh(A, lower=True, overwrite_a=True, check_finite=False, driver="evr")
    wmax = float(w[-1])
    r = int(np.count_nonzero(w > n * _EPS * wmax)) if wmax > 0 else 0
    cond = wmax / float(w[0]) if w[0] > 0 else math.inf
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
    ok = int(info) == 0 and anorm > 0
    cond = math.inf
    if ok:

        def solve(v: np.ndarray) -> np.ndarray:
            vt = torch.as_tensor(v, device=A.device).unsqueeze(1)
            return torch.cholesky_solve(vt, L).squeeze(1).cpu().numpy()

        cond = anorm * _inv_norm1_est(solve, n)
        ok = not _singular(cond, n)
    if ok:
        Z = torch.linalg.solve_triangular(L, B, upper=False)
        quad = float((Z * Z).sum())
        X = torch.linalg.solve_triangular(L.mT, Z, upper=True)
        cmc = quad - lam * float((X * X).sum())
        return X, quad, cmc, n, cond, "cholesky"
    L = None  # free the failed factor before eigh
    w, V = torch.linalg.eigh(A)
    wn = w.cpu().numpy()
    wmax = float(wn[-1])
    r = int(np.count_nonzero(wn > n * _EPS * wmax)) if wmax > 0 else 0
    cond = wmax / float(wn[0]) if wn[0] > 0 else math.inf
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


class _R2Stream:
    """Σ‖C y + b − x‖² and Σ‖x − x̄‖² over chunks, for the R² of a fit on new data.

    x̄ is only known at the end, so deviations are summed about a reference ``xref`` (the
    training mean of x, or the first chunk's mean): ``Σ‖x − x̄‖² = Σ‖x − r‖² − N‖x̄ − r‖²``
    stays accurate because ``r`` is close to ``x̄``.
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
        else:
            import torch

            self.torch = torch
            self.Ct = torch.as_tensor(C, device=device)
            self.bt = torch.as_tensor(self.b, device=device)

    def update(self, Yc, Xc, row0=0, what_y: str = "Y", what_x: str = "X") -> None:
        m = Yc.shape[0]
        if m == 0:
            return
        if self.device is None:
            Yc = np.asarray(Yc)
            Xc = np.asarray(Xc)
            if Xc.dtype not in (np.float32, np.float64):
                Xc = Xc.astype(np.float64)
            if self.xref is None:
                self.xref = np.asarray(Xc[:1024], dtype=np.float64).mean(0)
            P = np.asarray(Yc, dtype=np.float64) @ self.CT
            sse, sdev, sdev2 = (np.zeros(P.shape[1]) for _ in range(3))
            _k._resid_sums(Xc, P, self.b, self.xref, sse, sdev, sdev2)
        else:
            t = self.torch
            Yt = t.as_tensor(Yc).to(device=self.device, dtype=t.float64)
            Xt = t.as_tensor(Xc).to(device=self.device, dtype=t.float64)
            if self.xref is None:
                self.xref = Xt[:1024].mean(0).cpu().numpy()
            R = Xt - Yt @ self.Ct.T - self.bt
            D = Xt - t.as_tensor(self.xref, device=self.device)
            sse = (R * R).sum(0).cpu().numpy()
            sdev = D.sum(0).cpu().numpy()
            sdev2 = (D * D).sum(0).cpu().numpy()
        if not (np.isfinite(sse).all() and np.isfinite(sdev2).all()):
            _raise_nonfinite(_np_view(Yc), what_y, row0)
            _raise_nonfinite(_np_view(Xc), what_x, row0)
            raise FastinvError(
                f"the residuals of rows {_rows_txt(row0, m)} overflowed; rescale the data"
            )
        self.sse += sse
        self.sdev += sdev
        self.sdev2 += sdev2
        self.n += m

    def result(self) -> float:
        sst = float(np.sum(np.maximum(self.sdev2 - self.sdev * self.sdev / max(self.n, 1), 0)))
        sse = float(np.sum(self.sse))
        return 1.0 - sse / sst if sst > 0 else float("nan")


def _np_view(A) -> np.ndarray:
    return A.detach().cpu().numpy() if _is_tensor(A) else np.asarray(A)


# ----------------------------------------------------------------------------------------
# public fitting functions


def _is_tensor(A) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(A, torch.Tensor)


def _as_numpy_2d(A, what: str, k: int) -> np.ndarray:
    if _is_tensor(A):
        A = A.detach().cpu().numpy()
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[1] != k:
        raise FastinvError(f"{what} must have shape (m, {k}), got {A.shape}")
    if A.dtype.kind not in "fiu":
        raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")
    return A


def _check_2d_any(A, what: str):
    """2-D real array or tensor (no copy); returns it."""
    if _is_tensor(A):
        if A.ndim != 2:
            raise FastinvError(f"{what} must be a 2-D array, got shape {tuple(A.shape)}")
        if A.is_complex() or A.dtype == sys.modules["torch"].bool:
            raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")
        return A
    A = np.asarray(A)
    if A.ndim != 2:
        raise FastinvError(f"{what} must be a 2-D array, got shape {A.shape}")
    if A.dtype.kind not in "fiu":
        raise FastinvError(f"{what} must hold real numbers, got dtype {A.dtype}")
    return A


def _chunk_rows(chunk_size, n_in: int, n_out: int, N: int, *, gpu: bool = False) -> int:
    if chunk_size is None:
        if gpu:  # data already on the device: few, large chunks (each one syncs with the host)
            return int(max(256, min(_CHUNK_BYTES_GPU // (8 * (n_in + n_out)), 65536)))
        c = _CHUNK_BYTES // (8 * (n_in + n_out))
        return int(max(256, min(c, 8192)))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise FastinvError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if chunk_size < 1:
        raise FastinvError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return int(chunk_size)


def _holdout_mask(N: int, holdout, seed) -> np.ndarray | None:
    try:
        h = float(holdout)
    except (TypeError, ValueError):
        raise FastinvError(f"holdout must be a fraction in [0, 1), got {holdout!r}") from None
    if not (0.0 <= h < 1.0):
        raise FastinvError(f"holdout must be a fraction in [0, 1), got {holdout!r}")
    if h == 0.0:
        return None
    k = int(round(h * N))
    if k < 2 or N - k < 1:
        raise FastinvError(
            f"holdout={h} of N={N} rows leaves {k} held-out and {N - k} training rows; "
            "use more rows or a holdout fraction that leaves at least 2 of each"
        )
    rng = np.random.default_rng(seed)
    mask = np.zeros(N, dtype=bool)
    mask[rng.choice(N, size=k, replace=False)] = True
    return mask


def _chunks(N: int, chunk: int, mask: np.ndarray | None, held: bool) -> Iterator[tuple]:
    """(start, stop, sel, row0): sel is None (all rows of the slice) or a boolean row
    selector; row0 is ``start`` or the absolute indices of the selected rows."""
    for a in range(0, N, chunk):
        b = min(N, a + chunk)
        if mask is None:
            yield a, b, None, a
            continue
        sel = mask[a:b] if held else ~mask[a:b]
        if sel.any():
            yield a, b, sel, a + np.flatnonzero(sel)


def _sub_rows(row0, i: int, m: int):
    return row0[i : i + m] if isinstance(row0, np.ndarray) else row0 + i


def _take(A, a: int, b: int, sel):
    if sel is None:
        return A[a:b]
    if _is_tensor(A):
        import torch

        return A[a:b][torch.as_tensor(sel, device=A.device)]
    return A[a:b][sel]


def _finish(acc: MomentAccumulator, intercept, ridge, scorer_fn, n_held) -> LinearFit:
    fit = acc._solve(intercept=intercept, ridge=ridge, consume=True, stacklevel=5)
    if scorer_fn is None:
        return fit
    r2h = scorer_fn(fit)
    fit.r2_heldout = float(r2h)
    fit.r2 = float(r2h)
    fit.n_heldout = int(n_held)
    return fit


def fit_linear(
    Y,
    X,
    *,
    intercept: bool = True,
    ridge: float = 0.0,
    chunk_size: int | None = None,
    holdout: float = 0.0,
    seed: int = 0,
) -> LinearFit:
    """Least-squares affine fit ``X ≈ Y Cᵀ + b`` from streamed moments.

    Parameters
    ----------
    Y : ndarray or torch.Tensor of shape (N, n_in)
        Inputs, one sample per row (float32 or float64; accumulated in float64).
    X : ndarray or torch.Tensor of shape (N, n_out)
        Targets.
    intercept : bool
        Fit ``b`` too (default). Without it the raw moments about 0 are used.
    ridge : float
        Ridge on the covariance scale: ``C = Cov(x, y)(Cov(y) + ridge·I)⁻¹``.
    chunk_size : int, optional
        Rows per chunk (default: a chunk of Y and X together ≤ 64 MiB, 256..8192 rows).
    holdout : float
        Fraction of rows held out (random split by ``seed``) for an out-of-sample R²,
        computed by a streamed second pass. ``fit.r2`` is then the held-out R².
    seed : int
        Seed of the holdout split.

    Returns
    -------
    LinearFit

    Notes
    -----
    Torch tensors select the torch backend on their device (float64 on that device).
    Memory: the two co-moment matrices (``n_in² + n_in·n_out`` floats) plus one chunk;
    the solve works in place in them.
    """
    Y = _check_2d_any(Y, "Y")
    X = _check_2d_any(X, "X")
    N, n_in = Y.shape
    if X.shape[0] != N:
        raise FastinvError(f"X has {X.shape[0]} rows but Y has {N}; pass one target row per input")
    if N == 0:
        raise FastinvError("Y has no rows; pass at least one sample")
    n_out = X.shape[1]
    ridge = _check_ridge(ridge)
    gpu = _is_tensor(Y) and Y.device.type != "cpu"
    chunk = _chunk_rows(chunk_size, n_in, n_out, N, gpu=gpu)
    mask = _holdout_mask(N, holdout, seed)
    if _is_tensor(Y):
        acc = MomentAccumulator(n_in, n_out, backend="torch", device=Y.device)
    else:
        if _is_tensor(X):
            X = X.detach().cpu().numpy()
        acc = MomentAccumulator(n_in, n_out)
    for a, b, sel, r0 in _chunks(N, chunk, mask, held=False):
        acc._update(_take(Y, a, b, sel), _take(X, a, b, sel), r0, "Y", "X")
    scorer = None
    if mask is not None:
        xref = acc._shift_x + acc._sum_x / acc.count  # training mean of x: shift for x̄_held

        def scorer(fit: LinearFit) -> float:
            sc = _R2Stream(fit.C, fit.b, xref, acc.device)
            for a, b, sel, r0 in _chunks(N, chunk, mask, held=True):
                sc.update(_take(Y, a, b, sel), _take(X, a, b, sel), r0)
            return sc.result()

    return _finish(acc, intercept, ridge, scorer, 0 if mask is None else int(mask.sum()))


def _module_dtype_device(model, Y):
    import torch

    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    if _is_tensor(Y):
        dt = Y.dtype if Y.is_floating_point() else torch.float64
        return dt, Y.device
    dt = torch.float32 if np.asarray(Y).dtype == np.float32 else torch.float64
    return dt, torch.device("cpu")


def _make_evaluator(f, n: int, keep_tensor: bool):
    """``ev(Yc, row0) -> outputs`` with the shape / finiteness / exception checks."""
    torch = sys.modules.get("torch")
    is_module = torch is not None and isinstance(f, torch.nn.Module)
    if is_module:
        dtype, dev = None, None

        def ev(Yc, row0):
            nonlocal dtype, dev
            if dtype is None:
                dtype, dev = _module_dtype_device(f, Yc)
            if isinstance(Yc, torch.Tensor):
                yt = Yc.detach().to(device=dev, dtype=dtype)
            else:
                yt = torch.as_tensor(np.asarray(Yc)).to(device=dev, dtype=dtype)
            try:
                with torch.no_grad():
                    out = f(yt)
            except Exception as e:  # noqa: BLE001 -- any model failure becomes one message
                raise FastinvError(
                    f"the model raised {type(e).__name__}: {e} on a batch of shape "
                    f"{tuple(yt.shape)}"
                ) from e
            if not isinstance(out, torch.Tensor):
                out = torch.as_tensor(np.asarray(out))
            _check_out(out.shape, yt.shape, n)
            fin = torch.isfinite(out)
            if not bool(fin.all()):
                _bad_rows(fin.cpu().numpy(), row0)
            out = out.detach()
            return out if keep_tensor else out.cpu().numpy()

        return ev

    if not callable(f):
        raise FastinvError(
            f"f must be a torch.nn.Module or a callable (m, n) -> (m, n), got {type(f).__name__}"
        )

    def ev(Yc, row0):
        if _is_tensor(Yc):
            Yc = Yc.detach().cpu().numpy()
        try:
            out = f(Yc)
        except Exception as e:  # noqa: BLE001
            raise FastinvError(
                f"the model raised {type(e).__name__}: {e} on a batch of shape {tuple(Yc.shape)}"
            ) from e
        if _is_tensor(out):
            out = out.detach().cpu().numpy()
        out = np.asarray(out)
        _check_out(out.shape, Yc.shape, n)
        if out.dtype.kind not in "fiu":
            raise FastinvError(f"the model returned dtype {out.dtype}; it must return real numbers")
        fin = np.isfinite(out)
        if not fin.all():
            _bad_rows(fin, row0)
        return out

    return ev


def _check_probes(Yc, row0) -> None:
    """NaN/Inf in probes are reported as such (before the model turns them into NaN outputs)."""
    if _is_tensor(Yc):
        if not bool(sys.modules["torch"].isfinite(Yc).all()):
            _raise_nonfinite(Yc.detach().cpu().numpy(), "Y", row0)
    elif Yc.dtype.kind == "f" and not np.isfinite(Yc).all():
        _raise_nonfinite(Yc, "Y", row0)


def _check_out(oshape, ishape, n: int) -> None:
    if tuple(oshape) != tuple(ishape):
        raise FastinvError(
            f"model output has shape {tuple(oshape)} for input {tuple(ishape)}; it must map "
            f"(m, n) to (m, n)"
        )


def _bad_rows(fin: np.ndarray, row0) -> None:
    rows = np.flatnonzero(~fin.all(axis=1))
    first = _abs_row(row0, int(rows[0]))
    raise FastinvError(
        f"model output contains NaN or Inf in {rows.size} row(s) of the batch of input rows "
        f"{_rows_txt(row0, fin.shape[0])} (first: input row {first}); check the model and "
        "its inputs"
    )


def _resolve_backend(f, Y, device):
    """(backend, torch device or None) for fit_surrogate."""
    torch = sys.modules.get("torch")
    if device is None:
        dev = None
        if torch is not None and isinstance(f, torch.nn.Module):
            for t in list(f.parameters()) + list(f.buffers()):
                dev = t.device
                break
        if dev is None and _is_tensor(Y):
            dev = Y.device
        if dev is not None and dev.type != "cpu":
            return "torch", dev
        return "cpu", None
    from fastinv._device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cpu":
        return "cpu", None
    return "torch", dev


def fit_surrogate(
    f,
    Y,
    *,
    intercept: bool = True,
    ridge: float = 0.0,
    chunk_size: int | None = None,
    holdout: float = 0.0,
    seed: int = 0,
    device=None,
    batch_size: int | None = None,
) -> LinearFit:
    """Affine surrogate ``f(y) ≈ C y + b`` of a model, evaluated chunk by chunk on probes.

    Parameters
    ----------
    f : torch.nn.Module or callable
        Maps (m, n) to (m, n). A module runs under ``torch.no_grad()`` in its own dtype and
        device (its mode -- train/eval -- is left as it is); inputs are converted per batch.
        A callable receives NumPy arrays.
    Y : ndarray or torch.Tensor of shape (N, n)
        Probes, one per row.
    intercept, ridge, holdout, seed
        As in :func:`fit_linear`.
    chunk_size : int, optional
        Rows whose moments are accumulated at once (default as in :func:`fit_linear`).
    device : str or torch.device, optional
        Where the moments are accumulated: None follows the model (a CUDA module, or CUDA
        probes, use the torch backend on that device; else the CPU/BLAS backend); "cpu",
        "cuda", "cuda:1" or "auto" choose explicitly.
    batch_size : int, optional
        Rows per call of ``f`` (default: ``chunk_size``).

    Returns
    -------
    LinearFit
        With ``r2`` the held-out R² when ``holdout > 0``.

    Raises
    ------
    FastinvError
        If ``f`` returns the wrong shape or NaN/Inf, or raises.

    Notes
    -----
    The outputs of ``f`` are never stacked: memory is the O(n²) moments plus one chunk.
    With a holdout the held-out rows are evaluated once, in a second pass after the solve.
    """
    Y = _check_2d_any(Y, "Y")
    N, n = Y.shape
    if N == 0:
        raise FastinvError("Y has no rows; pass at least one probe")
    ridge = _check_ridge(ridge)
    chunk = _chunk_rows(chunk_size, n, n, N)
    batch = chunk if batch_size is None else _chunk_rows(batch_size, n, n, N)
    mask = _holdout_mask(N, holdout, seed)
    backend, dev = _resolve_backend(f, Y, device)
    acc = MomentAccumulator(n, n, backend=backend, device=dev)
    ev = _make_evaluator(f, n, keep_tensor=backend == "torch")

    def outputs(Yc, row0):
        m = Yc.shape[0]
        if m <= batch:
            return ev(Yc, row0)
        parts = [ev(Yc[i : i + batch], _sub_rows(row0, i, batch)) for i in range(0, m, batch)]
        if backend == "torch":
            import torch

            return torch.cat([p.to(acc.device) for p in parts])
        return np.concatenate(parts)

    for a, b, sel, r0 in _chunks(N, chunk, mask, held=False):
        Yc = _take(Y, a, b, sel)
        _check_probes(Yc, r0)
        acc._update(Yc, outputs(Yc, r0), r0, "Y", "the model's output")
    scorer = None
    if mask is not None:
        xref = acc._shift_x + acc._sum_x / acc.count  # training mean of x: shift for x̄_held

        def scorer(fit: LinearFit) -> float:
            sc = _R2Stream(fit.C, fit.b, xref, acc.device)
            for a, b, sel, r0 in _chunks(N, chunk, mask, held=True):
                Yc = _take(Y, a, b, sel)
                _check_probes(Yc, r0)
                sc.update(Yc, outputs(Yc, r0), r0, "Y", "the model's output")
            return sc.result()

    return _finish(acc, intercept, ridge, scorer, 0 if mask is None else int(mask.sum()))


# ----------------------------------------------------------------------------------------
# Jacobians


def _available_bytes() -> float:
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return math.inf


def _jac_setup(model, Y, batch_size, mode):
    import torch

    if not isinstance(model, torch.nn.Module) and not callable(model):
        raise FastinvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if mode not in ("rev", "fwd"):
        raise FastinvError(f"mode must be 'rev' or 'fwd', got {mode!r}")
    Y = _check_2d_any(Y, "Y")
    m, n = Y.shape
    if m == 0:
        raise FastinvError("Y has no rows; pass at least one probe")
    if isinstance(model, torch.nn.Module):
        dtype, dev = _module_dtype_device(model, Y)
    else:
        dtype, dev = torch.float64, torch.device("cpu")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise FastinvError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise FastinvError(f"batch_size must be a positive integer, got {batch_size!r}")
    item = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8
    cap = max(1, _JAC_BATCH_BYTES // max(1, n * n * item))
    bs = int(min(batch_size, cap, m))

    def single(y):
        out = model(y.unsqueeze(0))
        return out.squeeze(0)

    jac = torch.func.jacrev(single) if mode == "rev" else torch.func.jacfwd(single)
    vj = torch.func.vmap(jac)

    def batches():
        for a in range(0, m, bs):
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

    return torch, m, n, batches


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
            k = J.shape[1]
            need = m * k * n * 8
            avail = _available_bytes()
            if need > 0.8 * avail:
                raise FastinvError(
                    f"the {m} Jacobians of shape ({k}, {n}) need {need / 2**30:.1f} GiB but "
                    f"only {avail / 2**30:.1f} GiB are free; use mean_jacobian() or fewer probes"
                )
            out = np.empty((m, k, n))
        # cast while copying into ``out``: no float64 temporary of the whole batch
        J = J.detach()
        if J.dtype not in (torch.float32, torch.float64):  # bfloat16 etc.: no NumPy dtype
            J = J.to(torch.float64)
        out[a : a + J.shape[0]] = J.cpu().numpy()
    return out


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
