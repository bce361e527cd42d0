"""Chunked, counter-seeded generation of training pairs (x, y = A x + e).

:func:`generate` draws signals from a prior (fastinv/problem/priors.py), applies the operator
through BLAS, and adds noise, one chunk of rows at a time, writing straight into the output arrays.
When the prior draws each signal as ``x = z F`` from r <= n/2 coefficients (the smooth prior:
r is about 100 whatever n), ``A x`` is computed as ``z (F Aᵀ)``: two N x r x n products
instead of the N x n x n one, so generation costs less than the product ``X Aᵀ`` alone
(bench/test_data.py). Y then equals ``X Aᵀ + E`` to rounding, not bit for bit.

Reproducibility: row ``i`` of X and of the noise is a function of ``(seed, i)`` only
(counter-based generator, fastinv/kernels/rng.py), so the result does not depend on
``chunk_size`` or on the number of Numba threads, and ``generate(N)`` is a prefix of
``generate(N')`` for N < N'. The products with A are made on blocks of a fixed number of
rows aligned to global row indices (:func:`fastinv.problem.blocks.row_block`), so Y is bitwise
reproducible too, for a given BLAS library and BLAS thread count (BLAS may round differently
with another thread count; the difference is at the level of machine precision).
"""

from __future__ import annotations

import numpy as np

from fastinv._device import float_dtype
from fastinv._validation import check_2d, check_finite, check_float, check_int
from fastinv.errors import FastinvError
from fastinv.io import check_memory
from fastinv.problem.blocks import aligned_matmul, row_block
from fastinv.problem.priors import Prior, as_seed, make_prior

__all__ = ["NOISE_TYPES", "generate"]

NOISE_TYPES = ("relative", "absolute")
#: default chunk, in entries of X: 2**25 (256 MB of float64) when writing float64 in place,
#: 2**23 for float32 output (two float64 scratch arrays of 64 MB)
_CHUNK_ELEMS = 1 << 25
_CHUNK_ELEMS_F32 = 1 << 23


def generate(
    op,
    *,
    n_samples: int,
    prior: str | Prior = "smooth",
    noise: float = 0.01,
    noise_type: str = "relative",
    seed=0,
    chunk_size: int | None = None,
    dtype=np.float64,
    prior_params: dict | None = None,
    start: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw N training pairs: signals X from a prior and measurements Y = X Aᵀ + E.

    Parameters
    ----------
    op : Operator or ndarray of shape (m, n)
        the forward operator (an object with an ``.A`` attribute, or the matrix itself);
        rectangular operators (m ≠ n: super-resolution, a deepinv ``Downsampling``) too.
    n_samples : int
        number of pairs N >= 1.
    prior : str or Prior
        prior name (see ``fastinv.problem.priors.PRIORS``: gaussian, smooth, piecewise_constant,
        sparse) or a Prior of length n.
    noise : float
        noise level >= 0 (0: noise-free). ``noise_type="relative"``: each sample gets
        ``e_i = noise * ||A x_i|| * z_i / ||z_i||`` with z_i standard normal, so
        ``||e_i|| / ||A x_i|| = noise`` exactly (rows with A x_i = 0 get no noise).
        ``noise_type="absolute"``: e_i iid N(0, noise^2) entries.
    noise_type : {"relative", "absolute"}
    seed : int or numpy.random.Generator
        row i of (X, Y) depends only on (seed, i).
    chunk_size : int, optional
        rows per chunk (memory of the temporaries; rounded up to whole BLAS blocks of
        ``fastinv.problem.blocks.row_block(n)`` rows, about 2**21 / n). Default: 2**25 / n rows
        for float64 (only the smooth prior's n_samples x rank coefficients are extra memory),
        2**23 / n for float32 (two float64 scratch arrays). The result does not depend on it.
    dtype : {numpy.float64, numpy.float32}
        output dtype (any other is refused). Everything is computed in float64 and each
        chunk is rounded once at the end, so the float32 result equals the float64 result
        cast to float32.
    prior_params : dict, optional
        parameters of the prior (when ``prior`` is a name).
    start : int
        global index of the first row: the result is rows ``start .. start + n_samples`` of
        the data set of this seed, bitwise (so ranks or workers can each draw their own rows
        and their union is one draw of all rows).

    Returns
    -------
    X : ndarray of shape (N, n)
        signals, one per row.
    Y : ndarray of shape (N, m)
        measurements ``X @ A.T + E``.
    """
    A = _operator_matrix(op)
    m, n = A.shape
    N = check_int(n_samples, "n_samples", lo=1)
    pr = _resolve_prior(prior, n, prior_params)
    noise = check_float(noise, "noise", lo=0)
    _check_noise_type(noise_type)
    out_dtype = _output_dtype(dtype)
    key = as_seed(seed)
    start = check_int(start, "start", lo=0)
    block = row_block(n)
    chunk = _plan_chunks(N, max(m, n), chunk_size, block, out_dtype)
    out = _Output(N, n, m, chunk, out_dtype)
    add_noise = _NoiseStep(noise, noise_type, m)
    forward = _forward_step(pr, A, block, min(chunk, N))
    for s in range(0, N, chunk):
        e = min(N, s + chunk)
        xc, yc = out.chunk(s, e)
        forward(xc, yc, key, start + s, out.native)
        add_noise(yc, key, start + s)
        out.store(s, e, xc, yc)
        _check_overflow(out.Y[s:e], A)
    return out.X, out.Y


def _check_overflow(Y: np.ndarray, A) -> None:
    """Refuse measurements that overflowed (A scaled near the largest float): a finite sum
    means every entry is finite; only when it is not are the entries looked at."""
    with np.errstate(all="ignore"):
        if np.isfinite(Y.sum()) or np.isfinite(Y).all():
            return
    if not isinstance(A, np.ndarray):
        raise FastinvError(
            f"y = A x overflows {Y.dtype} (or A x is not finite); check the operator's scale"
        )
    amax = float(np.abs(A).max())
    raise FastinvError(
        f"y = A x overflows {Y.dtype} (the largest entry of A is {amax:.3g}); rescale A, e.g. "
        f"divide it by {amax:.3g}, and scale the reconstructions back afterwards"
    )


# ---------------------------------------------------------------------------------------
# validate
def _operator_matrix(op):
    """The dense float64 A (m, n), or the Operator itself when it is not stored as a matrix
    (then y = A x goes through its ``apply``: FFT, DCT, Kronecker, mask, sparse, ...)."""
    if getattr(op, "linear_map", None) is not None and op.structure != "dense":
        return op
    A = op.A if hasattr(op, "A") else op
    A = check_2d(A, "operator matrix A")
    if A.size == 0:
        raise FastinvError(
            f"operator matrix A must be non-empty, got shape {A.shape}; pass an (m, n) matrix"
        )
    check_finite(A, "operator matrix A")
    return np.ascontiguousarray(A, dtype=np.float64)


def _resolve_prior(prior, n: int, prior_params) -> Prior:
    """The prior object: ``prior`` itself (of length n) or one made by name."""
    if isinstance(prior, Prior):
        if prior_params:
            raise FastinvError(
                "prior_params were given with a Prior object; set the parameters in "
                "make_prior(...) instead"
            )
        if prior.n != n:
            raise FastinvError(
                f"prior has length {prior.n} but the operator's signals have n = {n} entries; "
                f"make the prior with n={n}"
            )
        return prior
    if prior_params is not None and not isinstance(prior_params, dict):
        raise FastinvError(
            f"prior_params must be a dict of parameters, got {type(prior_params).__name__}"
        )
    return make_prior(prior, n, **(prior_params or {}))


def _check_noise_type(noise_type) -> None:
    if noise_type not in NOISE_TYPES:
        raise FastinvError(
            f"unknown noise_type {noise_type!r}; choose one of: {', '.join(NOISE_TYPES)}"
        )


def _output_dtype(dtype) -> np.dtype:
    """float32 or float64; anything else is refused (an integer or float16 result would
    silently lose the data)."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d is None or d not in (np.dtype(np.float32), np.dtype(np.float64)):
        shown = repr(d.name) if d is not None else repr(dtype)
        raise FastinvError(
            f"dtype must be float32 or float64, got {shown}; pass dtype=np.float32 or "
            "np.float64 and convert the result afterwards if you need another type"
        ) from None
    return float_dtype(d)


# ---------------------------------------------------------------------------------------
# plan chunks and allocate
def _plan_chunks(N: int, n: int, chunk_size, block: int, out_dtype: np.dtype) -> int:
    """Rows per chunk: whole BLAS blocks (so blocks stay aligned to global rows), <= N
    rounded up to a block."""
    if chunk_size is None:
        # float64 writes straight into X and Y: big chunks, few hand-overs between the Numba
        # and the BLAS thread pools (each costs spin-waiting); float32 needs float64 scratch
        chunk = max(1, (_CHUNK_ELEMS if out_dtype == np.float64 else _CHUNK_ELEMS_F32) // n)
    else:
        chunk = check_int(chunk_size, "chunk_size", lo=1)
    chunk = -(-chunk // block) * block
    return min(chunk, -(-N // block) * block)


class _Output:
    """X and Y, and the float64 scratch that a float32 result is computed in, chunk by chunk
    (each chunk rounded once when stored)."""

    def __init__(self, N: int, n: int, m: int, chunk: int, dtype: np.dtype) -> None:
        self.native = dtype == np.float64
        need = N * (n + m) * dtype.itemsize + (0 if self.native else chunk * (n + m) * 8)
        check_memory(
            need,
            "generating X and Y",
            suggestion="use fewer samples, dtype=float32, or generate in pieces with "
            "fastinv.problem.priors.make_prior(...).sample(..., start=...)",
        )
        self.X = np.empty((N, n), dtype=dtype)
        self.Y = np.empty((N, m), dtype=dtype)
        if not self.native:
            self._xbuf = np.empty((chunk, n))
            self._ybuf = np.empty((chunk, m))

    def chunk(self, s: int, e: int) -> tuple[np.ndarray, np.ndarray]:
        """float64 arrays for rows ``s .. e`` of X and Y (the outputs themselves when
        float64; fresh pages are faulted in with Numba threads, not inside BLAS)."""
        from fastinv.kernels.priors import _touch_rows

        if not self.native:
            return self._xbuf[: e - s], self._ybuf[: e - s]
        _touch_rows(self.Y[s:e])
        return self.X[s:e], self.Y[s:e]

    def store(self, s: int, e: int, xc: np.ndarray, yc: np.ndarray) -> None:
        """Cast: round the float64 chunk into a float32 result (nothing to do for float64)."""
        from fastinv.kernels.priors import _copy_rows

        if not self.native:
            _copy_rows(self.X[s:e], xc)
            _copy_rows(self.Y[s:e], yc)


# ---------------------------------------------------------------------------------------
# sample the prior and apply A
def _forward_step(pr: Prior, A, block: int, rows: int):
    """The step that fills a chunk of X and writes A x into Y: through the prior's low-rank
    factor when it has few enough coefficients, else sample and multiply by A (a dense
    matrix, or an Operator's ``apply`` row by row)."""
    lr = pr.low_rank()
    n = A.shape[1]
    if not isinstance(A, np.ndarray):
        return _MapForward(pr, A, rows)
    if lr is not None and 2 * lr.factor.shape[0] <= n:
        return _LowRankForward(pr, lr.factor, lr.block, A, block, rows)
    return _DenseForward(pr, A, block, rows)


class _MapForward:
    """x from the prior, then y = A x through the operator's ``apply`` (each row on its own,
    so that the rows do not depend on the chunking)."""

    def __init__(self, pr: Prior, op, rows: int) -> None:
        self.pr, self.op = pr, op
        self.work = pr.workspace(rows)

    def __call__(self, xc, yc, key, start: int, touch: bool) -> None:
        self.pr.fill(xc, key, start, self.work)
        yc[...] = self.op.apply(np.asarray(xc, dtype=np.float64))


class _DenseForward:
    """x from the prior, then y = x Aᵀ."""

    def __init__(self, pr: Prior, A: np.ndarray, block: int, rows: int) -> None:
        self.pr, self.At, self.block = pr, A.T, block
        self.work = pr.workspace(rows)

    def __call__(self, xc, yc, key, start: int, touch: bool) -> None:
        self.pr.fill(xc, key, start, self.work)
        aligned_matmul(xc, self.At, yc, start, self.block)


class _LowRankForward:
    """x = z F and A x = z (F Aᵀ) from the prior's r coefficients z: two (N x r) products
    replace the (N x n)(n x n) one; x is bitwise what the prior's own sampler gives."""

    def __init__(self, pr: Prior, F, x_block: int, A: np.ndarray, block: int, rows: int):
        self.pr, self.F, self.x_block, self.block = pr, F, x_block, block
        self.G = np.ascontiguousarray(F @ A.T)
        self.coeffs = np.empty((rows, F.shape[0]))

    def __call__(self, xc, yc, key, start: int, touch: bool) -> None:
        from fastinv.kernels.priors import _touch_rows

        if touch:
            _touch_rows(xc)
        z = self.coeffs[: xc.shape[0]]
        self.pr.fill_coeffs(z, key, start)
        # the prior's own blocking for X, so that its bits equal pr.sample's
        aligned_matmul(z, self.F, xc, start, self.x_block)
        aligned_matmul(z, self.G, yc, start, self.block)


# ---------------------------------------------------------------------------------------
# add noise
class _NoiseStep:
    """Adds the noise of rows ``start ..`` to a chunk of Y (nothing when noise is 0)."""

    def __init__(self, noise: float, noise_type: str, m: int) -> None:
        self.noise, self.relative = noise, noise_type == "relative"
        self.scratch = None
        if noise > 0:
            import numba

            self.scratch = np.empty((numba.config.NUMBA_NUM_THREADS, m))

    def __call__(self, yc, key, start: int) -> None:
        from fastinv.kernels.priors import _add_noise_absolute, _add_noise_relative

        if self.noise <= 0:
            return
        kernel = _add_noise_relative if self.relative else _add_noise_absolute
        kernel(yc, key, start, self.noise, self.scratch)
