"""Randomized truncated SVD of a dense matrix or of a matrix-free operator.

Two algorithms share one engine:

``method="hmt"``
    Halko, Martinsson & Tropp (2011), "Finding structure with randomness", Alg. 4.4
    (randomized subspace iteration): ``Y = (M Mᵀ)^q M Ω`` with a Gaussian test matrix
    ``Ω`` of ``l = k + n_oversamples`` columns, re-normalised between passes by an LU
    factorisation with partial pivoting (as scikit-learn does; ``P L`` spans the same space as
    the block and is well conditioned), a final orthonormalisation ``Q = orth(Y)``, and the
    Rayleigh–Ritz step ``B = Qᵀ M = W Σ Zᵀ``, ``U = Q W``.  ``2q + 2`` passes over ``M``.
``method="block_krylov"``
    Musco & Musco (2015), "Randomized block Krylov methods for stronger and faster
    approximate singular value decomposition": ``K = [M Ω, (M Mᵀ) M Ω, …, (M Mᵀ)^q M Ω]``,
    orthonormalised block by block (block Golub–Kahan–Lanczos with full, twice-applied
    classical Gram–Schmidt reorthogonalisation), then Rayleigh–Ritz on ``span(K)``. The
    coefficients of every ``Mᵀ Q_j`` in the orthonormal right basis ``P`` are recorded, so
    ``Qᵀ M = Gᵀ Pᵀ`` is known without an extra wide pass, and the method costs the same
    ``2q + 2`` passes as ``hmt`` while its polynomial filter is the best of degree ``2q + 1``
    instead of the monomial: much better on slowly decaying spectra.

A *pass* is one product of ``M`` or ``Mᵀ`` with a block of vectors (one BLAS GEMM, or one
call of ``matvec``/``rmatvec``); the result reports how many were made.

Data layout.  Blocks of ``l`` vectors of length ``N`` are held as C-contiguous *rows*
(shape ``(l, N)``): the products ``Xᵀ Mᵀ`` and ``Yᵀ M`` are the fastest GEMM forms for a
C-ordered ``M`` (faster than ``M @ X`` and ``M.T @ X``), and ``Xt.T`` is exactly the
Fortran-ordered matrix LAPACK factorises in place (no copies before ``getrf``/``geqrf``).
A matrix-free call reproduces the dense result bitwise when its callables compute the same
products (``matvec=lambda X: (X.T @ M.T).T``, ``rmatvec=lambda Y: (Y.T @ M).T``); with the
natural ``M @ X`` the two agree to rounding (BLAS may order the sums differently for some
shapes), and everything after the products is the same code.

Backends.  NumPy/SciPy (LAPACK, BLAS) for NumPy input; torch (CPU or CUDA, cuBLAS/cuSOLVER)
for torch tensors or when ``device`` is given. The Gaussian test matrix is always drawn by
NumPy from ``seed``, so every backend starts from the same ``Ω`` and agrees to rounding.

Threads (NumPy backend).  The passes over ``M`` use all BLAS threads; the factorisations of
the thin blocks run on one BLAS thread (via ``threadpoolctl`` when installed), and so does the
whole computation when one pass is below 2^25 multiply-adds, user callables included: a
threaded OpenBLAS gains little there and collapses when the cores are oversubscribed.

A-posteriori error (HMT §4.3, extended with power steps).  With ``r`` fresh Gaussian probes
``ω_i`` and ``t`` power steps on the residual ``E = M − U S Vᵀ``,
``err_est = (α √(2/π) max_i ‖E (EᵀE)^t ω_i‖)^{1/(2t+1)}``, α = 10.  Because
``‖E (EᵀE)^t ω‖ ≥ σ₁(E)^{2t+1} |⟨v₁, ω⟩|`` and ``⟨v₁, ω⟩ ~ N(0, 1)`` (``P(|g| ≤ δ) ≤
√(2/π) δ``), ``err_est ≥ ‖E‖₂`` holds with probability at least ``1 − α^{-r}``
(``1 − 10⁻⁵`` for the default ``r = 5``); for ``t = 0`` this is exactly HMT eq. (4.3) /
Lemma 4.1.  It overestimates by at most about ``(α √(2/π) ‖ω‖)^{1/(2t+1)}`` (≈ 1.5–3.5 for
``t = 2``).  ``err_lower`` is the Rayleigh–Ritz value of ``‖E z‖/‖z‖`` over the final probe
block, a guaranteed lower bound (up to rounding).  Costs ``2t + 1`` narrow passes.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from fastinv._device import dtype_name, float_dtype, is_torch, resolve_device, to_numpy
from fastinv._validation import check_2d, check_choice, check_finite, check_int, fail
from fastinv.errors import FastinvError
from fastinv.io import to_jsonable

__all__ = ["ALPHA", "RSVDResult", "auto_n_iter", "rsvd", "svd_topk"]

#: HMT §4.3 safety factor α: err_est >= ||E|| with probability >= 1 - ALPHA**(-n_err_probes)
ALPHA = 10.0
_METHODS = ("hmt", "block_krylov")


# --------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------
@dataclass
class RSVDResult:
    """Truncated SVD ``M ≈ U diag(s) Vt`` from :func:`rsvd`.

    Attributes
    ----------
    U : ndarray or torch.Tensor of shape (m, k)
        Left singular vectors (orthonormal columns). A torch tensor when the computation ran
        through torch on torch input (or a matrix-free operator with ``device``).
    s : ndarray or torch.Tensor of shape (k,)
        Singular values, descending.
    Vt : ndarray or torch.Tensor of shape (k, n)
        Right singular vectors as rows.
    n_passes : int
        Products of ``M`` or ``Mᵀ`` with a block made to build the factorisation.
    method : str
        ``"hmt"`` or ``"block_krylov"``.
    err_est : float
        Probabilistic upper estimate of ``‖M − U diag(s) Vt‖₂`` (see module docstring);
        ``nan`` when ``estimate_error=False``.
    rel_err_est : float
        ``err_est / s[0]``.
    err_lower : float
        Guaranteed (up to rounding) lower bound of the same norm.
    err_fail_prob : float
        Upper bound on the probability that ``err_est`` is below the true error
        (``α^{-n_err_probes}``).
    n_passes_err : int
        Extra passes made by the error estimate (``2 n_err_iter + 1``).
    """

    U: Any
    s: Any
    Vt: Any
    n_passes: int
    method: str
    err_est: float
    rel_err_est: float
    err_lower: float = math.nan
    err_fail_prob: float = math.nan
    n_passes_err: int = 0
    n_iter: int = 0
    n_oversamples: int = 0
    n_err_probes: int = 0
    n_err_iter: int = 0
    krylov_blocks: int | None = None
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"
    shape: tuple[int, int] = (0, 0)
    k: int = 0
    seed: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-serialisable summary (singular values as a list, vectors by shape only)."""
        s = np.asarray(to_numpy(self.s), dtype=np.float64)
        return {
            "method": self.method,
            "k": int(self.k),
            "shape": [int(self.shape[0]), int(self.shape[1])],
            "dtype": self.dtype,
            "backend": self.backend,
            "device": self.device,
            "n_passes": int(self.n_passes),
            "n_passes_err": int(self.n_passes_err),
            "n_iter": int(self.n_iter),
            "n_oversamples": int(self.n_oversamples),
            "krylov_blocks": None if self.krylov_blocks is None else int(self.krylov_blocks),
            "seed": self.seed,
            "s": [float(v) for v in s],
            "err_est": to_jsonable(float(self.err_est)),
            "rel_err_est": to_jsonable(float(self.rel_err_est)),
            "err_lower": to_jsonable(float(self.err_lower)),
            "err_fail_prob": to_jsonable(float(self.err_fail_prob)),
            "n_err_probes": int(self.n_err_probes),
            "n_err_iter": int(self.n_err_iter),
            "U_shape": [int(d) for d in self.U.shape],
            "Vt_shape": [int(d) for d in self.Vt.shape],
            "notes": list(self.notes),
        }


def auto_n_iter(k: int, shape: tuple[int, int], method: str = "hmt") -> int:
    """Number of power iterations / extra Krylov blocks ``q`` used for ``n_iter="auto"``.

    ``hmt``: scikit-learn's rule (its issue #5299, tuned for PCA), ``7`` if
    ``k < 0.1 min(shape)`` else ``4``: ``2q + 2 = 16`` (or 10) passes.

    ``block_krylov``: ``4`` if ``k < 0.1 min(shape)`` else ``2`` (10 or 6 passes). The
    Krylov space contains the HMT range and its best polynomial filter of degree ``2q + 1``
    separates ``σ_k`` from ``σ_{l+1}`` like a monomial of degree about ``(2q + 1)²``
    (Musco & Musco 2015, Chebyshev argument), so fewer passes already beat HMT's 16:
    measured at n = 4096, k = 128, p = 10, top-128 singular values of a 1/i spectrum to
    6e-9 relative error with q = 4, against 1e-2 for HMT with q = 7; on fast decay
    (exp(-i/16)) 3e-15 against 3e-11.
    """
    if method == "block_krylov":
        return 4 if k < 0.1 * min(shape) else 2
    return 7 if k < 0.1 * min(shape) else 4


# --------------------------------------------------------------------------------------
# backends: small set of array operations in the rows layout
# --------------------------------------------------------------------------------------
_CONTROLLER: Any = None


def _one_blas_thread():
    """Context limiting BLAS/LAPACK to one thread (a no-op without ``threadpoolctl``).

    The factorisations of tall-skinny and small blocks (getrf, potrf, trsm, geqrf, gesdd of
    an l-column matrix) gain little from threads, and a threaded OpenBLAS collapses when
    the cores are oversubscribed: measured on the 2-core development machine with two other
    busy processes, potrf of 138 x 138 took 156 ms with 2 threads against 0.08 ms with one,
    gesdd of 1242 x 1104 6.2 s against 0.8 s. The large products (the passes over ``M``) keep
    all threads.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            _CONTROLLER = False
        else:
            _CONTROLLER = ThreadpoolController()
    if _CONTROLLER is False:
        return contextlib.nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")


class _NumpyBackend:
    name = "numpy"
    device = "cpu"

    def __init__(self, dtype):
        import scipy.linalg as sla
        from scipy.linalg import blas, lapack

        self.dtype = np.dtype(dtype)
        self.eps = float(np.finfo(self.dtype).eps)
        self._sla = sla
        self._getrf = lapack.get_lapack_funcs(("getrf",), dtype=self.dtype)[0]
        self._potrf = lapack.get_lapack_funcs(("potrf",), dtype=self.dtype)[0]
        self._trsm = blas.get_blas_funcs(("trsm",), dtype=self.dtype)[0]
        self._perm: np.ndarray | None = None

    # conversions -------------------------------------------------------------------
    def asarray(self, a):
        return np.ascontiguousarray(np.asarray(a), dtype=self.dtype)

    def to_numpy(self, a) -> np.ndarray:
        return a

    def empty(self, shape):
        return np.empty(shape, dtype=self.dtype)

    def zeros(self, shape):
        return np.zeros(shape, dtype=self.dtype)

    # reductions returning Python floats -------------------------------------------
    def isfinite(self, a) -> bool:
        return bool(np.isfinite(a).all())

    def maxabs(self, a) -> float:
        return float(np.max(np.abs(a))) if a.size else 0.0

    def fro(self, a) -> float:
        return float(np.linalg.norm(a))

    def absdiag_min(self, r) -> float:
        return float(np.min(np.abs(np.diagonal(r))))

    # factorisations on rows blocks --------------------------------------------------
    def renorm_rows(self, xt):
        """Rows spanning the same space as ``xt``, re-normalised between power iterations:
        ``P L`` of its LU factorisation (HMT §4.5)."""
        return self.lu_rows(xt)

    def lu_rows(self, xt):
        """Rows of ``P L`` where ``xt.T = P L U`` (``xt`` is destroyed)."""
        from fastinv.kernels.rsvd import _pl_rows

        with _one_blas_thread():
            lu, piv, info = self._getrf(xt.T, overwrite_a=True)
        lut = lu.T  # a view of xt's memory (getrf worked in place on the F-ordered view)
        if self._perm is None or self._perm.shape[0] != lut.shape[1]:
            self._perm = np.empty(lut.shape[1], dtype=np.int64)
        out = np.empty_like(lut)
        _pl_rows(lut, piv, self._perm, out)
        return out

    def orth_rows(self, xt):
        """``xt.T = Q R`` with orthonormal ``Q``; returns ``(Q.T, R)`` (``xt`` may be lost).

        Cholesky-QR2 (two Gram–Cholesky–triangular-solve sweeps, all BLAS-3, about a third
        of the cost of Householder QR on tall blocks) when the block is well enough
        conditioned for it (second Gram matrix within 0.1 of the identity); Householder
        QR (LAPACK geqrf/orgqr) otherwise, which also covers rank-deficient blocks.
        """
        with _one_blas_thread():
            return self._orth_rows(xt)

    def _orth_rows(self, xt):
        l = xt.shape[0]
        g = xt @ xt.T
        r1, info = self._potrf(g, lower=False, clean=True, overwrite_a=True)
        if info == 0 and np.isfinite(r1).all():
            q1 = self._trsm(1.0, r1, xt.T, side=1, lower=False)  # X R1^-1, new array
            g2 = q1.T @ q1
            if np.max(np.abs(g2 - np.eye(l, dtype=self.dtype))) < 0.1:
                r2, info2 = self._potrf(g2, lower=False, clean=True, overwrite_a=True)
                if info2 == 0:
                    q = self._trsm(1.0, r2, q1, side=1, lower=False, overwrite_b=True)
                    return q.T, r2 @ r1
        q, r = self._sla.qr(xt.T, mode="economic", overwrite_a=True, check_finite=False)
        return q.T, r

    def svd(self, a):
        """Thin SVD ``a = U diag(s) Vt`` (gesdd, falling back to gesvd); ``a`` may be lost."""
        with _one_blas_thread():
            return self._svd(a)

    def _svd(self, a):
        try:
            return self._sla.svd(
                a, full_matrices=False, overwrite_a=False, check_finite=False,
                lapack_driver="gesdd",
            )  # fmt: skip
        except np.linalg.LinAlgError:  # pragma: no cover - gesdd convergence failure
            return self._sla.svd(
                a, full_matrices=False, overwrite_a=True, check_finite=False,
                lapack_driver="gesvd",
            )  # fmt: skip

    def flip(self, ut, vt):
        """Make the largest-|.| entry of every left singular vector positive (in place)."""
        if ut.shape[0] == 0:
            return
        idx = np.argmax(np.abs(ut), axis=1)
        sg = np.sign(ut[np.arange(ut.shape[0]), idx])
        sg[sg == 0] = 1
        ut *= sg[:, None]
        vt *= sg[:, None]


class _TorchBackend:
    name = "torch"

    def __init__(self, dtype, device):
        import torch

        self.torch = torch
        self.dtype = np.dtype(dtype)
        self.tdtype = torch.float32 if self.dtype == np.float32 else torch.float64
        self.eps = float(np.finfo(self.dtype).eps)
        self.tdevice = torch.device(device)
        self.device = str(self.tdevice)

    def asarray(self, a):
        t = self.torch
        if isinstance(a, t.Tensor):
            return a.detach().to(device=self.tdevice, dtype=self.tdtype).contiguous()
        return t.from_numpy(np.ascontiguousarray(a)).to(device=self.tdevice, dtype=self.tdtype)

    def to_numpy(self, a) -> np.ndarray:
        return a.detach().cpu().numpy()

    def empty(self, shape):
        return self.torch.empty(shape, dtype=self.tdtype, device=self.tdevice)

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.tdtype, device=self.tdevice)

    def isfinite(self, a) -> bool:
        return bool(self.torch.isfinite(a).all())

    def maxabs(self, a) -> float:
        return float(a.abs().max()) if a.numel() else 0.0

    def fro(self, a) -> float:
        return float(self.torch.linalg.norm(a))

    def absdiag_min(self, r) -> float:
        return float(r.diagonal().abs().min())

    def renorm_rows(self, xt):
        """As the NumPy backend's (LU) on the CPU. On CUDA one Cholesky-QR sweep (``R⁻ᵀ X``
        with ``X Xᵀ = RᵀR``: two GEMM-sized steps, no host round trip for pivots), which keeps
        the span as LU does; LU where the Gram matrix is not numerically positive definite."""
        if self.tdevice.type == "cpu":
            return self.lu_rows(xt)
        q = _cholqr_rows(self.torch, xt)
        return self.lu_rows(xt) if q is None else q

    def lu_rows(self, xt):
        t = self.torch
        l, n = xt.shape
        lu, piv = t.linalg.lu_factor(xt.T)
        low = t.tril(lu, diagonal=-1)
        low.diagonal().fill_(1.0)
        perm = _perm_from_pivots(piv.cpu().numpy().astype(np.int64) - 1, n)
        out = t.empty((l, n), dtype=self.tdtype, device=self.tdevice)
        out[:, t.from_numpy(perm).to(self.tdevice)] = low.T
        return out

    def orth_rows(self, xt):
        t = self.torch
        l = xt.shape[0]
        g = xt @ xt.T
        r1, info = t.linalg.cholesky_ex(g, upper=True)
        if int(info) == 0 and bool(t.isfinite(r1).all()):
            q1t = t.linalg.solve_triangular(r1.T, xt, upper=False)
            g2 = q1t @ q1t.T
            eye = t.eye(l, dtype=self.tdtype, device=self.tdevice)
            if float((g2 - eye).abs().max()) < 0.1:
                r2, info2 = t.linalg.cholesky_ex(g2, upper=True)
                if int(info2) == 0:
                    qt = t.linalg.solve_triangular(r2.T, q1t, upper=False)
                    return qt, r2 @ r1
        q, r = t.linalg.qr(xt.T, mode="reduced")
        return q.T.contiguous(), r

    def svd(self, a):
        """Thin SVD; a tall block goes through QR first and the SVD of its small R factor
        (cuSOLVER's SVD of an (n, l) block is much slower than geqrf plus an (l, l) SVD)."""
        t = self.torch
        m, n = a.shape
        if m >= 2 * n and n > 0:
            q, r = t.linalg.qr(a, mode="reduced")
            u, s, vh = t.linalg.svd(r, full_matrices=False)
            return q @ u, s, vh
        return t.linalg.svd(a, full_matrices=False)

    def flip(self, ut, vt):
        t = self.torch
        if ut.shape[0] == 0:
            return
        idx = t.argmax(ut.abs(), dim=1)
        sg = t.sign(ut.gather(1, idx[:, None]))[:, 0]
        sg[sg == 0] = 1
        ut *= sg[:, None]
        vt *= sg[:, None]


def _cholqr_rows(torch, xt):
    """One Cholesky-QR sweep on the rows of ``xt`` (l, n): ``R⁻ᵀ xt`` with ``xt xtᵀ = RᵀR``,
    rows spanning the same space, orthonormal up to κ(xt)² ε; None when the block is too
    close to rank-deficient for that (a Cholesky pivot below 100 √ε times the largest, i.e.
    κ(xt) ≳ 1 / (100 √ε), or a failed factorisation)."""
    r, info = torch.linalg.cholesky_ex(xt @ xt.T, upper=True)
    d = r.diagonal()
    tol = 100 * math.sqrt(torch.finfo(xt.dtype).eps)
    if int(info) != 0 or not bool(d.min() > tol * d.max()):
        return None
    return torch.linalg.solve_triangular(r.T, xt, upper=False)


def _perm_from_pivots(piv: np.ndarray, n: int) -> np.ndarray:
    """Row permutation from LAPACK's 0-based interchange sequence: (P L)[perm[i]] = L[i]."""
    perm = np.arange(n, dtype=np.int64)
    for i, p in enumerate(piv):
        perm[i], perm[p] = perm[p], perm[i]
    return perm


# --------------------------------------------------------------------------------------
# operators: products in the rows layout, pass counting, checks
# --------------------------------------------------------------------------------------
class _DenseOp:
    """``mv(Xt) = (M X)ᵀ = Xt Mᵀ``, ``rmv(Yt) = (Mᵀ Y)ᵀ = Yt M`` for a stored matrix."""

    def __init__(self, m, be):
        self.M = m
        self.be = be
        self.shape = (int(m.shape[0]), int(m.shape[1]))
        self.passes = 0
        self._checked = False

    def mv(self, xt):
        self.passes += 1
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            y = xt @ self.M.T
        self._check(y)
        return y

    def rmv(self, yt):
        self.passes += 1
        with np.errstate(over="ignore", invalid="ignore"):
            z = yt @ self.M
        self._check(z)
        return z

    def _check(self, y):
        # A NaN/Inf anywhere in M reaches the first product (every entry of M meets a
        # nonzero Gaussian weight), so checking the (l, m) product replaces a full scan of M.
        if self._checked:
            return
        self._checked = True
        if not self.be.isfinite(y):
            check_finite(to_numpy(self.M), "M")  # raises, naming the first bad entry
            raise FastinvError(
                "M @ X overflowed to Inf although M is finite; rescale M (divide by its "
                "largest absolute entry) before calling rsvd"
            )


class _FuncOp:
    """Matrix-free operator from user callables ``matvec(X) = M X``, ``rmatvec(Y) = Mᵀ Y``."""

    def __init__(self, matvec, rmatvec, shape, be):
        self.matvec = matvec
        self.rmatvec = rmatvec
        self.shape = shape
        self.be = be
        self.passes = 0

    def mv(self, xt):
        self.passes += 1
        return self._call(self.matvec, "matvec", xt, self.shape[0])

    def rmv(self, yt):
        self.passes += 1
        return self._call(self.rmatvec, "rmatvec", yt, self.shape[1])

    def _call(self, f, name, xt, n_out):
        n_cols = int(xt.shape[0])
        res = f(xt.T)
        shp = tuple(getattr(res, "shape", ()))
        if shp != (n_out, n_cols):
            raise FastinvError(
                f"{name} returned shape {shp} for an input of shape {tuple(xt.T.shape)}; it "
                f"must return shape ({n_out}, {n_cols}) (matvec(X) = M @ X, rmatvec(Y) = "
                "M.T @ Y, both acting on blocks of column vectors)"
            )
        if isinstance(self.be, _NumpyBackend):
            res = to_numpy(res)
            if not np.issubdtype(res.dtype, np.number) or np.iscomplexobj(res):
                raise FastinvError(f"{name} must return real numbers, got dtype {res.dtype}")
            out = np.ascontiguousarray(res.T, dtype=self.be.dtype)
        else:
            out = self.be.asarray(res).T.contiguous()
        if not self.be.isfinite(out):
            raise FastinvError(
                f"{name} returned NaN or Inf values; check the operator (and its input "
                "scaling) so that it maps finite blocks to finite blocks"
            )
        return out


# --------------------------------------------------------------------------------------
# algorithms (backend-generic, rows layout)
# --------------------------------------------------------------------------------------
def _hmt_range(op, be, omt, q: int):
    """HMT Alg. 4.4 with re-normalisation between products (LU; Cholesky-QR on CUDA):
    orthonormal rows ``Qt`` spanning ``((M Mᵀ)^q M Ω)ᵀ``."""
    yt = op.mv(omt)
    for _ in range(q):
        zt = op.rmv(be.renorm_rows(yt))
        yt = op.mv(be.renorm_rows(zt))
    qt, _ = be.orth_rows(yt)
    return qt


def _project_svd(op, be, qt, k: int):
    """Rayleigh–Ritz on the rows ``qt``: ``B = Qᵀ M = W Σ Zᵀ`` by one pass and a small SVD;
    returns (Ut (k, m), s (k,), Vt (k, n))."""
    bt = op.rmv(qt)  # (l, n) = Qᵀ M
    x, sv, yht = be.svd(bt.T)  # Bᵀ = X diag(s) Yhᵀ  =>  B = Yh diag(s) Xᵀ,  U = Q Yh
    ut = yht[:k] @ qt
    vt = x[:, :k].T
    return ut, sv[:k], vt.copy() if isinstance(vt, np.ndarray) else vt.contiguous()


def _orth_against(be, wt, basis, tol: float):
    """Orthonormalise the rows block ``wt`` against orthonormal rows ``basis``.

    Returns ``(Qt, C, R, ok)`` with ``wt.T = basis.T @ C + Qt.T @ R`` (to rounding), ``Qt``
    orthonormal rows orthogonal to ``basis`` when ``ok``. Classical Gram–Schmidt applied
    twice ("twice is enough"), then a third, checked sweep when the block lost most of its
    norm (heavy cancellation: numerically exhausted Krylov directions).
    """
    if basis is None or basis.shape[0] == 0:
        qt, r = be.orth_rows(wt)
        return qt, None, r, True
    norm0 = be.fro(wt)
    c = basis @ wt.T
    wt = wt - c.T @ basis
    c2 = basis @ wt.T
    wt -= c2.T @ basis
    c += c2
    qt, r = be.orth_rows(wt)
    ok = True
    if not be.absdiag_min(r) > 1e-3 * norm0 / math.sqrt(wt.shape[0]):
        d = basis @ qt.T
        if be.maxabs(d) > tol:
            qt -= d.T @ basis
            c += d @ r
            qt, r3 = be.orth_rows(qt)
            r = r3 @ r
            ok = be.maxabs(basis @ qt.T) <= tol
    return qt, c, r, ok


@dataclass
class _KrylovBasis:
    """Left blocks ``qall`` (``used`` of them), right blocks ``pall`` and the coefficients
    ``g`` with ``Mᵀ Q_j = Σ_{i≤j+1} P_i G_ij``; ``explicit`` when the right basis ran out
    and the Rayleigh–Ritz step needs one explicit pass."""

    qall: Any
    pall: Any
    g: Any
    l: int
    used: int
    explicit: bool


def _krylov_basis(op, be, omt, q: int, notes: list[str]) -> _KrylovBasis:
    """Randomized block Krylov (Musco & Musco 2015) by block Golub–Kahan–Lanczos: ``q + 1``
    left blocks, each orthonormalised against the ones before."""
    l, n = omt.shape
    m = op.shape[0]
    nb = q + 1
    tol = 100.0 * math.sqrt(max(m, n)) * be.eps
    p0, _ = be.orth_rows(omt.copy() if isinstance(omt, np.ndarray) else omt.clone())
    pall = be.empty(((nb + 1) * l, n))
    pall[:l] = p0
    qall = be.empty((nb * l, m))
    g = be.zeros(((nb + 1) * l, nb * l))
    kb = _KrylovBasis(qall, pall, g, l, used=0, explicit=False)
    for j in range(nb):
        yt = op.mv(pall[j * l : (j + 1) * l])
        qt, _, _, ok = _orth_against(be, yt, qall[: j * l] if j else None, tol)
        if not ok:
            notes.append(f"Krylov space numerically exhausted at block {j}; stopped early")
            break
        qall[j * l : (j + 1) * l] = qt
        wt = op.rmv(qt)
        pt, c, r, ok = _orth_against(be, wt, pall[: (j + 1) * l], tol)
        kb.used = j + 1
        if not ok:
            notes.append(
                f"right Krylov basis exhausted at block {j}; Rayleigh-Ritz by one explicit pass"
            )
            kb.explicit = True
            break
        g[: (j + 1) * l, j * l : (j + 1) * l] = c
        g[(j + 1) * l : (j + 2) * l, j * l : (j + 1) * l] = r
        pall[(j + 1) * l : (j + 2) * l] = pt
    return kb


def _krylov_ritz(op, be, kb: _KrylovBasis, k: int):
    """Ritz vectors of the Krylov space: from the SVD of the small matrix ``G``
    ((s+1) l × s l) since ``Qᵀ M = Gᵀ Pᵀ``, or by one explicit pass; (Ut, s, Vt)."""
    l, used = kb.l, kb.used
    if kb.explicit:
        return _project_svd(op, be, kb.qall[: used * l], k)
    gu = kb.g[: (used + 1) * l, : used * l]
    x, sv, yht = be.svd(gu)  # Qᵀ M = Guᵀ Pᵀ = Yh diag(s) Xᵀ Pᵀ
    ut = yht[:k] @ kb.qall[: used * l]
    vt = x[:, :k].T @ kb.pall[: (used + 1) * l]
    return ut, sv[:k], vt.copy() if isinstance(vt, np.ndarray) else vt.contiguous()


class _ErrorEstimate(NamedTuple):
    """The a-posteriori error fields of :class:`RSVDResult`."""

    err_est: float
    err_lower: float
    err_fail_prob: float
    n_passes_err: int
    n_err_probes: int
    n_err_iter: int


_NO_ESTIMATE = _ErrorEstimate(math.nan, math.nan, math.nan, 0, 0, 0)


def _estimate_error(op, be, ut, s, vt, rng, r: int, t: int) -> _ErrorEstimate:
    """Upper estimate and lower bound of ``‖E‖₂``, ``E = M − U diag(s) Vt``, from ``r``
    Gaussian probes and ``t`` power steps on ``E``."""
    n = op.shape[1]
    p0 = op.passes
    w = be.asarray(rng.standard_normal((r, n), dtype=be.dtype))

    def e_mv(xt):
        return op.mv(xt) - ((xt @ vt.T) * s) @ ut

    def e_rmv(yt):
        return op.rmv(yt) - ((yt @ ut.T) * s) @ vt

    yt = e_mv(w)
    xt = w
    logscale = np.zeros(r)
    for _ in range(t):
        xt = e_rmv(yt)
        nx = np.linalg.norm(be.to_numpy(xt).astype(np.float64), axis=1)
        nx[nx == 0] = 1.0
        logscale += np.log(nx)
        xt = xt / be.asarray(nx.astype(be.dtype))[:, None]
        yt = e_mv(xt)
    yh = be.to_numpy(yt).astype(np.float64)
    xh = be.to_numpy(xt).astype(np.float64)
    ny = np.linalg.norm(yh, axis=1)
    with np.errstate(divide="ignore"):
        logbeta = np.log(ny) + logscale
    mx = float(np.max(logbeta))
    if not math.isfinite(mx):  # E is exactly zero on every probe
        err_est = 0.0
    else:
        err_est = math.exp((mx + math.log(ALPHA * math.sqrt(2.0 / math.pi))) / (2 * t + 1))
    lower = _ritz_lower_bound(yh, xh, ny)
    return _ErrorEstimate(err_est, lower, ALPHA ** (-r), op.passes - p0, r, t)


def _ritz_lower_bound(yh: np.ndarray, xh: np.ndarray, ny: np.ndarray) -> float:
    """max over z of ``‖E X z‖ / ‖X z‖`` (generalised Rayleigh quotient), ``Y = E X``."""
    lower = float(np.max(ny / np.maximum(np.linalg.norm(xh, axis=1), 1e-300)))
    try:
        import scipy.linalg as sla

        ev = sla.eigh(yh @ yh.T, xh @ xh.T, eigvals_only=True, check_finite=False)
        lower = max(lower, math.sqrt(max(float(ev[-1]), 0.0)))
    except (np.linalg.LinAlgError, ValueError):  # probes numerically dependent
        pass
    return lower


# --------------------------------------------------------------------------------------
# rsvd: checks, backend choice, the run
# --------------------------------------------------------------------------------------
@dataclass
class _Plan:
    """The checked sizes of one rsvd call."""

    k: int
    l: int  # block size k + p, at most min(m, n)
    q: int  # power iterations (hmt) or extra Krylov blocks
    method: str  # the method that runs (block_krylov falls back to hmt when it cannot fit)
    n_err_probes: int
    n_err_iter: int
    notes: list[str]


def _plan(method: str, shape, k, n_oversamples, n_iter, n_err_probes, n_err_iter) -> _Plan:
    """Check the integer arguments against ``shape`` and fit the Krylov bases."""
    m, n = shape
    kmax = min(m, n)
    k = check_int(k, "k", lo=1, hi=kmax)
    p = check_int(n_oversamples, "n_oversamples", lo=0)
    if isinstance(n_iter, str):
        if n_iter != "auto":
            raise fail("n_iter", "a non-negative integer or 'auto'", n_iter)
        q = auto_n_iter(k, shape, method)
    else:
        q = check_int(n_iter, "n_iter", lo=0)
    r = check_int(n_err_probes, "n_err_probes", lo=1)
    t = check_int(n_err_iter, "n_err_iter", lo=0)
    plan = _Plan(k, min(k + p, kmax), q, method, r, t, notes=[])
    if method == "block_krylov":
        _fit_krylov(plan, m, n)
    return plan


def _fit_krylov(plan: _Plan, m: int, n: int) -> None:
    """Cap ``q`` so that the Krylov bases fit: ``(q + 2) l <= n`` and ``(q + 1) l <= m``;
    run hmt when not even ``q = 1`` fits."""
    q_fit = min(n // plan.l - 2, m // plan.l - 1)
    if q_fit >= plan.q:
        return
    if q_fit >= 1:
        plan.notes.append(f"n_iter reduced from {plan.q} to {q_fit} so that the Krylov bases fit")
        plan.q = q_fit
    else:
        plan.notes.append("block size too large for a Krylov basis (2l > n); ran hmt")
        plan.method = "hmt"


def _make_rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        seed = check_int(seed, "seed", lo=0)
    except FastinvError:
        raise fail("seed", "a non-negative integer or a numpy.random.Generator", seed) from None
    return np.random.default_rng(seed)


def _work_dtype(source, dtype) -> np.dtype:
    """The working precision: ``dtype`` when given, else that of the source, float32 or
    float64."""
    return float_dtype(source if dtype is None else dtype)


def _torch_source_dtype(M):
    return np.float32 if dtype_name(M.dtype) == "float32" else np.float64


def _backend(dt, device):
    """NumPy/SciPy without ``device``, torch on it otherwise."""
    return _NumpyBackend(dt) if device is None else _TorchBackend(dt, resolve_device(device))


def _setup(M, matvec, rmatvec, shape, dtype, device):
    """Choose backend and operator; returns (op, be, out_kind) with out_kind the kind of
    arrays the caller gets back ("numpy" or "torch")."""
    if M is None:
        return _matrix_free(matvec, rmatvec, shape, dtype, device)
    if matvec is not None or rmatvec is not None or shape is not None:
        raise FastinvError("give either M or matvec/rmatvec/shape, not both")
    if is_torch(M):
        be, mm, out_kind = _torch_matrix(M, dtype, device)
    else:
        be, mm, out_kind = _numpy_matrix(M, dtype, device)
    m, n = int(mm.shape[0]), int(mm.shape[1])
    if m < 1 or n < 1:
        raise FastinvError(f"M must have at least one row and one column, got shape {(m, n)}")
    return _DenseOp(mm, be), be, out_kind


def _matrix_free(matvec, rmatvec, shape, dtype, device):
    if matvec is None or rmatvec is None or shape is None:
        raise FastinvError(
            "give either M or all of matvec, rmatvec and shape=(m, n) for a matrix-free operator"
        )
    if not (callable(matvec) and callable(rmatvec)):
        raise FastinvError("matvec and rmatvec must be callables mapping blocks to blocks")
    try:
        m, n = (int(shape[0]), int(shape[1]))
        bad = len(shape) != 2
    except (TypeError, ValueError, IndexError):
        bad = True
    if bad or m < 1 or n < 1:
        raise fail("shape", "a pair of positive integers (m, n)", shape)
    be = _backend(_work_dtype(np.float64, dtype), device)
    return _FuncOp(matvec, rmatvec, (m, n), be), be, "numpy" if device is None else "torch"


def _check_torch_matrix(M) -> None:
    if M.ndim != 2:
        raise FastinvError(f"M must be a 2-D array, got shape {tuple(M.shape)}")
    if M.is_complex() or str(M.dtype) == "torch.bool":
        raise FastinvError(f"M must hold real numbers, got dtype {M.dtype}")


def _torch_matrix(M, dtype, device):
    """(backend, matrix, out_kind) for a torch tensor: torch on its device or ``device``."""
    _check_torch_matrix(M)
    dt = _work_dtype(_torch_source_dtype(M), dtype)
    be = _TorchBackend(dt, M.device if device is None else resolve_device(device))
    return be, be.asarray(M), "torch"


def _numpy_matrix(M, dtype, device):
    """(backend, matrix, out_kind) for an array: NumPy (no copy when it is usable as it is),
    or torch on ``device``."""
    a = check_2d(M, "M")
    dt = _work_dtype(a.dtype, dtype)
    if device is not None:
        be = _backend(dt, device)
        return be, be.asarray(a), "numpy"
    usable = a.dtype == dt and (a.flags.c_contiguous or a.flags.f_contiguous)
    return _NumpyBackend(dt), a if usable else np.ascontiguousarray(a, dtype=dt), "numpy"


def _blas_threads(be, shape, l: int):
    """One BLAS thread for small problems (a pass below ~2^25 multiply-adds, about a
    millisecond on one core): threads only add synchronisation there."""
    small = isinstance(be, _NumpyBackend) and shape[0] * shape[1] * l <= 2**25
    return _one_blas_thread() if small else contextlib.nullcontext()


def _factorize(op, be, omt, plan: _Plan):
    """Range finder, then projection and small SVD: (Ut, s, Vt, Krylov blocks or None)."""
    if plan.method == "hmt":
        return (*_project_svd(op, be, _hmt_range(op, be, omt, plan.q), plan.k), None)
    kb = _krylov_basis(op, be, omt, plan.q, plan.notes)
    return (*_krylov_ritz(op, be, kb, plan.k), kb.used)


def _deliver(be, ut, s, vt, numpy_out: bool):
    """``(U, s, Vt)`` with ``U = Utᵀ`` C-contiguous; NumPy arrays when ``numpy_out``."""
    u = ut.T
    u = np.ascontiguousarray(u) if isinstance(u, np.ndarray) else u.contiguous()
    if numpy_out and not isinstance(u, np.ndarray):
        u, s, vt = be.to_numpy(u), be.to_numpy(s), be.to_numpy(vt)
    return u, s, vt


def _relative(err: float, s0: float) -> float:
    return err / s0 if s0 > 0 else (0.0 if err == 0 else math.inf)


def rsvd(
    M=None,
    k: int = 10,
    *,
    n_oversamples: int = 10,
    n_iter: int | str = "auto",
    method: str = "hmt",
    seed: int | np.random.Generator = 0,
    matvec: Callable | None = None,
    rmatvec: Callable | None = None,
    shape: tuple[int, int] | None = None,
    dtype=None,
    device=None,
    estimate_error: bool = True,
    n_err_probes: int = 5,
    n_err_iter: int = 2,
) -> RSVDResult:
    """Randomized truncated SVD ``M ≈ U diag(s) Vt`` of rank ``k``.

    Parameters
    ----------
    M : ndarray or torch.Tensor of shape (m, n), or None
        Dense matrix. NumPy input runs on NumPy/SciPy (unless ``device`` is given); a torch
        tensor runs through torch on its device (CUDA if it lives there). None for a
        matrix-free operator given by ``matvec``, ``rmatvec`` and ``shape``.
    k : int
        Rank, ``1 <= k <= min(m, n)``.
    n_oversamples : int, default 10
        Extra sample vectors ``p``; the block size is ``l = min(k + p, min(m, n))``.
    n_iter : int or "auto", default "auto"
        Power iterations ``q`` (``hmt``) or extra Krylov blocks (``block_krylov``); both make
        ``2q + 2`` passes. ``"auto"``: :func:`auto_n_iter` (``hmt``: 7 if
        ``k < 0.1 min(m, n)`` else 4, scikit-learn's rule; ``block_krylov``: 4 else 2).
        Block Krylov caps ``q`` so that the bases fit:
        ``(q + 2) l <= n`` and ``(q + 1) l <= m``; when not even ``q = 1`` fits it runs
        ``hmt``, and ``method`` in the result says so.
    method : {"hmt", "block_krylov"}, default "hmt"
        See the module docstring.
    seed : int or numpy.random.Generator, default 0
        The Gaussian test matrix (and the error probes) come from
        ``numpy.random.default_rng(seed)`` on every backend.
    matvec, rmatvec : callable, optional
        ``matvec(X) = M @ X`` for X of shape (n, b) and ``rmatvec(Y) = M.T @ Y`` for Y of
        shape (m, b); NumPy arrays in and out, or torch tensors on ``device`` when
        ``device`` is given.
    shape : tuple (m, n), optional
        Shape of the matrix-free operator.
    dtype : dtype, optional
        Working precision: float32 stays float32, everything else is float64. Default: that
        of ``M`` (float64 for matrix-free operators).
    device : str or torch.device, optional
        Run through torch on this device ("cpu", "cuda", "cuda:1"). NumPy input then still
        gives NumPy output.
    estimate_error : bool, default True
        Compute ``err_est``/``err_lower`` (``2 n_err_iter + 1`` extra narrow passes).
    n_err_probes : int, default 5
        Gaussian probes ``r`` of the error estimate; ``err_est`` is an upper bound with
        probability at least ``1 - 10**(-r)``.
    n_err_iter : int, default 2
        Power steps ``t`` on the residual (tighter estimate; 0 gives HMT eq. 4.3 exactly).

    Returns
    -------
    RSVDResult
        ``U`` (m, k), ``s`` (k,), ``Vt`` (k, n), ``n_passes``, ``err_est``, …

    Raises
    ------
    FastinvError
        Bad ``k``/options, NaN or Inf in ``M`` (or returned by ``matvec``/``rmatvec``), a
        ``matvec``/``rmatvec`` returning the wrong shape.
    """
    method = check_choice(method, "method", _METHODS, normalize=False)
    op, be, out_kind = _setup(M, matvec, rmatvec, shape, dtype, device)
    plan = _plan(method, op.shape, k, n_oversamples, n_iter, n_err_probes, n_err_iter)
    rng = _make_rng(seed)
    omt = be.asarray(rng.standard_normal((plan.l, op.shape[1]), dtype=be.dtype))
    with _blas_threads(be, op.shape, plan.l):
        ut, sv, vt, blocks = _factorize(op, be, omt, plan)
        n_passes = op.passes
        be.flip(ut, vt)
        est = _NO_ESTIMATE
        if estimate_error:
            est = _estimate_error(op, be, ut, sv, vt, rng, plan.n_err_probes, plan.n_err_iter)
    rel = _relative(est.err_est, float(sv[0]))
    U, s, Vt = _deliver(be, ut, sv, vt, numpy_out=out_kind == "numpy")
    return RSVDResult(
        U=U, s=s, Vt=Vt, n_passes=n_passes, method=plan.method, rel_err_est=rel,
        n_iter=plan.q, n_oversamples=plan.l - plan.k, krylov_blocks=blocks, backend=be.name,
        device=be.device, dtype=str(be.dtype), shape=op.shape, k=plan.k,
        seed=None if isinstance(seed, np.random.Generator) else int(seed), notes=plan.notes,
        **est._asdict(),
    )  # fmt: skip


#: rsvd's keyword arguments and their defaults (svd_topk passes them on)
_RSVD_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(rsvd).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


# --------------------------------------------------------------------------------------
# svd_topk: full SVD or rsvd
# --------------------------------------------------------------------------------------
def svd_topk(
    M=None,
    k: int = 10,
    *,
    full_threshold: int = 1024,
    full_fraction: float = 0.25,
    **rsvd_options,
):
    """Top-``k`` singular triplets by full LAPACK SVD or by :func:`rsvd`, whichever fits.

    Full SVD (``scipy.linalg.svd``, gesdd with a gesvd fallback; ``torch.linalg.svd`` for
    torch input) when ``min(m, n) <= full_threshold`` or when the sample block
    ``k + n_oversamples`` exceeds ``full_fraction * min(m, n)`` (then the ``2q + 2`` passes of
    a randomized method cost about as much as the full factorisation and are less
    accurate); :func:`rsvd` with ``method`` otherwise and always for matrix-free operators.

    Parameters
    ----------
    M, k
        As in :func:`rsvd`.
    full_threshold : int, default 1024
    full_fraction : float, default 0.25
    **rsvd_options
        Keyword arguments of :func:`rsvd` (``method``, ``n_oversamples``, ``n_iter``,
        ``seed``, ``matvec``, ``rmatvec``, ``shape``, ``dtype``, ``device``,
        ``estimate_error``, ...); ``dtype`` and ``device`` apply to the full SVD too.

    Returns
    -------
    U : ndarray or torch.Tensor of shape (m, k)
    s : ndarray or torch.Tensor of shape (k,)
    Vt : ndarray or torch.Tensor of shape (k, n)
    info : dict
        ``{"method": "full" | "rsvd" | "block_krylov", "reason": str, ...}`` plus
        ``err_est`` (exact ``σ_{k+1}`` for the full SVD) and the :class:`RSVDResult` summary
        for the randomized methods.
    """
    unknown = [name for name in rsvd_options if name not in _RSVD_DEFAULTS]
    if unknown:
        raise TypeError(f"svd_topk() got an unexpected keyword argument {unknown[0]!r}")
    opts = {**_RSVD_DEFAULTS, **rsvd_options}
    check_choice(opts["method"], "method", _METHODS, normalize=False)
    full_threshold = check_int(full_threshold, "full_threshold", lo=0)
    reason = "matrix-free operator"
    if M is not None and all(opts[name] is None for name in ("matvec", "rmatvec", "shape")):
        M, k, reason, full = _choose_full(
            M, k, full_threshold, full_fraction, opts["n_oversamples"]
        )
        if full:
            return _full_topk(M, k, dtype=opts["dtype"], device=opts["device"], reason=reason)
    res = rsvd(M, k, **rsvd_options)
    info = res.to_dict()
    info.pop("s")
    info["method"] = "rsvd" if res.method == "hmt" else "block_krylov"
    info["algorithm"] = res.method
    info["reason"] = reason
    return res.U, res.s, res.Vt, info


def _choose_full(M, k, full_threshold: int, full_fraction: float, n_oversamples):
    """(M, k, reason, full): whether a dense ``M`` gets the full SVD, and why."""
    if not is_torch(M):
        M = check_2d(M, "M")
    shp = tuple(M.shape)
    k = check_int(k, "k", lo=1, hi=max(1, min(shp)) if len(shp) == 2 else None)
    if len(shp) != 2:
        raise FastinvError(f"M must be a 2-D array, got shape {shp}")
    mn = min(int(shp[0]), int(shp[1]))
    if mn <= full_threshold:
        return M, k, f"min(shape) = {mn} <= full_threshold = {full_threshold}", True
    if k + n_oversamples > full_fraction * mn:
        reason = (
            f"k + n_oversamples = {k + n_oversamples} > full_fraction * min(shape) = "
            f"{full_fraction * mn:g}"
        )
        return M, k, reason, True
    return M, k, f"min(shape) = {mn} > full_threshold = {full_threshold}, k small", False


def _full_svd_torch(M, k, dtype, device):
    """(backend, matrix, k, (u, s, vh)) by ``torch.linalg.svd``."""
    import torch

    source = _torch_source_dtype(M) if is_torch(M) else check_2d(M, "M").dtype
    dt = _work_dtype(source, dtype)
    dev = (M.device if is_torch(M) else "cpu") if device is None else resolve_device(device)
    be = _TorchBackend(dt, dev)
    a = be.asarray(M)
    k = check_int(k, "k", lo=1, hi=min(a.shape))
    if not be.isfinite(a):
        check_finite(be.to_numpy(a), "M")
    return be, a, k, torch.linalg.svd(a, full_matrices=False)


def _full_svd_numpy(M, k, dtype):
    """(backend, matrix, k, (u, s, vh)) by LAPACK on all BLAS threads."""
    a = check_2d(M, "M")
    dt = _work_dtype(a.dtype, dtype)
    a = np.asarray(a, dtype=dt)
    k = check_int(k, "k", lo=1, hi=min(a.shape))
    check_finite(a, "M")
    be = _NumpyBackend(dt)
    return be, a, k, be._svd(a)  # all BLAS threads: a large square factorisation


def _full_topk(M, k, *, dtype, device, reason):
    if is_torch(M) or device is not None:
        be, a, k, (u, s, vt) = _full_svd_torch(M, k, dtype, device)
        numpy_out = not is_torch(M)
    else:
        be, a, k, (u, s, vt) = _full_svd_numpy(M, k, dtype)
        numpy_out = True
    kmax = min(a.shape)
    err = float(s[k]) if k < kmax else 0.0
    ut = u[:, :k].T.clone() if is_torch(u) else u[:, :k].T.copy()
    vt = vt[:k].clone() if is_torch(vt) else vt[:k].copy()
    be.flip(ut, vt)
    U, s, Vt = _deliver(be, ut, s[:k], vt, numpy_out)
    s0 = float(s[0])
    info = {
        "method": "full",
        "reason": reason,
        "k": int(k),
        "shape": [int(d) for d in a.shape],
        "dtype": str(be.dtype),
        "backend": be.name,
        "device": be.device,
        "n_passes": 0,
        "err_est": err,
        "rel_err_est": err / s0 if s0 > 0 else 0.0,
        "err_exact": True,
    }
    return U, s, Vt, info
