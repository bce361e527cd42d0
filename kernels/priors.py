"""Numba kernels that fill rows of prior samples and add measurement noise.

Every kernel writes rows ``start, start + 1, ...`` (global sample indices) of one chunk, in
parallel over rows; row ``i`` depends only on ``(seed, i)`` through the counter-based
generator of :mod:`fastinv.kernels.rng`. The public wrappers are fastinv/priors.py and
fastinv/data.py; these kernels do no validation.
"""

from __future__ import annotations

import math

import numba
from numba import njit, prange

from .rng import (
    STREAM_AUX,
    STREAM_NOISE,
    STREAM_SIGNAL,
    _normal_at,
    _normal_row,
    _row_key,
    _stream_key,
    _u01,
    _word,
)

_FM = {"reassoc", "contract", "arcp"}  # for the norms only; never nnan / ninf


@njit(parallel=True, fastmath=False, cache=True)
def _gaussian_fill(out, seed, start, scale):
    """out[i, c] = scale * normal number c of row start + i (stream SIGNAL)."""
    key = _stream_key(seed, STREAM_SIGNAL)
    for i in prange(out.shape[0]):
        _normal_row(_row_key(key, start + i), out[i], scale)


@njit(parallel=True, fastmath=False, cache=True)
def _sparse_fill(out, seed, start, inv_log1mp, scale):
    """Bernoulli-Gaussian rows: entry nonzero with probability p, then N(0, scale**2).

    The gaps between nonzeros are geometric, ``floor(log(u) * inv_log1mp)`` with
    ``inv_log1mp = 1 / log(1 - p)`` (0 when p == 1) and u the row's uniforms of stream AUX
    in order; the q-th nonzero is ``scale *`` normal number q of the row in stream SIGNAL.
    """
    key_a = _stream_key(seed, STREAM_AUX)
    key_s = _stream_key(seed, STREAM_SIGNAL)
    n = out.shape[1]
    for i in prange(out.shape[0]):
        rka = _row_key(key_a, start + i)
        rks = _row_key(key_s, start + i)
        for c in range(n):
            out[i, c] = 0.0
        q = 0
        pos = -1
        while True:
            g = math.log(_u01(_word(rka, q))) * inv_log1mp
            if g >= n - 1 - pos:  # also catches inf
                break
            pos += 1 + int(g)
            out[i, pos] = scale * _normal_at(rks, q)
            q += 1


@njit(parallel=True, fastmath=False, cache=True)
def _piecewise_fill(out, seed, start, gap_scale, scale):
    """Piecewise-constant rows: a jump in each grid gap with probability 1 - exp(-rate/n).

    The numbers of gaps without a jump are geometric, ``floor(-log(u) * gap_scale)`` with
    ``gap_scale = n / rate`` (inf when rate == 0) and u the row's uniforms of stream AUX in
    order. Level q (q = 0 the first) is ``scale *`` normal number q of stream SIGNAL.
    """
    key_a = _stream_key(seed, STREAM_AUX)
    key_s = _stream_key(seed, STREAM_SIGNAL)
    n = out.shape[1]
    for i in prange(out.shape[0]):
        rka = _row_key(key_a, start + i)
        rks = _row_key(key_s, start + i)
        q = 0
        pos = 0  # first position of the current level
        while pos < n:
            level = scale * _normal_at(rks, q)
            g = -math.log(_u01(_word(rka, q))) * gap_scale
            q += 1
            # positions pos .. pos + floor(g) keep the level, the jump follows
            if g >= n - 1 - pos:
                stop = n
            else:
                stop = pos + 1 + int(g)
            for c in range(pos, stop):
                out[i, c] = level
            pos = stop


@njit(parallel=True, fastmath=False, cache=True)
def _spectral_fill(out, seed, start, kidx, wre, wim):
    """Fill rfft coefficients of smooth-prior rows (all other entries are set to 0).

    For the retained frequencies ``kidx[q]``, ``out[i, kidx[q]] = wre[q] * a - 1j * wim[q] * b``
    with ``a``, ``b`` the row's next normals in stream SIGNAL (``b`` only when
    ``wim[q] != 0``): the same numbers, in the same order, as the columns of
    ``_gaussian_fill(..., scale=1)``.
    """
    key = _stream_key(seed, STREAM_SIGNAL)
    nk = kidx.shape[0]
    for i in prange(out.shape[0]):
        rk = _row_key(key, start + i)
        for c in range(out.shape[1]):
            out[i, c] = 0.0
        j = 0
        for q in range(nk):
            a = _normal_at(rk, j)
            j += 1
            if wim[q] != 0.0:
                b = _normal_at(rk, j)
                j += 1
                out[i, kidx[q]] = complex(wre[q] * a, -wim[q] * b)
            else:
                out[i, kidx[q]] = complex(wre[q] * a, 0.0)


@njit(parallel=True, fastmath=False, cache=True)
def _touch_rows(a):
    """Write 0 to one entry per 4 KiB of every row of the fresh array ``a``, in parallel.

    The first write to a page of a new array faults it in; done here, by Numba's threads,
    it is much cheaper than inside a BLAS kernel (measured: the (100 000 x 1024) Y = X Aᵀ of
    generate() takes ~0.5 s less on two cores when its output was touched first).
    """
    step = max(1, 4096 // a.itemsize)
    for i in prange(a.shape[0]):
        for c in range(0, a.shape[1], step):
            a[i, c] = 0.0


@njit(parallel=True, fastmath=False, cache=True)
def _copy_rows(dst, src):
    """dst[i, c] = src[i, c] (a casting, parallel copy)."""
    for i in prange(dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[i, c] = src[i, c]


@njit(parallel=True, fastmath=False, cache=True)
def _add_noise_absolute(y, seed, start, sigma, scratch):
    """y[i, :] += sigma * normals of row start + i (stream NOISE), in place.

    ``scratch`` has shape (>= numba thread count, n): the row's normals are drawn into the
    calling thread's row of it.
    """
    key = _stream_key(seed, STREAM_NOISE)
    n = y.shape[1]
    for i in prange(y.shape[0]):
        buf = scratch[numba.get_thread_id()]
        _normal_row(_row_key(key, start + i), buf, 1.0)
        for c in range(n):
            y[i, c] += sigma * buf[c]


@njit(parallel=False, fastmath=_FM, cache=True)
def _sumsq(v):
    s = 0.0
    for c in range(v.shape[0]):
        s += v[c] * v[c]
    return s


@njit(parallel=True, fastmath=False, cache=True)
def _add_noise_relative(y, seed, start, level, scratch):
    """y[i] += level * ||y[i]|| * z / ||z|| with z the normals of row start + i (stream NOISE).

    ``scratch`` as in :func:`_add_noise_absolute`. Rows with ``y[i] == 0`` stay 0.
    """
    key = _stream_key(seed, STREAM_NOISE)
    n = y.shape[1]
    for i in prange(y.shape[0]):
        buf = scratch[numba.get_thread_id()]
        ny = _sumsq(y[i])
        if ny == 0.0:
            continue
        _normal_row(_row_key(key, start + i), buf, 1.0)
        f = level * math.sqrt(ny) / math.sqrt(_sumsq(buf))
        for c in range(n):
            y[i, c] += f * buf[c]
