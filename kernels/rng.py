"""Counter-based random numbers for chunked, thread-count-independent data generation.

Every random number fastinv generates for data is a pure function of
``(seed, stream, row, j)``:

* ``key = _stream_key(seed, stream)`` scrambles the user seed and a stream id (signal,
  jumps, noise, ... each use their own stream, so they never share numbers);
* ``rk = _row_key(key, row)`` gives every sample row its own 64-bit key;
* the ``j``-th 64-bit word of a row is ``_mix64(rk + (j + 1) * GOLDEN)``: the row is a
  SplitMix64 sequence (Steele, Lea, Flood 2014) started at ``rk``.

Row ``i`` therefore depends only on ``(seed, stream, i)`` -- never on the chunk it falls in
or on which thread fills it -- and any row can be generated without generating the rows
before it. Rows are filled in parallel (``prange`` over rows).

Uniforms are ``((w >> 11) + 0.5) * 2**-53``, the 53 top bits of a word, in the open interval
(0, 1). Standard normals use the 256-layer ziggurat (Marsaglia & Tsang 2000, in the 64-bit
form of NumPy's ``Generator.standard_normal``), arranged so that normal number ``c`` of a row
is itself counter-addressed: its first candidate comes from word ``c`` (accepted 98.8 % of
the time), and only a rejected candidate draws more words, from a sub-stream keyed by
``(row key, c)``. The first candidates of a whole row are computed in one branch-free loop
that LLVM vectorises (AVX-512 / AVX2), the few rejections in a second pass.
:func:`ziggurat_tables` builds the tables; ``tests/naive_data.py`` re-implements the hash,
the uniforms and the normals in pure Python and agrees bitwise.

All integer arithmetic is on ``uint64`` and wraps modulo 2**64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, the SplitMix64 increment
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0x5EED5EED2545F491)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S8 = np.uint64(8)
_S1 = np.uint64(1)
_ONE = np.uint64(1)
_MASK8 = np.uint64(0xFF)
_MASK52 = np.uint64(0x000FFFFFFFFFFFFF)
_TWO_M53 = 2.0**-53

# stream ids (one per independent use of randomness; documented in fastinv/priors.py)
STREAM_SIGNAL = 0
STREAM_AUX = 1
STREAM_NOISE = 2

# ---------------------------------------------------------------------------------------
# ziggurat tables (256 layers, right tail at R; Marsaglia & Tsang 2000)
ZIGGURAT_R = 3.6541528853610088
ZIGGURAT_V = 0.00492867323399


def ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(ki, wi, fi)``: uint64 acceptance bounds, layer widths / 2**52, densities.

    Layer 0 is the base strip (rectangle plus tail); for layer ``i`` a 52-bit integer
    ``rabs`` gives ``x = rabs * wi[i]``, accepted at once when ``rabs < ki[i]``.
    """
    m1 = 2.0**52
    dn = ZIGGURAT_R
    tn = dn
    vn = ZIGGURAT_V
    ki = np.zeros(256, dtype=np.uint64)
    wi = np.zeros(256, dtype=np.float64)
    fi = np.zeros(256, dtype=np.float64)
    q = vn / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64(int((dn / q) * m1))
    ki[1] = np.uint64(0)
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64(int((dn / tn) * m1))
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


_KI, _WI, _FI = ziggurat_tables()
_R = ZIGGURAT_R
_INV_R = 1.0 / ZIGGURAT_R


# ---------------------------------------------------------------------------------------
# scalar building blocks (inlined into the fill kernels)
@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _mix64(z):
    """SplitMix64 finaliser (Stafford's Mix13): a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _stream_key(seed, stream):
    """Key of one stream: ``seed`` (uint64) and ``stream`` (int) scrambled together."""
    return _mix64(_mix64(np.uint64(seed) ^ _SALT) + (np.uint64(stream) + _ONE) * GOLDEN)


@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _row_key(key, row):
    """Key of one row (``row`` >= 0, the global sample index) within a stream."""
    return _mix64(key ^ _mix64((np.uint64(row) + _ONE) * GOLDEN))


@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _word(rk, j):
    """The ``j``-th (0-based) 64-bit word of the row with key ``rk``."""
    return _mix64(rk + (np.uint64(j) + _ONE) * GOLDEN)


@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _u01(w):
    """Uniform in the open interval (0, 1) from the top 53 bits of ``w``."""
    return (float(np.int64(w >> _S11)) + 0.5) * _TWO_M53


@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _zig_candidate(r):
    """First ziggurat step on word ``r``: returns ``(x, accepted, idx, rabs)``."""
    idx = r & _MASK8
    r = r >> _S8
    rabs = (r >> _S1) & _MASK52
    x = float(np.int64(rabs)) * _WI[idx]
    if r & _ONE:
        x = -x
    return x, rabs < _KI[idx], idx, rabs


@njit(parallel=False, fastmath=False, cache=True)
def _normal_slow(rk, c):
    """Normal number ``c`` of the row with key ``rk`` when its first candidate was rejected.

    Retries and the wedge / tail uniforms come from the sub-stream with key
    ``_row_key(rk, c)``, so entry ``c`` stays a function of ``(rk, c)`` alone.
    """
    sk = _row_key(rk, c)
    j = 0
    r = _word(rk, c)
    while True:
        x, ok, idx, rabs = _zig_candidate(r)
        if ok:
            return x
        if idx == 0:
            while True:
                xx = -_INV_R * math.log(_u01(_word(sk, j)))
                yy = -math.log(_u01(_word(sk, j + 1)))
                j += 2
                if yy + yy > xx * xx:
                    if (rabs >> _S8) & _ONE:
                        return -(_R + xx)
                    return _R + xx
        else:
            fi1 = _FI[idx - _ONE]
            fi0 = _FI[idx]
            u = _u01(_word(sk, j))
            j += 1
            if (fi1 - fi0) * u + fi0 < math.exp(-0.5 * x * x):
                return x
        r = _word(sk, j)
        j += 1


@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _normal_at(rk, c):
    """Standard normal number ``c`` (0-based) of the row with key ``rk``.

    The ziggurat's first candidate uses word ``c`` (accepted 98.8 % of the time); a rejected
    candidate continues in :func:`_normal_slow`.
    """
    x, ok, idx, rabs = _zig_candidate(_word(rk, c))
    if ok:
        return x
    return _normal_slow(rk, c)


@njit(inline="always", parallel=False, fastmath=False, cache=True)
def _normal_row(rk, out, scale):
    """out[c] = scale * _normal_at(rk, c) for every c: a branch-free (SIMD) pass over the
    first candidates, marking rejections with NaN, then a pass that redoes those."""
    n = out.shape[0]
    for c in range(n):
        x, ok, idx, rabs = _zig_candidate(_word(rk, c))
        out[c] = scale * x if ok else np.nan
    for c in range(n):
        if out[c] != out[c]:
            out[c] = scale * _normal_slow(rk, c)


# ---------------------------------------------------------------------------------------
# fill kernels: rows are global sample indices start, start+1, ...
@njit(parallel=False, fastmath=False, cache=True)
def _hash_u64(seed, stream, row, j):
    """The raw 64-bit word ``j`` of ``row`` in ``stream`` (for tests and references)."""
    return _word(_row_key(_stream_key(seed, stream), row), j)


@njit(parallel=True, fastmath=False, cache=True)
def _fill_words(out, seed, stream, start):
    """out[i, j] = word j of row start + i (uint64)."""
    key = _stream_key(seed, stream)
    for i in prange(out.shape[0]):
        rk = _row_key(key, start + i)
        for j in range(out.shape[1]):
            out[i, j] = _word(rk, j)


@njit(parallel=True, fastmath=False, cache=True)
def _fill_uniform(out, seed, stream, start):
    """out[i, j] = uniform (0, 1) from word j of row start + i."""
    key = _stream_key(seed, stream)
    for i in prange(out.shape[0]):
        rk = _row_key(key, start + i)
        for j in range(out.shape[1]):
            out[i, j] = _u01(_word(rk, j))


@njit(parallel=True, fastmath=False, cache=True)
def _fill_normal(out, seed, stream, start, scale):
    """out[i, c] = scale * normal number c of row start + i."""
    key = _stream_key(seed, stream)
    for i in prange(out.shape[0]):
        _normal_row(_row_key(key, start + i), out[i], scale)
