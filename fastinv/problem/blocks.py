"""Row blocks: products and FFT batches made on fixed blocks of rows aligned to global rows.

A row of a result never depends on how the rows around it were chunked: every product with a
data matrix is made on blocks of :func:`row_block` rows aligned to multiples of the block size
(zero-padded at the edges, :func:`aligned_matmul`), and the smooth prior's FFT synthesis runs
on batches of :func:`fft_block` rows aligned the same way. So chunked generation is bitwise
equal to one big draw, for a given BLAS library and thread count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["aligned_matmul", "fft_block", "row_block"]

#: tests set this to a small number of rows to exercise the blocking with small inputs
_BLOCK_OVERRIDE: int | None = None


def row_block(n: int) -> int:
    """Rows per BLAS call for signals of length n.

    A power of two, about 2**21 / n, within [256, 8192]: large blocks keep BLAS threads busy
    between synchronisations.
    """
    if _BLOCK_OVERRIDE is not None:
        return int(_BLOCK_OVERRIDE)
    b = (1 << 21) // max(n, 1)
    b = 1 << max(b.bit_length() - 1, 0)
    return int(min(max(b, 256), 8192))


def fft_block(m: int) -> int:
    """Rows per batch of real FFTs of length m (a power of two, about 8 MB of coefficients)."""
    if _BLOCK_OVERRIDE is not None:
        return int(_BLOCK_OVERRIDE)
    return 1 << max(((1 << 19) // (m // 2 + 1)).bit_length() - 1, 0)


def aligned_matmul(L: np.ndarray, Rt: np.ndarray, out: np.ndarray, start: int, block: int):
    """``out = L @ Rt`` computed on row blocks aligned to multiples of ``block``.

    Parameters
    ----------
    L : ndarray of shape (N, k)
        Rows ``start .. start + N`` of the left factor.
    Rt : ndarray of shape (k, m)
        The right factor.
    out : ndarray of shape (N, m)
        Written in place.
    start : int
        Global index of the first row.
    block : int
        Rows per product. Blocks lying wholly inside are multiplied in place; blocks cut by
        the edges are zero-padded to ``block`` rows in scratch, so every BLAS call has the
        same shape and a row's bits depend only on the row.
    """
    N = L.shape[0]
    stop = start + N
    pad_l = pad_o = None
    for blo in range((start // block) * block, stop, block):
        bhi = blo + block
        a, b = max(blo, start), min(bhi, stop)
        if a == blo and b == bhi:
            np.dot(L[a - start : b - start], Rt, out=out[a - start : b - start])
            continue
        if pad_l is None:
            pad_l = np.empty((block, L.shape[1]), dtype=L.dtype)
            pad_o = np.empty((block, Rt.shape[1]), dtype=out.dtype)
        pad_l[:] = 0.0
        pad_l[a - blo : b - blo] = L[a - start : b - start]
        np.dot(pad_l, Rt, out=pad_o)
        out[a - start : b - start] = pad_o[a - blo : b - blo]
