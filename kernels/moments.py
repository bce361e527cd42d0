"""Numba kernels for the streamed moments of the linear surrogate (fastinv.surrogate).

The dense products (YᵀY by BLAS syrk, YᵀX by gemm) and the factorizations are BLAS/LAPACK
calls made by :mod:`fastinv.surrogate`; these kernels own the memory-bound O(m n) and O(n²)
passes around them:

* :func:`_colsums` -- column sums of ``a - shift`` and of its squares (one read of a chunk);
* :func:`_shift_copy` -- the same sums while writing ``float64(a) - shift`` into a buffer
  (casting a float32 chunk and centring it in one pass);
* :func:`_resid_sums` -- sums of squares of the residuals ``x - p - b`` and the column sums
  of ``x - xbar`` (streamed held-out R²);
* :func:`_sym_fill` -- copy one triangle of a square matrix onto the other, in place;
* :func:`_abs_colsums` -- column sums of ``|A|`` (the 1-norm of a symmetric matrix).

All write float64 outputs passed in (no allocation inside). The O(m n) kernels
walk a C-contiguous chunk row by row with the column loop innermost (unit stride, vectorised
by LLVM); they run serially (``parallel=False``): they are memory-bound and sit between two
multi-threaded BLAS calls, and on the 2-core development machine a ``prange`` version over
row blocks was measured slower (thread wake-up ≈ 10 ms under load against ≈ 3 ms for a
32 MB chunk serially, ≈ 11 GB/s). Fortran-ordered inputs are correct but strided (slow).
"""

from __future__ import annotations

from numba import njit

#: tile edge for the in-place triangle copy
_TILE = 64


@njit(parallel=False, fastmath=False, cache=True)
def _colsums(a, shift, sums, sumsq):
    """``sums[j] += sum_i (a[i, j] - shift[j])`` and ``sumsq[j] += sum_i (...)**2``.

    ``a`` (m, k) of float32 or float64; ``shift``, ``sums``, ``sumsq`` (k,) float64.
    """
    m, k = a.shape
    for i in range(m):
        row = a[i]
        for j in range(k):
            d = row[j] - shift[j]
            sums[j] += d
            sumsq[j] += d * d


@njit(parallel=False, fastmath=False, cache=True)
def _shift_copy(a, shift, out, sums, sumsq):
    """``out = float64(a) - shift`` plus the sums of :func:`_colsums` (``out`` (m, k))."""
    m, k = a.shape
    for i in range(m):
        row = a[i]
        o = out[i]
        for j in range(k):
            d = row[j] - shift[j]
            o[j] = d
            sums[j] += d
            sumsq[j] += d * d


@njit(parallel=False, fastmath=False, cache=True)
def _resid_sums(x, p, b, xbar, sse, sdev, sdev2):
    """Residual and deviation sums for the streamed R² of a fit on new data.

    ``r = x[i, j] - p[i, j] - b[j]`` (``p`` holds ``Y Cᵀ``), ``d = x[i, j] - xbar[j]``:
    ``sse[j] += r²``, ``sdev[j] += d``, ``sdev2[j] += d²``. ``x`` (m, k) float32/64,
    ``p`` (m, k) float64, the rest (k,) float64.
    """
    m, k = x.shape
    for i in range(m):
        xr = x[i]
        pr = p[i]
        for j in range(k):
            xv = xr[j]
            r = xv - pr[j] - b[j]
            d = xv - xbar[j]
            sse[j] += r * r
            sdev[j] += d
            sdev2[j] += d * d


@njit(parallel=False, fastmath=False, cache=True)
def _sym_fill(a, upper_to_lower):
    """Make the square ``a`` symmetric in place from one triangle (diagonal untouched).

    ``upper_to_lower=True`` copies ``a[i, j]`` (i < j) to ``a[j, i]``; False the reverse.
    Tiled so that both the read and the write side stay in cache (O(n²), once per solve).
    """
    n = a.shape[0]
    nt = (n + _TILE - 1) // _TILE
    for tj in range(nt):
        j0 = tj * _TILE
        j1 = min(n, j0 + _TILE)
        for ti in range(tj + 1):
            i0 = ti * _TILE
            i1 = min(n, i0 + _TILE)
            # tile rows i0:i1 (upper side has i < j) x columns j0:j1
            for j in range(j0, j1):
                for i in range(i0, min(i1, j)):
                    if upper_to_lower:
                        a[j, i] = a[i, j]
                    else:
                        a[i, j] = a[j, i]


@njit(parallel=False, fastmath=False, cache=True)
def _abs_colsums(a, out):
    """``out[j] = sum_i |a[i, j]|`` for a square (F-ordered: columns contiguous) ``a``."""
    n, k = a.shape
    for j in range(k):
        s = 0.0
        for i in range(n):
            s += abs(a[i, j])
        out[j] = s
