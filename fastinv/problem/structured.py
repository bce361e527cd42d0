"""Linear maps that need not be stored as a matrix, with exact SVDs where the structure gives one.

A :class:`LinearMap` acts on *rows*: ``matmat_rows(X) = X Aᵀ`` for X of shape (b, n) and
``rmatmat_rows(Y) = Y A`` for Y of shape (b, m), both in float64 NumPy. Images are flattened in
row-major (C) order: pixel (r, c) of an H × W image is entry ``r W + c``.

The structured maps (Hansen, Nagy and O'Leary, *Deblurring Images: Matrices, Spectra, and
Filtering*, SIAM 2006):

:class:`PeriodicConvolution`
    circular convolution with a kernel ``K`` (H, W): ``A[i, j] = K[(r_i - r_j) mod H,
    (c_i - c_j) mod W]``. Diagonalised by the 2-D FFT, ``λ = fft2(K)``; its singular values are
    ``|λ|``, and because ``λ(-k) = conj λ(k)`` they come in pairs whose real singular vectors are
    the cosine and sine modes ``√(2/n) cos θ_k``, ``√(2/n) sin θ_k`` (V) and the same modes shifted
    by the phase of ``λ_k`` (U); the self-conjugate frequencies (0 or H/2, 0 or W/2) give one
    real mode ``cos θ_k / √n`` each.
:class:`ReflectiveConvolution`
    convolution with reflective (half-sample symmetric) boundaries and a doubly symmetric PSF:
    ``A = Cᵀ diag(λ) C`` with C the orthonormal 2-D DCT-II, λ the real FFT of the PSF wrapped on
    a 2H × 2W torus.
:class:`ZeroConvolution`
    convolution with zero boundaries (no fast exact SVD: the randomized SVD on its products).
:class:`KroneckerMap`
    ``A = A_r ⊗ A_c`` (``A vec(X) = vec(A_r X A_cᵀ)``) with ``σ = σ_r ⊗ σ_c`` and singular
    vectors the Kronecker products of the factors'.
:class:`DiagonalMap`
    ``A = diag(d)`` (a pixel mask): ``σ = |d|``, vectors the unit vectors.

:class:`DenseMap`, :class:`SparseMap` and :class:`FuncMap` wrap a dense array, a
``scipy.sparse`` matrix and a pair of row-batch callables.

The exact SVD of a structured map is returned sorted by descending singular value (a stable
sort: ties keep the order of the frequencies); where singular values repeat, only the subspaces
are determined, and any orthonormal basis of them is as correct as another.
"""

from __future__ import annotations

import math

import numpy as np

from fastinv.errors import FastinvError
from fastinv.io import check_memory

__all__ = [
    "DENSE_MAX_BYTES",
    "DenseMap",
    "DiagonalMap",
    "FuncMap",
    "KroneckerMap",
    "LinearMap",
    "PeriodicConvolution",
    "ReflectiveConvolution",
    "SparseMap",
    "ZeroConvolution",
    "check_dense_size",
]

#: above this many bytes a dense (m, n) float64 matrix is refused (to_dense, full SVD)
DENSE_MAX_BYTES = 4 * 2**30


def check_dense_size(shape, what: str, *, max_bytes: float | None = None, copies: int = 1) -> None:
    """Refuse, before allocating, ``copies`` dense float64 matrices of ``shape`` that would not fit.

    The bound is ``max_bytes`` (default :data:`DENSE_MAX_BYTES`) and 80 % of the memory
    available now.
    """
    m, n = (int(d) for d in shape)
    need = 8.0 * m * n * copies
    limit = DENSE_MAX_BYTES if max_bytes is None else float(max_bytes)
    if need > limit:
        raise FastinvError(
            f"{what} would need a dense ({m}, {n}) float64 matrix: about {need / 2**30:.3g} GiB, "
            f"above the limit of {limit / 2**30:.3g} GiB; use the matrix-free interface "
            "(apply, adjoint, svd_topk) or a smaller n"
        )
    check_memory(need, what, suggestion="use the matrix-free interface or a smaller n")


# --------------------------------------------------------------------------------------
# the base class
# --------------------------------------------------------------------------------------


class LinearMap:
    """A linear map ``A`` of shape (m, n) acting on row batches (float64 NumPy in and out).

    Subclasses implement :meth:`matmat_rows` and :meth:`rmatmat_rows`; the structured ones also
    :meth:`sigma_items` and :meth:`vectors` (then ``exact_svd`` is True).
    """

    structure = "matrix-free"
    exact_svd = False

    def __init__(self, shape, image_shape=None) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)

    def matmat_rows(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """``X Aᵀ`` for X of shape (b, n)."""
        raise NotImplementedError

    def rmatmat_rows(self, Y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """``Y A`` for Y of shape (b, m)."""
        raise NotImplementedError

    def to_dense(self, *, block: int = 256) -> np.ndarray:
        """A as a dense (m, n) float64 array, from ``A = (I Aᵀ)ᵀ`` in blocks of rows of I."""
        m, n = self.shape
        out = np.empty((m, n))
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            eye = np.zeros((hi - lo, n))
            eye[np.arange(hi - lo), np.arange(lo, hi)] = 1.0
            out[:, lo:hi] = self.matmat_rows(eye).T
        return out

    # exact spectra (structured maps) --------------------------------------------------
    def sigma_items(self) -> np.ndarray:  # pragma: no cover - abstract
        """The min(m, n) singular values, unsorted, in the map's own item order."""
        raise NotImplementedError

    def vectors(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        """Left and right singular vectors (m, len), (n, len) of the given items."""
        raise NotImplementedError

    def exact_topk(self, k: int | None = None):
        """``(U, s, Vt)`` of the k largest singular values (all when k is None), exactly."""
        sig = self.sigma_items()
        order = np.argsort(-sig, kind="stable")
        if k is not None:
            order = order[:k]
        U, V = self.vectors(order)
        return U, sig[order], np.ascontiguousarray(V.T)


# --------------------------------------------------------------------------------------
# wrappers
# --------------------------------------------------------------------------------------


class DenseMap(LinearMap):
    """A dense float64 array (kept, not copied)."""

    structure = "dense"

    def __init__(self, A: np.ndarray, image_shape=None) -> None:
        super().__init__(A.shape, image_shape)
        self.A = A

    def matmat_rows(self, X):
        return X @ self.A.T

    def rmatmat_rows(self, Y):
        return Y @ self.A

    def to_dense(self, *, block: int = 256):
        return self.A


class SparseMap(LinearMap):
    """A ``scipy.sparse`` matrix (stored as CSR)."""

    structure = "sparse"

    def __init__(self, S, image_shape=None) -> None:
        import scipy.sparse

        super().__init__(S.shape, image_shape)
        self.S = scipy.sparse.csr_matrix(S, dtype=np.float64)

    def matmat_rows(self, X):
        return np.asarray((self.S @ X.T).T)

    def rmatmat_rows(self, Y):
        return np.asarray((self.S.T @ Y.T).T)

    def to_dense(self, *, block: int = 256):
        return self.S.toarray()


class FuncMap(LinearMap):
    """Row-batch callables ``matmat_rows(X) = X Aᵀ`` and ``rmatmat_rows(Y) = Y A``."""

    def __init__(self, matmat_rows, rmatmat_rows, shape, image_shape=None, structure=None):
        super().__init__(shape, image_shape)
        self._mv = matmat_rows
        self._rmv = rmatmat_rows
        if structure is not None:
            self.structure = structure

    def matmat_rows(self, X):
        return self._call(self._mv, X, self.shape[0], "A")

    def rmatmat_rows(self, Y):
        return self._call(self._rmv, Y, self.shape[1], "the adjoint of A")

    def _call(self, f, X, n_out, what):
        out = np.asarray(f(X), dtype=np.float64)
        if out.shape != (X.shape[0], n_out):
            raise FastinvError(
                f"{what} returned shape {out.shape} for {X.shape[0]} input(s); expected "
                f"({X.shape[0]}, {n_out}): check the operator's shape"
            )
        return out


# --------------------------------------------------------------------------------------
# convolutions
# --------------------------------------------------------------------------------------


def _grid(shape):
    H, W = shape
    return np.repeat(np.arange(H), W), np.tile(np.arange(W), H)


def _image_rows(X, shape):
    return X.reshape(X.shape[0], *shape)


class PeriodicConvolution(LinearMap):
    """Circular convolution with ``kernel`` (H, W): ``A[i, j] = kernel[Δr mod H, Δc mod W]``,
    ``Δ = (r_i - r_j, c_i - c_j)``. Exact SVD through the 2-D FFT (see the module docstring)."""

    structure = "fft2"
    exact_svd = True

    def __init__(self, kernel: np.ndarray, image_shape=None) -> None:
        kernel = np.asarray(kernel, dtype=np.float64)
        n = kernel.size
        super().__init__((n, n), image_shape)
        self.grid = kernel.shape
        self.kernel = kernel
        self.lam = np.fft.fft2(kernel)
        self._lam_r = np.fft.rfft2(kernel)

    def _conv(self, X, lam):
        Z = np.fft.rfft2(_image_rows(X, self.grid))
        return np.fft.irfft2(Z * lam, s=self.grid).reshape(X.shape[0], -1)

    def matmat_rows(self, X):
        return self._conv(X, self._lam_r)

    def rmatmat_rows(self, Y):
        return self._conv(Y, np.conj(self._lam_r))

    def _modes(self):
        """Frequencies (k1, k2) and kinds: 0 cosine, 1 sine (conjugate pairs), 2 self-conjugate."""
        H, W = self.grid
        k1, k2 = _grid(self.grid)
        flat = k1 * W + k2
        neg = ((-k1) % H) * W + (-k2) % W
        pair = flat < neg
        selfc = flat == neg
        idx = np.concatenate([flat[pair], flat[pair], flat[selfc]])
        kind = np.concatenate(
            [np.zeros(pair.sum(), int), np.ones(pair.sum(), int), np.full(selfc.sum(), 2)]
        )
        order = np.argsort(idx, kind="stable")  # items in frequency order: cos, sin, cos, ...
        return idx[order], kind[order]

    def sigma_items(self):
        idx, _ = self._modes()
        return np.abs(self.lam.ravel()[idx])

    def vectors(self, items):
        idx, kind = self._modes()
        idx, kind = idx[items], kind[items]
        H, W = self.grid
        r, c = _grid(self.grid)
        k1, k2 = idx // W, idx % W
        theta = 2 * np.pi * (np.outer(r, k1) / H + np.outer(c, k2) / W)  # (n, len)
        phi = np.angle(self.lam.ravel()[idx])
        n = self.shape[0]
        w = np.where(kind == 2, 1 / math.sqrt(n), math.sqrt(2 / n))
        sine = kind == 1
        V = np.where(sine, np.sin(theta), np.cos(theta)) * w
        theta += phi
        U = np.where(sine, np.sin(theta), np.cos(theta)) * w
        return U, V


class ReflectiveConvolution(LinearMap):
    """Convolution with reflective boundaries and a doubly symmetric PSF, diagonalised by the
    orthonormal 2-D DCT-II.

    ``psf`` (2 rH + 1, 2 rW + 1) holds the weights at offsets ``-rH..rH`` by ``-rW..rW`` with
    ``rH < H``, ``rW < W``; ``(A x)[r, c] = Σ_d psf(d) x[ρ_H(r - d_r), ρ_W(c - d_c)]`` with the
    reflection ``ρ_N(t) = -1 - t`` for t < 0 and ``2N - 1 - t`` for t ≥ N.
    """

    structure = "dct2"
    exact_svd = True

    def __init__(self, psf: np.ndarray, grid, image_shape=None) -> None:
        psf = np.asarray(psf, dtype=np.float64)
        H, W = (int(g) for g in grid)
        n = H * W
        super().__init__((n, n), image_shape)
        self.grid = (H, W)
        if not (
            np.allclose(psf, psf[::-1, :], rtol=0, atol=1e-14 * np.abs(psf).max())
            and np.allclose(psf, psf[:, ::-1], rtol=0, atol=1e-14 * np.abs(psf).max())
        ):
            raise FastinvError(
                "boundary='reflective' needs a doubly symmetric PSF (psf(-dr, dc) = psf(dr, dc) "
                "= psf(dr, -dc)); use boundary='periodic' or 'zero' for this PSF"
            )  # fmt: skip
        rH, rW = psf.shape[0] // 2, psf.shape[1] // 2
        wrapped = np.zeros((2 * H, 2 * W))
        dr = np.arange(-rH, rH + 1) % (2 * H)
        dc = np.arange(-rW, rW + 1) % (2 * W)
        np.add.at(wrapped, (dr[:, None], dc[None, :]), psf)
        self.lam = np.fft.fft2(wrapped).real[:H, :W].copy()

    def _apply(self, X):
        import scipy.fft

        Z = scipy.fft.dctn(_image_rows(X, self.grid), type=2, norm="ortho", axes=(1, 2))
        Z *= self.lam
        return scipy.fft.idctn(Z, type=2, norm="ortho", axes=(1, 2)).reshape(X.shape[0], -1)

    def matmat_rows(self, X):
        return self._apply(X)

    def rmatmat_rows(self, Y):
        return self._apply(Y)  # A is symmetric

    def sigma_items(self):
        return np.abs(self.lam.ravel())

    def vectors(self, items):
        H, W = self.grid
        k1, k2 = items // W, items % W
        r, c = _grid(self.grid)

        def dct_rows(k, t, N):  # orthonormal DCT-II basis vectors, one column per k
            v = np.cos(np.pi * np.outer(2 * t + 1, k) / (2 * N)) * math.sqrt(2 / N)
            return np.where(k == 0, v / math.sqrt(2), v)

        V = dct_rows(k1, r, H) * dct_rows(k2, c, W)
        sign = np.where(self.lam.ravel()[items] < 0, -1.0, 1.0)
        return V * sign, V


class ZeroConvolution(LinearMap):
    """Convolution with zero boundaries: ``(A x)[r, c] = Σ_d psf(d) x[r - d_r, c - d_c]`` over
    the pixels inside the image; ``psf`` as in :class:`ReflectiveConvolution` (odd sizes)."""

    structure = "matrix-free"

    def __init__(self, psf: np.ndarray, grid, image_shape=None) -> None:
        H, W = (int(g) for g in grid)
        super().__init__((H * W, H * W), image_shape)
        self.grid = (H, W)
        self.psf = _crop_centred(np.asarray(psf, dtype=np.float64))

    def _conv(self, X, kernel):
        import scipy.signal

        Z = scipy.signal.fftconvolve(_image_rows(X, self.grid), kernel[None], "same", axes=(1, 2))
        return Z.reshape(X.shape[0], -1)

    def matmat_rows(self, X):
        return self._conv(X, self.psf)

    def rmatmat_rows(self, Y):
        return self._conv(Y, self.psf[::-1, ::-1])


def _crop_centred(psf: np.ndarray) -> np.ndarray:
    """The smallest centred odd window of an odd-sized ``psf`` that holds all its non-zero
    entries (the same radius on opposite sides, so 'same' convolution is unchanged)."""
    (R, C), nz = (d // 2 for d in psf.shape), np.argwhere(psf != 0)
    if nz.size == 0:
        return psf[R : R + 1, C : C + 1]
    r, c = (int(v) for v in np.abs(nz - [R, C]).max(axis=0))
    return psf[R - r : R + r + 1, C - c : C + c + 1]


# --------------------------------------------------------------------------------------
# Kronecker products and diagonals
# --------------------------------------------------------------------------------------


class KroneckerMap(LinearMap):
    """``A = A_r ⊗ A_c`` for square dense factors: ``A vec(X) = vec(A_r X A_cᵀ)`` on H × W
    images (H = size of A_r, W = size of A_c, row-major vec)."""

    structure = "kronecker"
    exact_svd = True

    def __init__(self, Ar: np.ndarray, Ac: np.ndarray, image_shape=None) -> None:
        Ar = np.asarray(Ar, dtype=np.float64)
        Ac = np.asarray(Ac, dtype=np.float64)
        if Ar.ndim != 2 or Ac.ndim != 2 or Ar.shape[0] != Ar.shape[1] or Ac.shape[0] != Ac.shape[1]:
            raise FastinvError(
                f"a Kronecker operator needs square factors, got {Ar.shape} and {Ac.shape}"
            )
        n = Ar.shape[0] * Ac.shape[0]
        super().__init__((n, n), image_shape)
        self.grid = (Ar.shape[0], Ac.shape[0])
        self.Ar, self.Ac = Ar, Ac
        self._svds = None

    def _factor_svds(self):
        if self._svds is None:
            self._svds = (np.linalg.svd(self.Ar), np.linalg.svd(self.Ac))
        return self._svds

    def matmat_rows(self, X):
        Z = self.Ar @ _image_rows(X, self.grid) @ self.Ac.T
        return Z.reshape(X.shape[0], -1)

    def rmatmat_rows(self, Y):
        Z = self.Ar.T @ _image_rows(Y, self.grid) @ self.Ac
        return Z.reshape(Y.shape[0], -1)

    def sigma_items(self):
        (_, sr, _), (_, sc, _) = self._factor_svds()
        return np.outer(sr, sc).ravel()

    def vectors(self, items):
        (Ur, _, Vrt), (Uc, _, Vct) = self._factor_svds()
        W = self.grid[1]
        ir, ic = items // W, items % W
        n = self.shape[0]
        U = (Ur[:, ir][:, None, :] * Uc[:, ic][None, :, :]).reshape(n, -1)
        V = (Vrt[ir].T[:, None, :] * Vct[ic].T[None, :, :]).reshape(n, -1)
        return U, V


class DiagonalMap(LinearMap):
    """``A = diag(d)``: singular values ``|d|``, left vectors ``sign(d_i) e_i``, right ``e_i``."""

    structure = "diagonal"
    exact_svd = True

    def __init__(self, d: np.ndarray, image_shape=None) -> None:
        d = np.asarray(d, dtype=np.float64).ravel()
        super().__init__((d.size, d.size), image_shape)
        self.d = d

    def matmat_rows(self, X):
        return X * self.d

    def rmatmat_rows(self, Y):
        return Y * self.d

    def to_dense(self, *, block: int = 256):
        return np.diag(self.d)

    def sigma_items(self):
        return np.abs(self.d)

    def vectors(self, items):
        n = self.shape[0]
        V = np.zeros((n, len(items)))
        V[items, np.arange(len(items))] = 1.0
        sign = np.where(self.d[items] < 0, -1.0, 1.0)
        return V * sign, V
