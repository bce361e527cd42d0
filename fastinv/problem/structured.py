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

:meth:`LinearMap.spectral_basis` gives a :class:`SpectralBasis` with exactly that SVD's U, σ
and Vt: the coefficients ``Y U``, ``X V`` of row batches and the syntheses ``W Vt``, ``Z Uᵀ``
by FFT, DCT, the factors' SVDs or the diagonal, in O(b n log n) without forming U or V
(:class:`DenseBasis`: the same from explicit U, σ, Vt).
"""

from __future__ import annotations

import math

import numpy as np

from fastinv._validation import check_int, fail
from fastinv.errors import FastinvError
from fastinv.io import check_memory

__all__ = [
    "BASIS_CHUNK_BYTES",
    "DENSE_MAX_BYTES",
    "DenseBasis",
    "DenseMap",
    "DiagonalMap",
    "FuncMap",
    "KroneckerMap",
    "LinearMap",
    "PeriodicConvolution",
    "ReflectiveConvolution",
    "SparseMap",
    "SpectralBasis",
    "SubsampledMap",
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

    def torch_rows(self, X, adjoint: bool):
        """``X Aᵀ`` (``X A`` when ``adjoint``) for a torch tensor X (b, n) (or (b, m)) of
        float32 or float64, computed by torch on X's device in X's dtype, so differentiable
        (autograd and forward mode); None where the map has no torch path (the caller then
        goes through NumPy on the CPU)."""
        return None

    @property
    def has_torch(self) -> bool:
        """True when :meth:`torch_rows` computes (it is overridden)."""
        return type(self).torch_rows is not LinearMap.torch_rows

    def _torch_const(self, key, make, like):
        """A torch copy of the NumPy constant ``make()`` on ``like``'s device, real in
        ``like``'s dtype or complex of its precision; made once per (key, device, dtype)."""
        import torch

        cache = self.__dict__.setdefault("_torch_consts", {})
        ck = (key, like.device, like.dtype)
        if ck not in cache:
            a = np.asarray(make())
            if np.iscomplexobj(a):
                dt = torch.complex64 if like.dtype == torch.float32 else torch.complex128
            else:
                dt = like.dtype
            cache[ck] = torch.as_tensor(a).to(device=like.device, dtype=dt)
        return cache[ck]

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

    def spectral_basis(self) -> SpectralBasis | None:
        """The :class:`SpectralBasis` of ``exact_topk(None)`` without forming U or V (None
        for a map without an exact SVD)."""
        return None


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

    def torch_rows(self, X, adjoint):
        A = self._torch_const("A", lambda: self.A, X)
        return X @ A if adjoint else X @ A.T

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

    def __init__(
        self, matmat_rows, rmatmat_rows, shape, image_shape=None, structure=None, *, torch_rows=None
    ):
        super().__init__(shape, image_shape)
        self._mv = matmat_rows
        self._rmv = rmatmat_rows
        self._torch = torch_rows
        if structure is not None:
            self.structure = structure

    @property
    def has_torch(self) -> bool:
        return self._torch is not None

    def torch_rows(self, X, adjoint):
        """``torch_rows(X, adjoint)`` as given (None without one)."""
        if self._torch is None:
            return None
        out = self._torch(X, adjoint)
        n_out = self.shape[1] if adjoint else self.shape[0]
        if tuple(out.shape) != (X.shape[0], n_out):
            raise FastinvError(
                f"{'the adjoint of A' if adjoint else 'A'} returned shape {tuple(out.shape)} "
                f"for {X.shape[0]} input(s); expected ({X.shape[0]}, {n_out})"
            )
        return out

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

    def torch_rows(self, X, adjoint):
        import torch

        lam = self._torch_const(
            ("lam_r", adjoint), lambda: np.conj(self._lam_r) if adjoint else self._lam_r, X
        )
        Z = torch.fft.rfft2(X.reshape(X.shape[0], *self.grid))
        return torch.fft.irfft2(Z * lam, s=self.grid).reshape(X.shape[0], -1)

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

    def spectral_basis(self) -> SpectralBasis:
        return _FFTBasis(self)


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
        self._wrapped_r = np.fft.rfft2(wrapped)

    def _apply(self, X):
        import scipy.fft

        Z = scipy.fft.dctn(_image_rows(X, self.grid), type=2, norm="ortho", axes=(1, 2))
        Z *= self.lam
        return scipy.fft.idctn(Z, type=2, norm="ortho", axes=(1, 2)).reshape(X.shape[0], -1)

    def matmat_rows(self, X):
        return self._apply(X)

    def rmatmat_rows(self, Y):
        return self._apply(Y)  # A is symmetric

    def torch_rows(self, X, adjoint):
        """torch has no DCT: the circular convolution of the half-sample symmetric extension
        (2H × 2W, period 2H and 2W) with the PSF wrapped on that torus, cropped to H × W, is
        the reflective convolution (every offset reaches at most one reflection, rH < H)."""
        import torch

        H, W = self.grid
        img = X.reshape(X.shape[0], H, W)
        ext = torch.cat([img, img.flip(1)], dim=1)
        ext = torch.cat([ext, ext.flip(2)], dim=2)
        lam = self._torch_const("wrapped_r", lambda: self._wrapped_r, X)
        out = torch.fft.irfft2(torch.fft.rfft2(ext) * lam, s=(2 * H, 2 * W))
        return out[:, :H, :W].reshape(X.shape[0], -1)

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

    def spectral_basis(self) -> SpectralBasis:
        return _DCTBasis(self)


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

    def torch_rows(self, X, adjoint):
        """Linear convolution by FFT on the (H + kh - 1) × (W + kw - 1) grid, the 'same'
        window cropped (scipy's ``fftconvolve(..., 'same')`` for odd kernel sizes)."""
        import torch

        H, W = self.grid
        kh, kw = self.psf.shape
        s = (H + kh - 1, W + kw - 1)
        kernel = self.psf[::-1, ::-1] if adjoint else self.psf
        K = self._torch_const(("psf_r", adjoint), lambda: np.fft.rfft2(kernel, s=s), X)
        full = torch.fft.irfft2(torch.fft.rfft2(X.reshape(X.shape[0], H, W), s=s) * K, s=s)
        r, c = kh // 2, kw // 2
        return full[:, r : r + H, c : c + W].reshape(X.shape[0], -1)


class SubsampledMap(LinearMap):
    """``A = S B``: an image map ``B`` (n × n on an H × W grid) followed by keeping every
    ``factor``-th pixel in both directions, ``(A x)[i, j] = (B x)[f i, f j]``: a
    super-resolution forward model, m = (H / f)(W / f) < n. Rectangular, so it is audited
    against its pseudo-inverse; its spectra come from the randomized SVD on apply/adjoint
    (or a dense SVD at small n). For a circular convolution B with transfer function λ,
    A Aᵀ is a circular convolution on the coarse grid, with eigenvalues the mean of |λ|² over
    the f² frequencies that alias onto each coarse one (the test checks σ² against that)."""

    structure = "matrix-free"

    def __init__(self, inner: LinearMap, grid, factor: int, image_shape=None) -> None:
        H, W = (int(g) for g in grid)
        f = int(factor)
        if f < 1 or H % f or W % f:
            raise FastinvError(
                f"the subsampling factor {factor} must divide the image size {H} x {W}"
            )
        if inner.shape != (H * W, H * W):
            raise FastinvError(f"the inner map must be ({H * W}, {H * W}), got {inner.shape}")
        super().__init__(((H // f) * (W // f), H * W), image_shape)
        self.inner, self.grid, self.factor = inner, (H, W), f
        self.coarse = (H // f, W // f)

    def matmat_rows(self, X):
        Z = _image_rows(self.inner.matmat_rows(X), self.grid)
        return np.ascontiguousarray(Z[:, :: self.factor, :: self.factor]).reshape(X.shape[0], -1)

    def rmatmat_rows(self, Y):
        up = np.zeros((Y.shape[0], *self.grid))
        up[:, :: self.factor, :: self.factor] = _image_rows(Y, self.coarse)
        return self.inner.rmatmat_rows(up.reshape(Y.shape[0], -1))

    @property
    def has_torch(self) -> bool:
        return self.inner.has_torch

    def torch_rows(self, X, adjoint):
        import torch

        if not self.inner.has_torch:
            return None
        f = self.factor
        if not adjoint:
            Z = self.inner.torch_rows(X, False).reshape(X.shape[0], *self.grid)
            return Z[:, ::f, ::f].reshape(X.shape[0], -1)
        # zero-filled upsampling without writing in place (vmap and forward-mode AD): each
        # coarse pixel followed by f - 1 zeros along both axes
        h, w = self.coarse
        up = torch.nn.functional.pad(X.reshape(X.shape[0], h, 1, w, 1), (0, f - 1, 0, 0, 0, f - 1))
        return self.inner.torch_rows(up.reshape(X.shape[0], -1), True)


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

    def torch_rows(self, X, adjoint):
        Ar = self._torch_const("Ar", lambda: self.Ar, X)
        Ac = self._torch_const("Ac", lambda: self.Ac, X)
        img = X.reshape(X.shape[0], *self.grid)
        Z = Ar.T @ img @ Ac if adjoint else Ar @ img @ Ac.T
        return Z.reshape(X.shape[0], -1)

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

    def spectral_basis(self) -> SpectralBasis:
        return _KroneckerBasis(self)


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

    def torch_rows(self, X, adjoint):
        return X * self._torch_const("d", lambda: self.d, X)

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

    def spectral_basis(self) -> SpectralBasis:
        return _DiagonalBasis(self)


# --------------------------------------------------------------------------------------
# coefficients in the singular bases, without forming U or V
# --------------------------------------------------------------------------------------

#: the complex / float64 temporaries of one chunk of rows stay below about this many bytes
BASIS_CHUNK_BYTES = 8 * 2**20


class SpectralBasis:
    """Coefficients of row batches in A's singular bases ``A = U diag(sigma) Vt``, never forming
    U or V.

    ``U, sigma, Vt`` are exactly those of ``exact_topk(None)`` of the map (the same order, signs
    and phases), or those given to :class:`DenseBasis`. Every method takes a (b, ·) or a 1-D
    real array and returns float64 with the same number of dimensions, working in chunks of
    rows so that temporaries stay near :data:`BASIS_CHUNK_BYTES`.

    :meth:`left` and :meth:`right` take ``k`` to return only the first k coefficients (the
    k largest σ; cheaper than slicing); :meth:`synth_right` and :meth:`synth_left` accept
    k ≤ r columns, the coefficients of the first k vectors (the rest taken as zero).

    Attributes
    ----------
    sigma : ndarray (r,)
        All ``r = min(m, n)`` singular values, descending.
    shape : tuple (m, n)
    """

    def __init__(self, sigma: np.ndarray, shape) -> None:
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def r(self) -> int:
        """The number of singular triplets, ``min(m, n)``."""
        return int(self.sigma.size)

    def left(self, Y, k: int | None = None) -> np.ndarray:
        """``Y @ U[:, :k]`` (b, k) for Y (b, m); k defaults to r."""
        k = self._k(k)
        return self._rows(Y, self.shape[0], k, lambda C: self._coef(C, k, True), "left input")

    def right(self, X, k: int | None = None) -> np.ndarray:
        """``X @ V[:, :k]`` (b, k) for X (b, n), ``V = Vt.T``; k defaults to r."""
        k = self._k(k)
        return self._rows(X, self.shape[1], k, lambda C: self._coef(C, k, False), "right input")

    def synth_right(self, W) -> np.ndarray:
        """``W @ Vt[:k]`` (b, n) for W (b, k ≤ r): the inverse of :meth:`right` when r = n."""
        return self._synth_rows(W, self.shape[1], False, "synth_right input")

    def synth_left(self, Z) -> np.ndarray:
        """``Z @ U[:, :k].T`` (b, m) for Z (b, k ≤ r): the inverse of :meth:`left` when r = m."""
        return self._synth_rows(Z, self.shape[0], True, "synth_left input")

    # one chunk of rows, float64 (b, width), in the subclasses ------------------------
    def _coef(self, X, k: int, left: bool):  # pragma: no cover - abstract
        """The first k coefficients of the rows of X in U (left) or V."""
        raise NotImplementedError

    def _synth(self, W, left: bool):  # pragma: no cover - abstract
        """``W @ U[:, :k].T`` (left) or ``W @ Vt[:k]``, k = W.shape[1]."""
        raise NotImplementedError

    # checks and chunks ------------------------------------------------------------------
    def _k(self, k) -> int:
        return self.r if k is None else check_int(k, "k", lo=1, hi=self.r)

    def _synth_rows(self, W, width_out: int, left: bool, what: str) -> np.ndarray:
        arr = np.asarray(W)
        k = arr.shape[-1] if arr.ndim in (1, 2) else -1
        if not 1 <= k <= self.r:
            raise fail(what, f"of shape (k,) or (batch, k) with 1 <= k <= {self.r}", arr.shape)
        return self._rows(arr, k, width_out, lambda C: self._synth(C, left), what)

    def _rows(self, X, width: int, width_out: int, f, what: str) -> np.ndarray:
        arr = np.asarray(X)
        if arr.ndim not in (1, 2) or arr.shape[-1] != width:
            raise fail(what, f"of shape ({width},) or (batch, {width})", arr.shape)
        if arr.dtype.kind not in "biuf":
            raise fail(what, "a real array", arr.dtype)
        rows = np.asarray(arr.reshape(-1, width), dtype=np.float64)
        out = np.empty((rows.shape[0], width_out))
        step = max(1, int(BASIS_CHUNK_BYTES // (16 * max(self.shape))))
        for lo in range(0, rows.shape[0], step):
            out[lo : lo + step] = f(rows[lo : lo + step])
        return out[0] if arr.ndim == 1 else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, r={self.r})"


class DenseBasis(SpectralBasis):
    """The generic basis from explicit ``U`` (m, ≥ r), ``s`` (r,), ``Vt`` (≥ r, n): plain
    matrix products with the first r = len(s) columns of U and rows of Vt."""

    def __init__(self, U: np.ndarray, s: np.ndarray, Vt: np.ndarray) -> None:
        s = np.asarray(s, dtype=np.float64)
        r = s.size
        U = np.asarray(U, dtype=np.float64)
        Vt = np.asarray(Vt, dtype=np.float64)
        if s.ndim != 1 or U.ndim != 2 or Vt.ndim != 2 or U.shape[1] < r or Vt.shape[0] < r:
            raise fail("DenseBasis(U, s, Vt)", f"U (m, >= {r}), s ({r},) and Vt (>= {r}, n)",
                       (U.shape, s.shape, Vt.shape))  # fmt: skip
        super().__init__(s, (U.shape[0], Vt.shape[1]))
        self.U = np.ascontiguousarray(U[:, :r])
        self.Vt = np.ascontiguousarray(Vt[:r])

    def _coef(self, X, k, left):
        return X @ self.U[:, :k] if left else X @ self.Vt[:k].T

    def _synth(self, W, left):
        k = W.shape[1]
        return W @ self.U[:, :k].T if left else W @ self.Vt[:k]


class _ScatterBasis(SpectralBasis):
    """A basis whose coefficients are ``T(x)[order] * sign`` for an orthogonal transform T of
    the flattened H × W image (``sign`` is ±1 per vector, for U and for V); the syntheses
    scatter back into an image of coefficients and apply ``T⁻¹ = Tᵀ``."""

    def __init__(self, lm: LinearMap, grid) -> None:
        sig = lm.sigma_items()
        self.order = np.argsort(-sig, kind="stable")
        super().__init__(sig[self.order], lm.shape)
        self.grid = tuple(int(g) for g in grid)
        self.sign = {True: np.ones(self.r), False: np.ones(self.r)}

    def _fwd(self, X, left: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inv(self, Z, left: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def _coef(self, X, k, left):
        T = self._fwd(_image_rows(X, self.grid), left).reshape(X.shape[0], -1)
        return T[:, self.order[:k]] * self.sign[left][:k]

    def _synth(self, W, left):
        k = W.shape[1]
        Z = np.zeros((W.shape[0], self.r))
        Z[:, self.order[:k]] = W * self.sign[left][:k]
        return self._inv(_image_rows(Z, self.grid), left).reshape(W.shape[0], -1)


class _DCTBasis(_ScatterBasis):
    """:class:`ReflectiveConvolution`: V = the orthonormal 2-D DCT-II modes, U = V sign(λ)."""

    def __init__(self, lm: ReflectiveConvolution) -> None:
        super().__init__(lm, lm.grid)
        self.sign[True] = np.where(lm.lam.ravel()[self.order] < 0, -1.0, 1.0)

    def _fwd(self, X, left):
        import scipy.fft

        return scipy.fft.dctn(X, type=2, norm="ortho", axes=(1, 2))

    def _inv(self, Z, left):
        import scipy.fft

        return scipy.fft.idctn(Z, type=2, norm="ortho", axes=(1, 2))


class _DiagonalBasis(_ScatterBasis):
    """:class:`DiagonalMap`: V = unit vectors, U = V sign(d)."""

    def __init__(self, lm: DiagonalMap) -> None:
        super().__init__(lm, (1, lm.shape[0]))
        self.sign[True] = np.where(lm.d[self.order] < 0, -1.0, 1.0)

    def _fwd(self, X, left):
        return X

    def _inv(self, Z, left):
        return Z


class _KroneckerBasis(_ScatterBasis):
    """:class:`KroneckerMap`: item ``ir W + ic`` has ``U = Ur[:, ir] ⊗ Uc[:, ic]`` and ``V =
    Vr[:, ir] ⊗ Vc[:, ic]``, so the coefficients of an image X are ``Urᵀ X Uc`` (and
    ``Vrt X Vctᵀ``)."""

    def __init__(self, lm: KroneckerMap) -> None:
        super().__init__(lm, lm.grid)
        (Ur, _, Vrt), (Uc, _, Vct) = lm._factor_svds()
        self.factors = {True: (Ur, Uc), False: (Vrt.T, Vct.T)}

    def _fwd(self, X, left):
        Fr, Fc = self.factors[left]
        return Fr.T @ X @ Fc

    def _inv(self, Z, left):
        Fr, Fc = self.factors[left]
        return Fr @ Z @ Fc.T


class _FFTBasis(SpectralBasis):
    """:class:`PeriodicConvolution` through ``rfft2``.

    Item j (in descending order) is the mode of frequency k with weight ``w`` (``√(2/n)`` for a
    conjugate pair, ``1/√n`` for a self-conjugate k) and phase ``φ = arg λ_k`` (0 for V): the
    cosine ``w cos(θ_k + φ)`` or the sine ``w sin(θ_k + φ)``. With ``F_k = Σ x e^{-iθ_k}`` its
    coefficient is ``w Re(e^{-iφ} F_k)`` (cosine) or ``-w Im(e^{-iφ} F_k)`` (sine); F_k is read
    from the half spectrum of rfft2 at k, or conjugated at -k when k lies in the other half. So
    every coefficient is ``Re(d_j R[p_j])`` with R the rfft2 of the row, p_j a position of the
    half spectrum and d_j a complex factor; the syntheses scatter ``conj(Σ W_j d_j)`` back and
    take the Hermitian part before irfft2.
    """

    def __init__(self, lm: PeriodicConvolution) -> None:
        sig = lm.sigma_items()
        order = np.argsort(-sig, kind="stable")
        super().__init__(sig[order], lm.shape)
        self.grid = H, W = lm.grid
        idx, kind = (a[order] for a in lm._modes())
        k1, k2 = idx // W, idx % W
        Wh = W // 2 + 1
        other = k2 >= Wh  # read the half spectrum at -k, conjugated
        self.pos = np.where(other, ((-k1) % H) * Wh + (W - k2) % W, k1 * Wh + k2)
        n = self.shape[0]
        w = np.where(kind == 2, 1 / math.sqrt(n), math.sqrt(2 / n))
        rot = np.where(kind == 1, 1j, 1.0)  # Re(i z) = -Im z
        phi = np.angle(lm.lam.ravel()[idx])
        self.d = {}
        for left, ph in ((True, phi), (False, np.zeros_like(phi))):
            e = np.exp(-1j * ph)
            self.d[left] = np.where(other, np.conj(rot * e), rot * e) * w
        self.dh = {left: np.conj(d) / 2 for left, d in self.d.items()}  # for the syntheses
        self.sine = kind == 1  # cosines and sines each hit a half-spectrum position once
        self._edge_cols = [0] + ([W // 2] if W % 2 == 0 and W > 1 else [])

    def _coef(self, X, k, left):
        R = np.fft.rfft2(_image_rows(X, self.grid)).reshape(X.shape[0], -1)
        return (R[:, self.pos[:k]] * self.d[left][:k]).real

    def _synth(self, Wc, left):
        H, W = self.grid
        b, k = Wc.shape
        T = np.zeros((b, H * (W // 2 + 1)), dtype=complex)  # S / 2, S = conj(Σ W_j d_j)
        pos, dh, sine = self.pos[:k], self.dh[left][:k], self.sine[:k]
        for g in (np.flatnonzero(~sine), np.flatnonzero(sine)):  # positions unique in a group
            T[:, pos[g]] += Wc[:, g] * dh[g]
        T = T.reshape(b, H, W // 2 + 1)  # the Hermitian part of S on the half spectrum: S / 2
        neg = (-np.arange(H)) % H  # except in the columns holding both k and -k
        for col in self._edge_cols:
            T[:, :, col] = T[:, :, col] + np.conj(T[:, neg, col])
        return (np.fft.irfft2(T, s=self.grid) * (H * W)).reshape(b, -1)
