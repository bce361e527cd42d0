"""What the report shows of an audit on images: reconstructions side by side, and filter factors
as maps over frequency.

:func:`image_arrays` keeps a few test images (truth, measurement, the network, C y + b, the
LMMSE/Wiener and the best Tikhonov reconstruction) as (k, H, W) arrays, computed from the
matrices the audit has already built.

For a Fourier-diagonal operator (circular convolution, structure ``"fft2"``), every singular
vector of A is a real Fourier mode: a cosine or a sine of one frequency k, which has the same
energy at k and at -k. :func:`fourier_frequencies` finds each singular index's frequency from the
singular vectors themselves (the peak of the 2-D FFT of each column of V), so it holds for any
order of the SVD. :func:`frequency_map` places filter factors φ_i at their frequencies (the
cosine and the sine of one conjugate pair share both cells k and -k, and get their mean);
:func:`radial_average` averages such a map over rings of equal |k|.

Maps use the centred layout of ``numpy.fft.fftshift``: cell (i, j) holds the frequency
(i - H // 2, j - W // 2), in cycles per image height and width.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FOURIER_STRUCTURES",
    "IMAGE_PREFIX",
    "MAP_PREFIX",
    "N_IMAGES",
    "RADIAL_PREFIX",
    "filter_map_arrays",
    "fourier_frequencies",
    "frequency_map",
    "image_arrays",
    "radial_average",
    "radial_index",
]

#: ``Operator.structure`` of the operators diagonalised by the 2-D FFT
FOURIER_STRUCTURES = ("fft2", "periodic")

#: how many test images the report shows
N_IMAGES = 4

#: array-name prefixes: test images, 2-D filter-factor maps, their radial averages
IMAGE_PREFIX = "img_"
MAP_PREFIX = "phimap_"
RADIAL_PREFIX = "phiradial_"

#: below this share of a singular vector's energy at its peak frequency pair, the vectors are
#: not pure Fourier modes (a mixed degenerate subspace) and no map is drawn
_MIN_PURITY = 0.99


# --------------------------------------------------------------------------------------------
# reconstructions


def image_arrays(
    shape, Y_test, X_test, net, refs, *, adjoint=None, k: int = N_IMAGES
) -> dict[str, np.ndarray]:
    """The first ``k`` test images, each (k, H, W), under ``img_<what>``.

    Parameters
    ----------
    shape : (H, W)
    Y_test, X_test : ndarray (N, m), (N, n) or None
    net : NetworkOnTest
        The network's outputs ``X_net`` and C y + b ``X_c`` on the test inputs.
    refs : References
        Supplies the dense LMMSE (with its offset) and the best Tikhonov.
    adjoint : callable, optional
        Y -> Y A on rows; the measurement is shown as Aᵀ y (``img_backprojection``) when it is
        not an image of the same shape (m ≠ n).
    k : int

    Returns
    -------
    dict
        ``img_truth`` (with targets), ``img_measurement`` or ``img_backprojection``,
        ``img_network``, ``img_C``, ``img_lmmse`` (when built) and ``img_<best Tikhonov>``.
    """
    H, W = shape
    k = min(k, Y_test.shape[0])
    Y = Y_test[:k]
    out = {}
    if X_test is not None:
        out["truth"] = X_test[:k]
    if Y.shape[1] == H * W:
        out["measurement"] = Y
    elif adjoint is not None:
        out["backprojection"] = np.asarray(adjoint(Y), dtype=np.float64)
    out["network"] = net.X_net[:k]
    out["C"] = net.X_c[:k]
    for name in ("lmmse", refs.best_tikhonov):
        M = refs.matrices.get(name)
        if M is not None:
            out[name] = Y @ M.T + refs.offsets.get(name, 0.0)
    return {f"{IMAGE_PREFIX}{name}": np.reshape(v, (k, H, W)) for name, v in out.items()}


# --------------------------------------------------------------------------------------------
# frequencies of the singular vectors


def _wrap(k: np.ndarray, N: int) -> np.ndarray:
    """Frequencies modulo N in the centred range [-(N // 2), (N - 1) // 2]."""
    return (k + N // 2) % N - N // 2


def fourier_frequencies(Vt: np.ndarray, shape, *, block: int = 512):
    """The frequency of each right singular vector of a Fourier-diagonal operator.

    Parameters
    ----------
    Vt : ndarray of shape (r, n)
        Rows: right singular vectors, images of ``shape`` flattened row-major.
    shape : (H, W)
    block : int
        Rows transformed at once (memory: 16 · block · n bytes).

    Returns
    -------
    ky, kx : ndarray of int, shape (r,)
        Each row's frequency, in the centred range (see :func:`_wrap`); of the pair ±k the
        one with the smaller (ky mod H) W + (kx mod W) is given.
    purity : ndarray of shape (r,)
        The share of each row's energy at ±k (1 for a pure Fourier mode).
    """
    H, W = shape
    r = Vt.shape[0]
    ky, kx, purity = np.empty(r, int), np.empty(r, int), np.empty(r)
    for lo in range(0, r, block):
        P = np.abs(np.fft.fft2(Vt[lo : lo + block].reshape(-1, H, W))) ** 2
        P = P.reshape(P.shape[0], -1)
        peak = np.argmax(P, axis=1)
        a, b = peak // W, peak % W
        neg = ((-a) % H) * W + (-b) % W
        rows = np.arange(P.shape[0])
        pair = P[rows, peak] + np.where(neg != peak, P[rows, neg], 0.0)
        purity[lo : lo + block] = pair / np.maximum(P.sum(1), 1e-300)
        flat = np.minimum(peak, neg)
        ky[lo : lo + block] = _wrap(flat // W, H)
        kx[lo : lo + block] = _wrap(flat % W, W)
    return ky, kx, purity


def frequency_map(values, ky, kx, shape) -> np.ndarray:
    """Per-index values placed on the (H, W) centred frequency grid.

    Each value goes to the cells of k and -k; a cell gets the mean of the values placed in it
    (NaN where none is).
    """
    H, W = shape
    ky, kx = np.asarray(ky), np.asarray(kx)
    values = np.asarray(values, dtype=np.float64)
    pos = (_wrap(ky, H) + H // 2, _wrap(kx, W) + W // 2)
    neg = (_wrap(-ky, H) + H // 2, _wrap(-kx, W) + W // 2)
    pair = (pos[0] != neg[0]) | (pos[1] != neg[1])  # self-conjugate k = -k: one cell
    total, count = np.zeros((H, W)), np.zeros((H, W))
    np.add.at(total, pos, values)
    np.add.at(count, pos, 1.0)
    np.add.at(total, (neg[0][pair], neg[1][pair]), values[pair])
    np.add.at(count, (neg[0][pair], neg[1][pair]), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# --------------------------------------------------------------------------------------------
# radial averages


def radial_index(shape) -> tuple[np.ndarray, np.ndarray]:
    """Ring of each cell of the centred (H, W) frequency grid, and the rings' radii.

    The radius of frequency (ky, kx) is |k| = √((ky/H)² + (kx/W)²) cycles per pixel; ring j
    holds the cells whose |k| · max(H, W) rounds (half up) to j, and its radius is
    j / max(H, W).
    """
    H, W = shape
    K = max(H, W)
    fy = (np.arange(H) - H // 2) / H
    fx = (np.arange(W) - W // 2) / W
    rad = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    ring = np.floor(rad * K + 0.5).astype(int)
    return ring, np.arange(ring.max() + 1) / K


def radial_average(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean of a centred frequency map over each ring of :func:`radial_index`.

    Returns
    -------
    radius : ndarray
        Ring radii in cycles per pixel.
    mean : ndarray
        Mean over the ring's finite cells (NaN where it has none).
    """
    ring, radius = radial_index(M.shape)
    ok = np.isfinite(M)
    total = np.bincount(ring[ok], weights=M[ok], minlength=len(radius))
    count = np.bincount(ring[ok], minlength=len(radius))
    with np.errstate(invalid="ignore", divide="ignore"):
        return radius, np.where(count > 0, total / np.maximum(count, 1), np.nan)


def filter_map_arrays(Vt, shape, phi: dict, names) -> tuple[dict, str | None]:
    """Filter-factor maps ``phimap_<name>`` (H, W), their radial averages
    ``phiradial_<name>`` and ``phiradial_radius``, and the singular indices' frequencies
    ``freq_ky`` / ``freq_kx``; or ({}, why) when the singular vectors are not Fourier modes."""
    ky, kx, purity = fourier_frequencies(Vt, shape)
    if purity.size and purity.min() < _MIN_PURITY:
        return {}, (
            "no filter-factor maps over frequency: A's singular vectors are not pure Fourier "
            f"modes (lowest share of energy at one frequency pair {purity.min():.3g})"
        )
    out = {"freq_ky": ky, "freq_kx": kx}
    for name in names:
        if name not in phi:
            continue
        v = np.asarray(phi[name])
        M = frequency_map(v, ky[: v.size], kx[: v.size], shape)
        radius, mean = radial_average(M)
        out[f"{MAP_PREFIX}{name}"] = M
        out[f"{RADIAL_PREFIX}{name}"] = mean
        out[f"{RADIAL_PREFIX}radius"] = radius
    return out, None
