"""Signal priors: the distributions the training signals x are drawn from.

Every prior lives on the grid ``t_j = (j + 0.5) / n`` (j = 0 .. n-1) of [0, 1] and is sampled
by a Numba kernel (fastinv/kernels/priors.py) from a counter-based generator
(fastinv/kernels/rng.py): sample row ``i`` is a function of ``(seed, i)`` only, so a chunk
of rows ``start .. start + N`` can be drawn on its own, by any number of threads, and equals
the same rows of one big draw bit for bit.

Priors (``PRIORS`` lists them with their parameters and defaults):

``gaussian`` (scale s = 1)
    iid N(0, s^2) entries; mean 0, cov s^2 I.
``smooth`` (length_scale l = 0.05, scale s = 1)
    stationary Gaussian process with squared-exponential covariance
    k(d) = s^2 exp(-d^2 / (2 l^2)), sampled by circulant embedding: the kernel is wrapped
    onto a periodic grid of m >= 2n points (m doubled until the circulant's eigenvalues are
    nonnegative to 1e-13 of the largest, at most 64 n), eigenvalues below 1e-13 times the
    largest (negative ones included) are set to 0, and a sample is the first n points of a
    real Gaussian field with that spectrum. Only frequencies with a nonzero eigenvalue are
    drawn (``rank`` real coefficients per sample, about 100 for l = 0.05 whatever n is), and
    the field is synthesised either by one irfft of length m per sample (O(m log m)) or, when
    ``rank`` is small, as a product with the n x rank (cos, sin) basis through BLAS (O(n rank)
    per sample); :meth:`SmoothPrior.cov` is the exact covariance of what is sampled (the
    leading n x n block of the circulant with the modified eigenvalues), so an LMMSE built
    on it is exact. It differs from the SE kernel matrix by ``cov_error`` (in ``to_dict()``):
    about 1e-14 s^2 for the defaults, and at rounding level unless the length scale is so
    long that the embedding hits its 64 n cap (``min_eig_rel`` then shows what was clipped).
``piecewise_constant`` (rate = 5, scale s = 1)
    a jump in each of the n - 1 gaps between grid points with probability
    1 - exp(-rate / n), independently (a Poisson process of intensity ``rate`` seen on the
    grid, so about rate (n-1)/n jumps on [0, 1]); the first level and every new level are
    iid N(0, s^2). Mean 0 and cov exactly s^2 exp(-rate |t_i - t_j|).
``sparse`` (p = 0.05, scale s = 1)
    Bernoulli-Gaussian: each entry is nonzero with probability p, then N(0, s^2);
    mean 0, cov exactly p s^2 I.

Image priors (signals are H x W images flattened row-major, n = H W; ``image_shape`` (or
``shape``) = (H, W), default the square sqrt(n) x sqrt(n); the numerics and the exact
definitions are in fastinv/problem/image_priors.py):

``grf`` (image_shape, alpha = 3, k0 = 0.05, scale = 1, power = None)
    stationary Gaussian random field on the H x W torus with power spectrum
    P(k) ∝ (k0² + |k|²)^(-alpha/2) (k in cycles per pixel), normalised to pixel variance
    scale², or a given ``power`` ((H, W) array in ``numpy.fft`` order, or a callable of the
    frequency grids; used as given, times scale²). White noise from stream SIGNAL filtered by
    FFT; the covariance F* diag(P) F is exact (:meth:`GRFPrior.cov`), and
    :meth:`GRFPrior.power_spectrum` gives its eigenvalues without an n x n matrix.
``shapes`` (image_shape, disks = 4, rects = 4, radius_min/max = 0.05/0.2, size_min/max =
0.1/0.4, intensity_min/max = -1/1, background = 0)
    piecewise-constant images of rectangles and disks (uniforms of stream AUX); no closed
    form moments (``mean()`` and ``cov()`` are None: the audit uses sampled moments).
``images`` (images, image_shape)
    a user's own clean images ((N, H, W) or (N, n) array, or a .npy / .npz path); row i is
    the image picked by row i's first uniform of stream AUX. Mean and covariance (ddof 0) of
    the stack are exact for this distribution.

Random streams: stream 0 (SIGNAL) gives the Gaussian values of every prior, stream 1 (AUX)
the jump / support positions, stream 2 (NOISE) the measurement noise
(fastinv/problem/data.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from fastinv._validation import check_float, check_int, check_keys, check_seed
from fastinv.errors import FastinvError
from fastinv.problem.blocks import aligned_matmul, fft_block, row_block
from fastinv.problem.image_priors import (
    IMAGE_PRIORS,
    SHAPE_WORDS,
    check_image_params,
    circulant_cov,
    filter_rows,
    grf_spectrum,
    load_images,
    paint_shapes,
)

__all__ = [
    "EIG_RTOL",
    "MAX_EMBED_FACTOR",
    "PRIORS",
    "GRFPrior",
    "GaussianPrior",
    "ImagesPrior",
    "LowRank",
    "PiecewiseConstantPrior",
    "Prior",
    "ShapesPrior",
    "SmoothPrior",
    "SparsePrior",
    "as_seed",
    "list_priors",
    "make_prior",
]

#: eigenvalues of the smooth prior's circulant below this fraction of the largest are set to 0
EIG_RTOL = 1e-13
#: the circulant embedding grows to at most this many times n
MAX_EMBED_FACTOR = 64
#: the smooth prior synthesises through BLAS (n x rank basis) when
#: 2 n rank <= this * m log2(m) (flop counts weighted by speeds measured on an AMD EPYC core:
#: a K = 99 GEMM at ~45 GFLOP/s, an irfft of length 2048 plus fill and copy ~8.7 us)
_GEMM_VS_FFT = 17.0

PRIORS: dict[str, dict] = {
    "gaussian": {
        "description": "iid N(0, scale^2) entries (white noise)",
        "params": {"scale": 1.0},
    },
    "smooth": {
        "description": (
            "stationary Gaussian process on [0, 1], squared-exponential covariance "
            "scale^2 exp(-d^2 / (2 length_scale^2)), sampled exactly by circulant embedding"
        ),
        "params": {"length_scale": 0.05, "scale": 1.0},
    },
    "piecewise_constant": {
        "description": (
            "piecewise-constant signal: Poisson jumps (rate = expected number on [0, 1]) "
            "between iid N(0, scale^2) levels; cov scale^2 exp(-rate |t_i - t_j|)"
        ),
        "params": {"rate": 5.0, "scale": 1.0},
    },
    "sparse": {
        "description": "Bernoulli-Gaussian: each entry nonzero with probability p, N(0, scale^2)",
        "params": {"p": 0.05, "scale": 1.0},
    },
    **IMAGE_PRIORS,  # grf, shapes, images: fastinv/problem/image_priors.py
}


def as_seed(seed) -> np.uint64:
    """The uint64 key of the counter-based generator (signal and noise streams).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        An int in [0, 2**64), or a generator from which one 63-bit integer is drawn.

    Returns
    -------
    numpy.uint64
    """
    if isinstance(seed, np.random.Generator):
        return np.uint64(int(seed.integers(0, 2**63)))
    return np.uint64(check_seed(seed))


class LowRank(NamedTuple):
    """A prior whose samples are ``x = z @ factor`` from ``rank`` coefficients ``z``."""

    #: ndarray of shape (rank, n)
    factor: np.ndarray
    #: rows per BLAS call of the product ``z @ factor`` (the prior's own blocking)
    block: int


# ---------------------------------------------------------------------------------------
@dataclass
class Prior:
    """A distribution of signals x on the grid t_j = (j + 0.5)/n (base class).

    Subclasses implement :meth:`fill`; a prior that draws ``x = z F`` from few coefficients
    also implements ``_factor`` (F, or None) and :meth:`fill_coeffs`.

    Attributes
    ----------
    name : str
        key of :data:`PRIORS`.
    n : int
        signal length.
    params : dict
        all parameters, defaults filled in.
    """

    name: str
    n: int
    params: dict = field(default_factory=dict)

    def mean(self) -> np.ndarray:
        """Mean of x, ndarray of shape (n,) (zero for every built-in prior)."""
        return np.zeros(self.n)

    def cov(self) -> np.ndarray | None:
        """Exact covariance of x, ndarray of shape (n, n), or None when not available."""
        return None

    def sample(self, n_samples: int, *, seed=0, start: int = 0) -> np.ndarray:
        """Draw rows ``start .. start + n_samples`` of the sample sequence of ``seed``.

        Parameters
        ----------
        n_samples : int
            number of rows N >= 1.
        seed : int or numpy.random.Generator
            the key of the sequence.
        start : int
            global index of the first row (chunked generation).

        Returns
        -------
        ndarray of shape (N, n), float64
        """
        N = check_int(n_samples, "n_samples", lo=1)
        st = check_int(start, "start", lo=0)
        out = np.empty((N, self.n))
        self.fill(out, as_seed(seed), st)
        return out

    def fill(self, out: np.ndarray, seed: np.uint64, start: int, work=None) -> None:
        """Write rows ``start .. start + len(out)`` into ``out`` (float64, C order).

        ``seed`` is the key from :func:`as_seed`; ``work`` optional scratch from
        :meth:`workspace` (reused across chunks).
        """
        raise NotImplementedError

    def workspace(self, rows: int) -> np.ndarray | None:
        """Scratch that :meth:`fill` needs for ``rows`` rows (None: no scratch)."""
        return None

    def low_rank(self) -> LowRank | None:
        """The factor F when samples are ``x = z @ F`` with ``z`` the coefficients
        :meth:`fill_coeffs` draws (so ``A x = z @ (F Aᵀ)``: :func:`fastinv.generate` then
        skips the n x n product); None for priors not sampled that way."""
        F = self._factor()
        return None if F is None else LowRank(F, self._factor_block())

    def fill_coeffs(self, z: np.ndarray, seed: np.uint64, start: int) -> None:
        """Write the coefficients of rows ``start .. start + len(z)`` (only when
        :meth:`low_rank` is not None)."""
        raise NotImplementedError

    def _factor(self) -> np.ndarray | None:
        return None

    def _factor_block(self) -> int:
        return row_block(self.n)

    def to_dict(self) -> dict:
        """JSON-serialisable summary: name, n, params."""
        return {"name": self.name, "n": int(self.n), "params": dict(self.params)}


@dataclass
class GaussianPrior(Prior):
    def cov(self) -> np.ndarray:
        return self.params["scale"] ** 2 * np.eye(self.n)

    def fill(self, out, seed, start, work=None):
        from fastinv.kernels.priors import _gaussian_fill

        _gaussian_fill(out, seed, start, float(self.params["scale"]))


@dataclass
class SparsePrior(Prior):
    def cov(self) -> np.ndarray:
        return self.params["p"] * self.params["scale"] ** 2 * np.eye(self.n)

    def fill(self, out, seed, start, work=None):
        from fastinv.kernels.priors import _sparse_fill

        p = float(self.params["p"])
        inv = 0.0 if p == 1.0 else 1.0 / math.log1p(-p)
        _sparse_fill(out, seed, start, inv, float(self.params["scale"]))


@dataclass
class PiecewiseConstantPrior(Prior):
    def cov(self) -> np.ndarray:
        t = (np.arange(self.n) + 0.5) / self.n
        s2 = self.params["scale"] ** 2
        return s2 * np.exp(-self.params["rate"] * np.abs(t[:, None] - t[None, :]))

    def fill(self, out, seed, start, work=None):
        from fastinv.kernels.priors import _piecewise_fill

        rate = float(self.params["rate"])
        gap_scale = math.inf if rate == 0.0 else self.n / rate
        _piecewise_fill(out, seed, start, gap_scale, float(self.params["scale"]))


# ---------------------------------------------------------------------------------------
# the smooth prior: circulant embedding of the squared-exponential kernel
def _se_embedding(n: int, length_scale: float, scale: float):
    """Circulant embedding of the SE kernel on n grid points (spacing 1/n).

    Returns ``(m, lam)``: the even embedding size and the rfft eigenvalues (m//2 + 1,) of the
    circulant whose first column is k(min(k, m - k) / n), before clipping.
    """
    import scipy.fft

    def eig(m):
        k = np.arange(m)
        d = np.minimum(k, m - k) / n
        c = scale**2 * np.exp(-(d**2) / (2.0 * length_scale**2))
        return scipy.fft.rfft(c).real

    m = 2 * scipy.fft.next_fast_len(n, real=True)  # even, >= 2n
    lam = eig(m)
    while lam.min() < -EIG_RTOL * lam.max() and 2 * m <= MAX_EMBED_FACTOR * max(n, 1):
        m *= 2
        lam = eig(m)
    return m, lam


def _frequencies(lam: np.ndarray, m: int):
    """The drawn frequencies of the clipped spectrum ``lam``: ``(kidx, ck, endpoint)``.

    x_j = sum_k c_k (a_k cos(2 pi k j / m) + b_k sin(2 pi k j / m)), a_k, b_k ~ N(0, 1),
    c_k = sqrt(2 lam_k / m) inside, sqrt(lam_k / m) at k = 0 and k = m/2 (no b_k there).
    """
    kidx = np.flatnonzero(lam > 0.0)
    endpoint = (kidx == 0) | (kidx == m // 2)
    ck = np.sqrt(np.where(endpoint, 1.0, 2.0) * lam[kidx] / m)
    return kidx, ck, endpoint


def _gemm_basis(n: int, m: int, kidx, ck, endpoint) -> np.ndarray:
    """Basis (rank, n): rows cos/sin(2 pi k j / m) * c_k in the order the normals come."""
    j = np.arange(n, dtype=np.int64)
    rows = []
    for k, c, e in zip(kidx, ck, endpoint, strict=True):
        ang = 2.0 * np.pi * ((int(k) * j) % m) / m
        rows.append(c * np.cos(ang))
        if not e:
            rows.append(c * np.sin(ang))
    return np.ascontiguousarray(np.array(rows).reshape(-1, n))


@dataclass
class SmoothPrior(Prior):
    """Squared-exponential Gaussian process by circulant embedding (see module docstring)."""

    def __post_init__(self):
        n = self.n
        m, lam = _se_embedding(n, float(self.params["length_scale"]), float(self.params["scale"]))
        self.m = m
        self.min_eig_rel = float(lam.min() / lam.max())
        lam = np.where(lam > EIG_RTOL * lam.max(), lam, 0.0)
        self._lam = lam
        kidx, ck, endpoint = _frequencies(lam, m)
        self._kidx = kidx.astype(np.int64)
        # rfft coefficients: Z_k = (m/2) c_k (a_k - i b_k) inside, m c_k a_k at the endpoints
        self._wre = np.ascontiguousarray(np.where(endpoint, m, m / 2) * ck)
        self._wim = np.ascontiguousarray(np.where(endpoint, 0.0, m / 2 * ck))
        self.rank = int(np.sum(np.where(endpoint, 1, 2)))
        gemm_cost = 2.0 * n * self.rank
        self.method = "gemm" if gemm_cost <= _GEMM_VS_FFT * m * math.log2(m) else "fft"
        self._block = row_block(n)
        self._fft_block = fft_block(m)  # FFT path: rows per irfft batch, fixed for the prior
        self._Bt = _gemm_basis(n, m, kidx, ck, endpoint) if self.method == "gemm" else None
        self._cov = None

    def cov(self) -> np.ndarray:
        """Exact covariance of the samples: leading n x n block of the clipped circulant."""
        if self._cov is None:
            import scipy.linalg

            self._cov = scipy.linalg.toeplitz(self._cov_column())
        return self._cov.copy()

    def cov_error(self) -> float:
        """max |cov() - SE kernel matrix| (the price of the embedding and the clipping).

        Both matrices are Toeplitz, so this is a maximum over the n lags, O(n) memory.
        """
        col = self._cov_column()
        d = np.arange(self.n) / self.n
        k = self.params["scale"] ** 2 * np.exp(-(d**2) / (2.0 * self.params["length_scale"] ** 2))
        return float(np.max(np.abs(col - k)))

    def _cov_column(self) -> np.ndarray:
        import scipy.fft

        return scipy.fft.irfft(self._lam, n=self.m)[: self.n]

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update(
            embedding_size=int(self.m),
            rank=int(self.rank),
            method=self.method,
            min_eig_rel=self.min_eig_rel,
            cov_error=self.cov_error(),
        )
        return d

    def workspace(self, rows: int) -> np.ndarray | None:
        return np.empty((rows, self.rank)) if self.method == "gemm" else None

    def _factor(self) -> np.ndarray | None:
        return self._Bt if self.method == "gemm" else None

    def _factor_block(self) -> int:
        return self._block

    def fill_coeffs(self, z, seed, start):
        from fastinv.kernels.priors import _gaussian_fill

        _gaussian_fill(z, seed, start, 1.0)

    def fill(self, out, seed, start, work=None):
        if self.method == "gemm":
            N = out.shape[0]
            xi = work[:N] if work is not None else np.empty((N, self.rank))
            self.fill_coeffs(xi, seed, start)
            aligned_matmul(xi, self._Bt, out, start, self._block)
        else:
            self._fill_fft(out, seed, start)

    def _fill_fft(self, out, seed, start) -> None:
        """One irfft of length m per row, on batches of rows aligned to the batch size."""
        import numba
        import scipy.fft

        from fastinv.kernels.priors import _spectral_fill

        B = self._fft_block
        stop = start + out.shape[0]
        Z = np.empty((B, self.m // 2 + 1), dtype=np.complex128)
        workers = numba.get_num_threads()
        for blo in range((start // B) * B, stop, B):
            a, b = max(blo, start), min(blo + B, stop)
            if b - a < B:
                Z[:] = 0.0
            _spectral_fill(Z[a - blo : b - blo], seed, a, self._kidx, self._wre, self._wim)
            x = scipy.fft.irfft(Z, n=self.m, axis=1, workers=workers)
            out[a - start : b - start] = x[a - blo : b - blo, : self.n]


# ---------------------------------------------------------------------------------------
# image priors (numerics in fastinv/problem/image_priors.py)
def _power_summary(power):
    """How ``power`` is shown in to_dict / metrics.json (arrays and callables summarised)."""
    if power is None or isinstance(power, (str, int, float)):
        return power
    if callable(power):
        return f"callable {getattr(power, '__qualname__', type(power).__name__)}"
    return f"array {tuple(np.shape(power))}"


@dataclass
class GRFPrior(Prior):
    """Stationary Gaussian random field on the H x W torus, sampled by FFT.

    Attributes
    ----------
    image_shape : (int, int)
        (H, W), n = H W.
    """

    def __post_init__(self):
        p = self.params
        self.image_shape = tuple(p["image_shape"])
        H, W = self.image_shape
        self._P = grf_spectrum(
            self.image_shape, alpha=p["alpha"], k0=p["k0"], scale=p["scale"], power=p["power"]
        )
        self._mult = np.sqrt(self._P[:, : W // 2 + 1])  # rfft2 half of sqrt(P)
        self._block = fft_block(self.n)
        self._cov = None

    def power_spectrum(self) -> np.ndarray:
        """P (H, W), ``numpy.fft`` order: cov = F* diag(P) F with F the unitary 2-D DFT
        (P[kr, kc] is the variance of the field's unitary Fourier coefficient at (kr, kc))."""
        return self._P.copy()

    def autocovariance(self) -> np.ndarray:
        """c (H, W) = ifft2(P): cov[i, j] = c[(r_i - r_j) mod H, (c_i - c_j) mod W]."""
        return np.fft.ifft2(self._P).real

    def cov(self) -> np.ndarray:
        """Exact covariance, n x n (block circulant; O(n²) memory, use power_spectrum for
        large n)."""
        if self._cov is None:
            self._cov = circulant_cov(self.autocovariance())
        return self._cov.copy()

    def fill(self, out, seed, start, work=None):
        from fastinv.kernels.priors import _gaussian_fill

        _gaussian_fill(out, seed, start, 1.0)  # white noise, then the filter sqrt(P)
        filter_rows(out, self._mult, self.image_shape, start, self._block)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["params"].update(
            image_shape=list(self.image_shape), power=_power_summary(self.params["power"])
        )
        d["pixel_variance"] = float(self._P.mean())
        return d


@dataclass
class ShapesPrior(Prior):
    """Piecewise-constant images of rectangles and disks (``mean()`` and ``cov()`` are None:
    no closed form)."""

    def __post_init__(self):
        self.image_shape = tuple(self.params["image_shape"])

    def mean(self) -> None:
        """Not available in closed form (the audit estimates it from samples)."""
        return None

    def fill(self, out, seed, start, work=None):
        from fastinv.kernels.rng import STREAM_AUX, _fill_uniform

        N = out.shape[0]
        words = SHAPE_WORDS * (self.params["rects"] + self.params["disks"])
        rows = max(1, (1 << 18) // self.n)  # rows painted at once (masks of ~2**18 pixels)
        U = np.empty((min(rows, N), words))
        for s in range(0, N, rows):
            e = min(N, s + rows)
            _fill_uniform(U[: e - s], seed, STREAM_AUX, start + s)
            paint_shapes(out[s:e], U[: e - s], self.image_shape, self.params)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["params"]["image_shape"] = list(self.image_shape)
        return d


@dataclass
class ImagesPrior(Prior):
    """A user's clean images, drawn uniformly by the seed (exact empirical moments)."""

    def __post_init__(self):
        self.image_shape = tuple(self.params["image_shape"])
        self._images, self.source = load_images(self.params["images"], self.n, self.image_shape)
        self._cov = None

    @property
    def n_images(self) -> int:
        return int(self._images.shape[0])

    def mean(self) -> np.ndarray:
        """Mean of the stack (exact for the distribution sampled)."""
        return self._images.mean(0)

    def cov(self) -> np.ndarray:
        """Covariance of the stack with ddof 0 (exact for the distribution sampled)."""
        if self._cov is None:
            Xc = self._images - self.mean()
            self._cov = (Xc.T @ Xc) / self.n_images
        return self._cov.copy()

    def fill(self, out, seed, start, work=None):
        from fastinv.kernels.rng import STREAM_AUX, _fill_uniform

        u = np.empty((out.shape[0], 1))
        _fill_uniform(u, seed, STREAM_AUX, start)
        idx = np.minimum((u[:, 0] * self.n_images).astype(np.int64), self.n_images - 1)
        np.take(self._images, idx, axis=0, out=out)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["params"].update(image_shape=list(self.image_shape), images=self.source)
        d["n_images"] = self.n_images
        return d


# ---------------------------------------------------------------------------------------
_CLASSES = {
    "gaussian": GaussianPrior,
    "smooth": SmoothPrior,
    "piecewise_constant": PiecewiseConstantPrior,
    "sparse": SparsePrior,
    "grf": GRFPrior,
    "shapes": ShapesPrior,
    "images": ImagesPrior,
}

#: parameter -> (what the message calls it, check_float bounds) beyond ``scale``
_PARAM_CHECKS = {
    "smooth": {
        "length_scale": ("prior 'smooth' parameter length_scale", {"lo": 0, "lo_open": True}),
    },
    "piecewise_constant": {
        "rate": ("prior 'piecewise_constant' parameter rate", {"lo": 0}),
    },
    "sparse": {
        "p": ("prior 'sparse' parameter p (a probability)", {"lo": 0, "lo_open": True, "hi": 1}),
    },
}


def make_prior(name: str, n: int, **params) -> Prior:
    """Build a prior by name.

    Parameters
    ----------
    name : str
        one of :data:`PRIORS` (gaussian, smooth, piecewise_constant, sparse; images: grf,
        shapes, images).
    n : int
        signal length (>= 1).
    **params
        the prior's parameters (see :data:`PRIORS`); missing ones take their defaults.

    Returns
    -------
    Prior
    """
    if not isinstance(name, str) or name not in PRIORS:
        raise FastinvError(f"unknown prior {name!r}; choose one of: {', '.join(sorted(PRIORS))}")
    n = check_int(n, "n", lo=1)
    if name in IMAGE_PRIORS:
        return _CLASSES[name](name=name, n=n, params=check_image_params(name, n, params))
    return _CLASSES[name](name=name, n=n, params=_check_params(name, params))


def _check_params(name: str, params: dict) -> dict:
    """The prior's parameters, defaults filled in, each checked and made a float."""
    defaults = PRIORS[name]["params"]
    check_keys(params, defaults, f"prior {name!r}")
    p = {**defaults, **params}
    p["scale"] = check_float(p["scale"], f"prior {name!r} parameter scale", lo=0, lo_open=True)
    for key, (what, bounds) in _PARAM_CHECKS.get(name, {}).items():
        p[key] = check_float(p[key], what, **bounds)
    return p


def list_priors() -> list[dict]:
    """The catalogue for the CLI: name, description, params with defaults."""
    return [
        {"name": k, "description": v["description"], "params": dict(v["params"])}
        for k, v in PRIORS.items()
    ]
