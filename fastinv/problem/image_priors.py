"""The numerics of the image priors (``grf``, ``shapes``, ``images``; the prior classes are in
fastinv/problem/priors.py).

Images are (H, W) grids flattened row-major: pixel (r, c) is entry r W + c of a signal of
length n = H W (the convention of :class:`fastinv.problem.operators.Operator`).

``grf``: a stationary Gaussian random field on the H x W torus. Its covariance is
``Σ = F* diag(P) F`` with F the unitary 2-D DFT: circulant, ``Σ[i, j] = c(Δr mod H, Δc mod W)``
with the autocovariance ``c = ifft2(P)``, and diagonal in the Fourier basis, where P (H, W, in
``numpy.fft`` order) is the power spectrum. A sample is white noise w ~ N(0, I) filtered by
the circulant with eigenvalues sqrt(P): ``x = irfft2(rfft2(w) sqrt(P))``, so cov(x) = Σ
exactly. The default spectrum is ``P(k) ∝ (k0² + |k|²)^(-alpha/2)`` with k = (k_r, k_c) in
cycles per pixel (``numpy.fft.fftfreq``, minimal image), normalised so that every pixel has
variance scale²: in 2-D this is the Matérn covariance with smoothness alpha/2 - 1 and length
1 / (2 pi k0) pixels (alpha = 3: the exponential covariance exp(-d / l)).

``shapes``: piecewise-constant phantoms: ``rects`` axis-aligned rectangles, then ``disks``
disks, painted in that order over ``background`` (later shapes hide earlier ones). Each shape
takes 5 uniforms of the row (stream AUX): centre row and column (uniform over the image), two
sizes (rectangle height and width as fractions of H and W in [size_min, size_max]; a disk's
radius as a fraction of min(H, W) in [radius_min, radius_max]), and an intensity uniform in
[intensity_min, intensity_max]. A pixel belongs to a shape when its centre (r + 0.5, c + 0.5)
does.

``images``: a user's stack of clean images; row i of a sample is image floor(u_i N) of the
stack, u_i the row's first uniform (stream AUX), so the signals follow the empirical
distribution of the stack, whose mean and covariance (ddof 0) are therefore exact.
"""

from __future__ import annotations

import math
import os

import numpy as np

from fastinv._validation import (
    check_finite,
    check_float,
    check_int,
    check_keys,
    check_real_array,
    fail,
)
from fastinv.errors import FastinvError

__all__ = [
    "IMAGE_PRIORS",
    "MIN_IMAGES",
    "SHAPE_WORDS",
    "check_image_params",
    "circulant_cov",
    "filter_rows",
    "frequency_grid",
    "grf_spectrum",
    "load_images",
    "mirror_spectrum",
    "paint_shapes",
    "resolve_image_shape",
]

#: fewest images a user's stack may hold (a covariance needs two)
MIN_IMAGES = 2
#: uniforms per shape of the ``shapes`` prior: centre row, centre column, two sizes, intensity
SHAPE_WORDS = 5
#: relative tolerance of the symmetry check P(k) = P(-k) of a given spectrum
_SYM_RTOL = 1e-12

IMAGE_PRIORS: dict[str, dict] = {
    "grf": {
        "description": (
            "stationary Gaussian random field on the H x W torus, power spectrum "
            "(k0^2 + |k|^2)^(-alpha/2) (k in cycles per pixel) normalised to pixel variance "
            "scale^2, or a given `power` (array or callable); sampled by FFT, exact cov"
        ),
        "params": {"image_shape": None, "alpha": 3.0, "k0": 0.05, "scale": 1.0, "power": None},
    },
    "shapes": {
        "description": (
            "piecewise-constant images: `rects` rectangles then `disks` disks of random "
            "position, size and intensity painted over `background`"
        ),
        "params": {
            "image_shape": None,
            "disks": 4,
            "rects": 4,
            "radius_min": 0.05,
            "radius_max": 0.2,
            "size_min": 0.1,
            "size_max": 0.4,
            "intensity_min": -1.0,
            "intensity_max": 1.0,
            "background": 0.0,
        },
    },
    "images": {
        "description": (
            "a user's clean images (an (N, H, W) or (N, n) array or .npy file, `images`), "
            "drawn uniformly by the seed; exact empirical mean and covariance"
        ),
        "params": {"image_shape": None, "images": None},
    },
}


# ---------------------------------------------------------------------------------------
# parameters
def resolve_image_shape(n: int, value, what: str) -> tuple[int, int]:
    """(H, W) with H W = n from ``value`` ((H, W), [H, W], "H,W" or "HxW"), or the square
    sqrt(n) x sqrt(n) when ``value`` is None and n is a perfect square."""
    if value is None:
        h = math.isqrt(n)
        if h * h != n:
            raise FastinvError(
                f"{what}: n = {n} is not a perfect square, so the image shape cannot be "
                "guessed; give image_shape=(H, W) with H * W = n"
            )
        return h, h
    try:
        parts = (
            [int(t) for t in value.lower().replace("x", ",").split(",")]
            if isinstance(value, str)
            else list(value)
        )
        H, W = (check_int(t, "image_shape entry", lo=1) for t in parts)
    except (TypeError, ValueError, FastinvError):
        raise fail(f"{what}: image_shape", "two positive integers (H, W)", value) from None
    if H * W != n:
        raise FastinvError(
            f"{what}: image_shape {(H, W)} has {H * W} pixels but n = {n}; "
            f"give an (H, W) with H * W = {n}"
        )
    return H, W


def check_image_params(name: str, n: int, params: dict) -> dict:
    """The parameters of image prior ``name``, defaults filled in and checked; the image
    shape resolved (``shape`` is accepted for ``image_shape``)."""
    what = f"prior {name!r}"
    params = dict(params)
    if "shape" in params:
        if params.get("image_shape") is not None:
            raise FastinvError(f"{what}: give image_shape or shape, not both")
        params["image_shape"] = params.pop("shape")
    defaults = IMAGE_PRIORS[name]["params"]
    check_keys(params, defaults, what)
    p = {**defaults, **params}
    p["image_shape"] = resolve_image_shape(n, p["image_shape"], what)
    if name == "grf":
        p["scale"] = check_float(p["scale"], f"{what} parameter scale", lo=0, lo_open=True)
        p["alpha"] = check_float(p["alpha"], f"{what} parameter alpha", lo=0)
        p["k0"] = check_float(p["k0"], f"{what} parameter k0", lo=0, lo_open=True)
    elif name == "shapes":
        _check_shapes(p, what)
    return p


def _check_shapes(p: dict, what: str) -> None:
    for key in ("disks", "rects"):
        p[key] = check_int(p[key], f"{what} parameter {key}", lo=0, hi=1000)
    for lo, hi in (("radius_min", "radius_max"), ("size_min", "size_max")):
        p[lo] = check_float(p[lo], f"{what} parameter {lo}", lo=0)
        p[hi] = check_float(p[hi], f"{what} parameter {hi} (>= {lo})", lo=p[lo])
    lo, hi = "intensity_min", "intensity_max"
    p[lo] = check_float(p[lo], f"{what} parameter {lo}")
    p[hi] = check_float(p[hi], f"{what} parameter {hi} (>= {lo})", lo=p[lo])
    p["background"] = check_float(p["background"], f"{what} parameter background")


# ---------------------------------------------------------------------------------------
# the Gaussian random field
def frequency_grid(image_shape) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (H, 1) and (1, W) in cycles per pixel, ``numpy.fft.fftfreq`` order."""
    H, W = image_shape
    return np.fft.fftfreq(H)[:, None], np.fft.fftfreq(W)[None, :]


def grf_spectrum(image_shape, *, alpha: float, k0: float, scale: float, power) -> np.ndarray:
    """The power spectrum P (H, W) (eigenvalues of the covariance, ``numpy.fft`` order).

    ``power`` None: ``(k0² + |k|²)^(-alpha/2)`` scaled so that mean(P) (the pixel variance)
    is scale². An (H, W) array, or a callable ``power(kr, kc)`` of the frequency grids
    (cycles per pixel, shapes (H, 1) and (1, W)): taken as given, times scale². Either must
    be finite, >= 0 and symmetric, P(k) = P(-k), so that the field is real with covariance
    exactly ``F* diag(P) F``; a callable's values are symmetrised, (P(k) + P(-k)) / 2, because
    for an even size the grid holds the frequency -1/2 but not +1/2.
    """
    kr, kc = frequency_grid(image_shape)
    if power is None:
        P = (k0**2 + kr**2 + kc**2) ** (-alpha / 2.0)
        return scale**2 * P / P.mean()
    what = "prior 'grf' parameter power"
    if callable(power):
        try:
            P = np.broadcast_to(np.asarray(power(kr, kc)), image_shape)
        except ValueError:
            raise FastinvError(
                f"{what}: the callable must return an array broadcastable to {image_shape} "
                "from the frequency grids kr (H, 1) and kc (1, W)"
            ) from None
    else:
        P = np.asarray(power)
    P = check_real_array(P, what, ndim=2)
    if P.shape != tuple(image_shape):
        raise FastinvError(f"{what} must have shape {tuple(image_shape)}, got {P.shape}")
    if callable(power):  # the grid holds -1/2 but not +1/2 for even sizes: symmetrise there
        P = 0.5 * (P + mirror_spectrum(P))
    return scale**2 * _check_spectrum(P, what)


def mirror_spectrum(P: np.ndarray) -> np.ndarray:
    """P(-k) on the ``numpy.fft`` grid: entry (kr, kc) moves to (-kr mod H, -kc mod W)."""
    return np.roll(P[::-1, ::-1], (1, 1), axis=(0, 1))


def _check_spectrum(P: np.ndarray, what: str) -> np.ndarray:
    check_finite(P, what)
    if P.min() < 0:
        raise fail(what, "a spectrum >= 0 everywhere", f"a minimum of {P.min():.3g}")
    if np.max(np.abs(P - mirror_spectrum(P))) > _SYM_RTOL * max(P.max(), np.finfo(float).tiny):
        raise FastinvError(
            f"{what} must be symmetric, P(k) = P(-k) (a real field's spectrum); "
            "symmetrise it, e.g. (P + P(-k)) / 2"
        )
    if P.max() == 0:
        raise fail(what, "nonzero somewhere", "all zeros")
    return np.array(P, dtype=np.float64)


def circulant_cov(c: np.ndarray) -> np.ndarray:
    """The n x n block-circulant matrix ``Σ[i, j] = c[(r_i - r_j) mod H, (c_i - c_j) mod W]``
    (pixels i = r_i W + c_i) from the autocovariance c (H, W)."""
    H, W = c.shape
    d = np.arange(H)
    e = np.arange(W)
    blocks = c[:, (e[:, None] - e[None, :]) % W]  # (H, W, W): the circulant block of lag dr
    S = blocks[(d[:, None] - d[None, :]) % H]  # (H, H, W, W)
    return np.ascontiguousarray(S.transpose(0, 2, 1, 3).reshape(H * W, H * W))


def filter_rows(X: np.ndarray, mult: np.ndarray, image_shape, start: int, block: int) -> None:
    """``X[i] <- irfft2(rfft2(X[i]) * mult)`` in place, on batches of ``block`` rows aligned
    to multiples of ``block`` (zero-padded at the edges), so that a row's bits do not depend
    on how the rows were chunked (fastinv/problem/blocks.py)."""
    import numba
    import scipy.fft

    H, W = image_shape
    N = X.shape[0]
    stop = start + N
    workers = numba.get_num_threads()
    pad = None
    for blo in range((start // block) * block, stop, block):
        a, b = max(blo, start), min(blo + block, stop)
        if b - a == block:
            rows = X[a - start : b - start]
        else:
            if pad is None:
                pad = np.empty((block, H * W))
            pad[:] = 0.0
            pad[a - blo : b - blo] = X[a - start : b - start]
            rows = pad
        Z = scipy.fft.rfft2(rows.reshape(block, H, W), workers=workers)
        Z *= mult
        x = scipy.fft.irfft2(Z, s=(H, W), workers=workers).reshape(block, H * W)
        X[a - start : b - start] = x[a - blo : b - blo]


# ---------------------------------------------------------------------------------------
# piecewise-constant shapes
def paint_shapes(out: np.ndarray, U: np.ndarray, image_shape, p: dict) -> None:
    """Paint the rows of ``out`` (N, H W) from their uniforms ``U`` (N, SHAPE_WORDS * K):
    rectangles first, then disks, over the background (see the module docstring)."""
    H, W = image_shape
    rr = (np.arange(H) + 0.5)[None, :, None]
    cc = (np.arange(W) + 0.5)[None, None, :]
    img = out.reshape(-1, H, W)
    img[:] = p["background"]
    for k in range(p["rects"] + p["disks"]):
        u = U[:, SHAPE_WORDS * k : SHAPE_WORDS * (k + 1)]
        cy = (u[:, 0] * H)[:, None, None]
        cx = (u[:, 1] * W)[:, None, None]
        val = (p["intensity_min"] + u[:, 4] * (p["intensity_max"] - p["intensity_min"]))[
            :, None, None
        ]
        if k < p["rects"]:
            size = p["size_min"] + u[:, 2:4] * (p["size_max"] - p["size_min"])
            hh = (size[:, 0] * H / 2)[:, None, None]
            hw = (size[:, 1] * W / 2)[:, None, None]
            inside = (np.abs(rr - cy) <= hh) & (np.abs(cc - cx) <= hw)
        else:
            rad = (p["radius_min"] + u[:, 2] * (p["radius_max"] - p["radius_min"])) * min(H, W)
            inside = (rr - cy) ** 2 + (cc - cx) ** 2 <= (rad**2)[:, None, None]
        np.copyto(img, val, where=inside)


# ---------------------------------------------------------------------------------------
# a user's images
def load_images(images, n: int, image_shape) -> tuple[np.ndarray, str]:
    """The stack as an (N, n) float64 array and a description of where it came from.

    ``images``: an (N, H, W) or (N, n) array, or the path of a .npy / .npz file holding one.
    Refused (one FastinvError): a missing or unreadable file, a non-numeric array, a shape
    that does not match (H, W) / n, non-finite values, fewer than :data:`MIN_IMAGES` images.
    """
    what = "prior 'images': the images"
    if images is None:
        raise FastinvError(
            "prior 'images' needs the images: make_prior('images', n, images=array_or_path), "
            "or `fastinv run --data images.npy`"
        )
    source = "array"
    if isinstance(images, (str, os.PathLike)):
        from fastinv.problem.files import read_matrix

        source = os.fspath(images)
        images, _ = read_matrix(images)
        what = f"the images in {source}"
    a = check_real_array(images, what)
    stack = _as_rows(a, n, image_shape, what)
    check_finite(stack, what)
    if stack.shape[0] < MIN_IMAGES:
        raise FastinvError(
            f"{what}: {stack.shape[0]} image(s); give at least {MIN_IMAGES} (the signal "
            "distribution is drawn from them)"
        )
    return np.ascontiguousarray(stack), f"{source} {a.shape}"


def _as_rows(a: np.ndarray, n: int, image_shape, what: str) -> np.ndarray:
    H, W = image_shape
    if a.ndim == 3 and a.shape[1:] == (H, W):
        return a.reshape(a.shape[0], n)
    if a.ndim == 2 and a.shape[1] == n:
        return a
    raise FastinvError(
        f"{what} must be an (N, {H}, {W}) stack or an (N, {n}) array of flattened images "
        f"to match the operator (n = {n}, image shape {H} x {W}), got shape {a.shape}"
    )
