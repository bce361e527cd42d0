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
C-ordered ``M`` (measured 52 ms against 59–71 ms for ``M @ X`` and ``M.T @ X`` at
n = 4096, l = 138 on the 2-core development machine), and ``Xt.T`` is exactly the
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
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastinv._device import float_dtype
from fastinv._validation import check_2d, check_finite
from fastinv.errors import FastinvError

__all__ = ["RSVDResult", "rsvd", "svd_topk", "auto_n_iter"]

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
        s = np.asarray(_to_numpy(self.s), dtype=np.float64)
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
            "err_est": _jfloat(self.err_est),
            "rel_err_est": _jfloat(self.rel_err_est),
            "err_lower": _jfloat(self.err_lower),
            "err_fail_prob": _jfloat(self.err_fail_prob),
            "n_err_probes": int(self.n_err_probes),
            "n_err_iter": int(self.n_err_iter),
            "U_shape": [int(d) for d in self.U.shape],
            "Vt_shape": [int(d) for d in self.Vt.shape],
            "notes": list(self.notes),
        }


def _jfloat(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _to_numpy(a):
    if _is_torch(a):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _is_torch(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


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
            check_finite(_to_numpy(self.M), "M")  # raises, naming the first bad entry
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
            res = np.asarray(_to_numpy(res))
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
def _hmt(op, be, omt, k: int, q: int):
    """HMT Alg. 4.4 with LU re-normalisation; returns (Ut (k, m), s (k,), Vt (k, n))."""
    yt = op.mv(omt)
    for _ in range(q):
        zt = op.rmv(be.lu_rows(yt))
        yt = op.mv(be.lu_rows(zt))
    qt, _ = be.orth_rows(yt)
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


def _block_krylov(op, be, omt, k: int, q: int, notes: list[str]):
    """Randomized block Krylov (Musco & Musco 2015) by block Golub–Kahan–Lanczos.

    Left blocks ``Q_j`` (orthonormal, spanning ``K``) and right blocks ``P_j`` with
    ``Mᵀ Q_j = Σ_{i≤j+1} P_i G_ij``; then ``Qᵀ M = Gᵀ Pᵀ`` and the Ritz vectors come from
    the SVD of the small matrix ``G`` ((s+1) l × s l). Returns (Ut, s, Vt, blocks_used).
    """
    l, n = omt.shape
    m = op.shape[0]
    nb = q + 1
    tol = 100.0 * math.sqrt(max(m, n)) * be.eps
    p0, _ = be.orth_rows(omt.copy() if isinstance(omt, np.ndarray) else omt.clone())
    pall = be.empty(((nb + 1) * l, n))
    pall[:l] = p0
    qall = be.empty((nb * l, m))
    g = be.zeros(((nb + 1) * l, nb * l))
    used = 0
    explicit = False
    for j in range(nb):
        yt = op.mv(pall[j * l : (j + 1) * l])
        qt, _, _, ok = _orth_against(be, yt, qall[: j * l] if j else None, tol)
        if not ok:
            notes.append(f"Krylov space numerically exhausted at block {j}; stopped early")
            break
        qall[j * l : (j + 1) * l] = qt
        wt = op.rmv(qt)
        pt, c, r, ok = _orth_against(be, wt, pall[: (j + 1) * l], tol)
        if not ok:
            notes.append(
                f"right Krylov basis exhausted at block {j}; Rayleigh-Ritz by one explicit pass"
            )
            used = j + 1
            explicit = True
            break
        g[: (j + 1) * l, j * l : (j + 1) * l] = c
        g[(j + 1) * l : (j + 2) * l, j * l : (j + 1) * l] = r
        pall[(j + 1) * l : (j + 2) * l] = pt
        used = j + 1
    if explicit:
        qu = qall[: used * l]
        bt = op.rmv(qu)  # (used l, n) = Qᵀ M
        x, sv, yht = be.svd(bt.T)
        ut = yht[:k] @ qu
        vt = x[:, :k].T
    else:
        gu = g[: (used + 1) * l, : used * l]
        x, sv, yht = be.svd(gu)  # Qᵀ M = Guᵀ Pᵀ = Yh diag(s) Xᵀ Pᵀ
        ut = yht[:k] @ qall[: used * l]
        vt = x[:, :k].T @ pall[: (used + 1) * l]
    vt = vt.copy() if isinstance(vt, np.ndarray) else vt.contiguous()
    return ut, sv[:k], vt, used


def _estimate_error(op, be, ut, s, vt, rng, r: int, t: int):
    """(err_est, err_lower, passes) for ``E = M − U diag(s) Vt`` by probes and power steps."""
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
    # lower bound: max over z of ||E X z|| / ||X z|| (generalised Rayleigh quotient)
    lower = float(np.max(ny / np.maximum(np.linalg.norm(xh, axis=1), 1e-300)))
    try:
        import scipy.linalg as sla

        ev = sla.eigh(yh @ yh.T, xh @ xh.T, eigvals_only=True, check_finite=False)
        lower = max(lower, math.sqrt(max(float(ev[-1]), 0.0)))
    except (np.linalg.LinAlgError, ValueError):  # probes numerically dependent
        pass
    return err_est, lower, op.passes - p0


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def _check_int(x, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise FastinvError(f"{name} must be an integer, got {x!r}")
    x = int(x)
    if x < lo or (hi is not None and x > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise FastinvError(f"{name} must be {rng}, got {x}")
    return x


def _make_rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise FastinvError(
            f"seed must be a non-negative integer or a numpy.random.Generator, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _setup(M, matvec, rmatvec, shape, dtype, device):
    """Choose backend and operator; returns (op, be, out_kind, shape)."""
    if M is None:
        if matvec is None or rmatvec is None or shape is None:
            raise FastinvError(
                "give either M or all of matvec, rmatvec and shape=(m, n) for a matrix-free "
                "operator"
            )
        if not (callable(matvec) and callable(rmatvec)):
            raise FastinvError("matvec and rmatvec must be callables mapping blocks to blocks")
        try:
            m, n = (int(shape[0]), int(shape[1]))
            bad = len(shape) != 2
        except (TypeError, ValueError, IndexError):
            bad = True
        if bad or m < 1 or n < 1:
            raise FastinvError(f"shape must be a pair of positive integers (m, n), got {shape!r}")
        dt = float_dtype(np.float64 if dtype is None else dtype)
        be = _NumpyBackend(dt) if device is None else _TorchBackend(dt, _torch_device(device))
        out_kind = "numpy" if device is None else "torch"
        return _FuncOp(matvec, rmatvec, (m, n), be), be, out_kind, (m, n)
    if matvec is not None or rmatvec is not None or shape is not None:
        raise FastinvError("give either M or matvec/rmatvec/shape, not both")
    if _is_torch(M):
        if M.ndim != 2:
            raise FastinvError(f"M must be a 2-D array, got shape {tuple(M.shape)}")
        if M.is_complex() or str(M.dtype) == "torch.bool":
            raise FastinvError(f"M must hold real numbers, got dtype {M.dtype}")
        src = str(M.dtype).replace("torch.", "")
        dt = float_dtype(np.float32 if src == "float32" else np.float64)
        if dtype is not None:
            dt = float_dtype(dtype)
        dev = M.device if device is None else _torch_device(device)
        be = _TorchBackend(dt, dev)
        mm = be.asarray(M)
        out_kind = "torch"
    else:
        a = _check_2d_m(M)
        dt = float_dtype(a.dtype if dtype is None else dtype)
        if device is None:
            be = _NumpyBackend(dt)
            mm = a if a.dtype == dt and (a.flags.c_contiguous or a.flags.f_contiguous) else None
            if mm is None:
                mm = np.ascontiguousarray(a, dtype=dt)
        else:
            be = _TorchBackend(dt, _torch_device(device))
            mm = be.asarray(a)
        out_kind = "numpy"
    m, n = int(mm.shape[0]), int(mm.shape[1])
    if m < 1 or n < 1:
        raise FastinvError(f"M must have at least one row and one column, got shape {(m, n)}")
    return _DenseOp(mm, be), be, out_kind, (m, n)


def _check_2d_m(M) -> np.ndarray:
    return check_2d(M, "M")


def _torch_device(device):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise FastinvError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FastinvError("device='cuda' was asked for but no CUDA device is available")
    return dev


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
    if method not in _METHODS:
        raise FastinvError(f"method must be one of {_METHODS}, got {method!r}")
    op, be, out_kind, (m, n) = _setup(M, matvec, rmatvec, shape, dtype, device)
    kmax = min(m, n)
    k = _check_int(k, "k", 1, kmax)
    p = _check_int(n_oversamples, "n_oversamples", 0)
    if isinstance(n_iter, str):
        if n_iter != "auto":
            raise FastinvError(f"n_iter must be a non-negative integer or 'auto', got {n_iter!r}")
        q = auto_n_iter(k, (m, n), method)
    else:
        q = _check_int(n_iter, "n_iter", 0)
    r_probes = _check_int(n_err_probes, "n_err_probes", 1)
    t_err = _check_int(n_err_iter, "n_err_iter", 0)
    rng = _make_rng(seed)
    l = min(k + p, kmax)
    notes: list[str] = []
    used_method = method
    if method == "block_krylov":
        q_fit = min(n // l - 2, m // l - 1)
        if q_fit < q:
            if q_fit >= 1:
                notes.append(f"n_iter reduced from {q} to {q_fit} so that the Krylov bases fit")
                q = q_fit
            else:
                notes.append("block size too large for a Krylov basis (2l > n); ran hmt")
                used_method = "hmt"

    omt = be.asarray(rng.standard_normal((l, n), dtype=be.dtype))
    blocks = None
    # small problems (a pass below ~2^25 multiply-adds, about a millisecond on one core)
    # run single-threaded: threads only add synchronisation there
    small = isinstance(be, _NumpyBackend) and m * n * l <= 2**25
    with _one_blas_thread() if small else contextlib.nullcontext():
        if used_method == "hmt":
            ut, sv, vt = _hmt(op, be, omt, k, q)
        else:
            ut, sv, vt, blocks = _block_krylov(op, be, omt, k, q, notes)
        n_passes = op.passes
        be.flip(ut, vt)
        if estimate_error:
            err, lower, passes_err = _estimate_error(op, be, ut, sv, vt, rng, r_probes, t_err)
            fail = ALPHA ** (-r_probes)
        else:
            err, lower, passes_err, fail = math.nan, math.nan, 0, math.nan
    s0 = float(sv[0]) if k else math.nan
    rel = err / s0 if s0 > 0 else (0.0 if err == 0 else math.inf)

    u = ut.T
    if isinstance(u, np.ndarray):
        u = np.ascontiguousarray(u)
    else:
        u = u.contiguous()
    if out_kind == "numpy" and not isinstance(u, np.ndarray):
        u, sv, vt = be.to_numpy(u), be.to_numpy(sv), be.to_numpy(vt)
    return RSVDResult(
        U=u,
        s=sv,
        Vt=vt,
        n_passes=n_passes,
        method=used_method,
        err_est=float(err),
        rel_err_est=float(rel),
        err_lower=float(lower),
        err_fail_prob=float(fail),
        n_passes_err=passes_err,
        n_iter=q,
        n_oversamples=l - k,
        n_err_probes=r_probes if estimate_error else 0,
        n_err_iter=t_err if estimate_error else 0,
        krylov_blocks=blocks,
        backend=be.name,
        device=be.device,
        dtype=str(be.dtype),
        shape=(m, n),
        k=k,
        seed=int(seed) if not isinstance(seed, np.random.Generator) else None,
        notes=notes,
    )


def svd_topk(
    M=None,
    k: int = 10,
    *,
    full_threshold: int = 1024,
    full_fraction: float = 0.25,
    method: str = "hmt",
    n_oversamples: int = 10,
    n_iter: int | str = "auto",
    seed: int | np.random.Generator = 0,
    matvec: Callable | None = None,
    rmatvec: Callable | None = None,
    shape: tuple[int, int] | None = None,
    dtype=None,
    device=None,
    estimate_error: bool = True,
):
    """Top-``k`` singular triplets by full LAPACK SVD or by :func:`rsvd`, whichever fits.

    Full SVD (``scipy.linalg.svd``, gesdd with a gesvd fallback; ``torch.linalg.svd`` for
    torch input) when ``min(m, n) <= full_threshold`` or when the sample block
    ``k + n_oversamples`` exceeds ``full_fraction * min(m, n)`` (then the ``2q + 2`` passes of
    a randomized method cost about as much as the full factorisation and are less
    accurate); :func:`rsvd` with ``method`` otherwise and always for matrix-free operators.

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
    if method not in _METHODS:
        raise FastinvError(f"method must be one of {_METHODS}, got {method!r}")
    full_threshold = _check_int(full_threshold, "full_threshold", 0)
    if M is not None and matvec is None and rmatvec is None and shape is None:
        if not _is_torch(M):
            M = _check_2d_m(M)
        shp = tuple(M.shape)
        k = _check_int(k, "k", 1, max(1, min(shp)) if len(shp) == 2 else None)
        if len(shp) != 2:
            raise FastinvError(f"M must be a 2-D array, got shape {shp}")
        mn = min(int(shp[0]), int(shp[1]))
        reason = None
        if mn <= full_threshold:
            reason = f"min(shape) = {mn} <= full_threshold = {full_threshold}"
        elif k + n_oversamples > full_fraction * mn:
            reason = (
                f"k + n_oversamples = {k + n_oversamples} > full_fraction * min(shape) = "
                f"{full_fraction * mn:g}"
            )
        if reason is not None:
            return _full_topk(M, k, dtype=dtype, device=device, reason=reason)
        reason = f"min(shape) = {mn} > full_threshold = {full_threshold}, k small"
    else:
        reason = "matrix-free operator"
    res = rsvd(
        M, k, n_oversamples=n_oversamples, n_iter=n_iter, method=method, seed=seed,
        matvec=matvec, rmatvec=rmatvec, shape=shape, dtype=dtype, device=device,
        estimate_error=estimate_error,
    )  # fmt: skip
    info = res.to_dict()
    info.pop("s")
    info["method"] = "rsvd" if res.method == "hmt" else "block_krylov"
    info["algorithm"] = res.method
    info["reason"] = reason
    return res.U, res.s, res.Vt, info


def _full_topk(M, k, *, dtype, device, reason):
    if _is_torch(M) or device is not None:
        import torch

        src_torch = _is_torch(M)
        if src_torch:
            dt = float_dtype(np.float32 if M.dtype == torch.float32 else np.float64)
        else:
            dt = float_dtype(_check_2d_m(M).dtype)
        if dtype is not None:
            dt = float_dtype(dtype)
        dev = (M.device if src_torch else "cpu") if device is None else _torch_device(device)
        be = _TorchBackend(dt, dev)
        a = be.asarray(M)
        kmax = min(a.shape)
        k = _check_int(k, "k", 1, kmax)
        if not be.isfinite(a):
            check_finite(be.to_numpy(a), "M")
        u, s, vt = torch.linalg.svd(a, full_matrices=False)
        out_np = not src_torch
    else:
        a = _check_2d_m(M)
        dt = float_dtype(a.dtype if dtype is None else dtype)
        a = np.asarray(a, dtype=dt)
        kmax = min(a.shape)
        k = _check_int(k, "k", 1, kmax)
        check_finite(a, "M")
        be = _NumpyBackend(dt)
        u, s, vt = be._svd(a)  # all BLAS threads: a large square factorisation
        out_np = True
    err = float(s[k]) if k < kmax else 0.0
    ut = u[:, :k].T.clone() if _is_torch(u) else u[:, :k].T.copy()
    vt = vt[:k].clone() if _is_torch(vt) else vt[:k].copy()
    be.flip(ut, vt)
    U, s, Vt = ut.T, s[:k], vt
    if out_np and _is_torch(U):
        U, s, Vt = be.to_numpy(U), be.to_numpy(s), be.to_numpy(Vt)
    if isinstance(U, np.ndarray):
        U = np.ascontiguousarray(U)
    else:
        U = U.contiguous()
    s0 = float(s[0])
    info = {
        "method": "full",
        "reason": reason,
        "k": int(k),
        "shape": [int(d) for d in a.shape],
        "dtype": str(np.dtype(dt)),
        "backend": be.name,
        "device": be.device,
        "n_passes": 0,
        "err_est": err,
        "rel_err_est": err / s0 if s0 > 0 else 0.0,
        "err_exact": True,
    }
    return U, s, Vt, info
