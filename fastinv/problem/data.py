"""Chunked, counter-seeded generation of training pairs (x, y = A x + e).

:func:`generate` draws signals from a prior (fastinv/priors.py), applies the operator through
BLAS, and adds noise, one chunk of rows at a time, writing straight into the output arrays.
When the prior draws each signal as ``x = z F`` from r <= n/2 coefficients (the smooth prior:
r is about 100 whatever n), ``A x`` is computed as ``z (F Aᵀ)``: two N x r x n products
instead of the N x n x n one, so generation costs less than the product ``X Aᵀ`` alone
(bench/test_data.py). Y then equals ``X Aᵀ + E`` to rounding, not bit for bit.

Reproducibility: row ``i`` of X and of the noise is a function of ``(seed, i)`` only
(counter-based generator, fastinv/kernels/rng.py), so the result does not depend on
``chunk_size`` or on the number of Numba threads, and ``generate(N)`` is a prefix of
``generate(N')`` for N < N'. The products with A are made on blocks of a fixed number of
rows aligned to global row indices (:func:`fastinv.problem.priors.row_block`), so Y is bitwise
reproducible too, for a given BLAS library and BLAS thread count (BLAS may round differently
with another thread count; the difference is at the level of machine precision).
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from fastinv._device import float_dtype
from fastinv._validation import check_2d, check_finite
from fastinv.errors import FastinvError
from fastinv.problem.priors import Prior, aligned_matmul, as_seed, check_int, make_prior, row_block

NOISE_TYPES = ("relative", "absolute")
#: default chunk, in entries of X: 2**25 (256 MB of float64) when writing float64 in place,
#: 2**23 for float32 output (two float64 scratch arrays of 64 MB)
_CHUNK_ELEMS = 1 << 25
_CHUNK_ELEMS_F32 = 1 << 23


def _operator_matrix(op) -> np.ndarray:
    A = op.A if hasattr(op, "A") else op
    A = check_2d(A, "operator matrix A")
    if A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise FastinvError(
            f"operator matrix A must be square and non-empty, got shape {A.shape}; "
            "pass an (n, n) matrix"
        )
    check_finite(A, "operator matrix A")
    return np.ascontiguousarray(A, dtype=np.float64)


def _memory_check(nbytes: int) -> None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return
    if nbytes > 0.9 * total:
        raise FastinvError(
            f"generating X and Y needs {nbytes / 2**30:.1f} GiB but this machine has "
            f"{total / 2**30:.1f} GiB; use fewer samples, dtype=float32, or generate in "
            "pieces with fastinv.problem.priors.make_prior(...).sample(..., start=...)"
        )


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
) -> tuple[np.ndarray, np.ndarray]:
    """Draw N training pairs: signals X from a prior and measurements Y = X Aᵀ + E.

    Parameters
    ----------
    op : Operator or ndarray of shape (n, n)
        the forward operator (an object with an ``.A`` attribute, or the matrix itself).
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
        ``fastinv.problem.priors.row_block(n)`` rows, about 2**21 / n). Default: 2**25 / n rows
        for float64 (only the smooth prior's n_samples x rank coefficients are extra memory),
        2**23 / n for float32 (two float64 scratch arrays). The result does not depend on it.
    dtype : {numpy.float64, numpy.float32}
        output dtype. Everything is computed in float64 and each chunk is rounded once at the
        end, so the float32 result equals the float64 result cast to float32.
    prior_params : dict, optional
        parameters of the prior (when ``prior`` is a name).

    Returns
    -------
    X : ndarray of shape (N, n)
        signals, one per row.
    Y : ndarray of shape (N, n)
        measurements ``X @ A.T + E``.
    """
    from fastinv.kernels.priors import (
        _add_noise_absolute,
        _add_noise_relative,
        _copy_rows,
        _touch_rows,
    )

    A = _operator_matrix(op)
    n = A.shape[0]
    N = check_int(n_samples, "n_samples", minimum=1)
    if isinstance(prior, Prior):
        if prior_params:
            raise FastinvError(
                "prior_params were given with a Prior object; set the parameters in "
                "make_prior(...) instead"
            )
        if prior.n != n:
            raise FastinvError(
                f"prior has length {prior.n} but the operator is {n} x {n}; "
                f"make the prior with n={n}"
            )
        pr = prior
    else:
        if prior_params is not None and not isinstance(prior_params, dict):
            raise FastinvError(
                f"prior_params must be a dict of parameters, got {type(prior_params).__name__}"
            )
        pr = make_prior(prior, n, **(prior_params or {}))
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not np.isfinite(noise):
        raise FastinvError(f"noise must be a finite real number >= 0, got {noise!r}")
    noise = float(noise)
    if noise < 0:
        raise FastinvError(f"noise must be >= 0, got {noise}; use 0 for noise-free data")
    if noise_type not in NOISE_TYPES:
        raise FastinvError(
            f"unknown noise_type {noise_type!r}; choose one of: {', '.join(NOISE_TYPES)}"
        )
    try:
        out_dtype = float_dtype(dtype)
    except TypeError:
        raise FastinvError(f"dtype must be float32 or float64, got {dtype!r}") from None
    key = as_seed(seed)

    block = row_block(n)
    native = out_dtype == np.float64
    if chunk_size is None:
        # float64 writes straight into X and Y: big chunks, few hand-overs between the Numba
        # and the BLAS thread pools (each costs spin-waiting); float32 needs float64 scratch
        chunk = max(1, (_CHUNK_ELEMS if native else _CHUNK_ELEMS_F32) // n)
    else:
        chunk = check_int(chunk_size, "chunk_size", minimum=1)
    chunk = -(-chunk // block) * block  # whole blocks, so blocks stay aligned to global rows
    chunk = min(chunk, -(-N // block) * block)

    _memory_check(2 * N * n * out_dtype.itemsize + (0 if native else 2 * chunk * n * 8))
    X = np.empty((N, n), dtype=out_dtype)
    Y = np.empty((N, n), dtype=out_dtype)
    if not native:
        xbuf = np.empty((chunk, n))
        ybuf = np.empty((chunk, n))
    scratch = None
    if noise > 0:
        import numba

        scratch = np.empty((numba.config.NUMBA_NUM_THREADS, n))
    At = A.T
    F = pr._factor()
    if F is not None and 2 * F.shape[0] <= n:
        # x = z F (rank coefficients per sample)  =>  A x = z (F Aᵀ): two (N x rank) products
        # replace the (N x n)(n x n) one; x is bitwise what pr.sample gives
        G = np.ascontiguousarray(F @ At)
        coeffs = np.empty((min(chunk, N), F.shape[0]))
    else:
        F = None
        work = pr._workspace(min(chunk, N))
    for s in range(0, N, chunk):
        e = min(N, s + chunk)
        xc = X[s:e] if native else xbuf[: e - s]
        yc = Y[s:e] if native else ybuf[: e - s]
        if native:  # fault the fresh pages in with Numba threads, not inside BLAS
            _touch_rows(yc)
        if F is None:
            pr._fill(xc, key, s, work)
            aligned_matmul(xc, At, yc, s, block)
        else:
            if native:
                _touch_rows(xc)
            z = coeffs[: e - s]
            pr._fill_coeffs(z, key, s)
            # the prior's own blocking for X, so that its bits equal pr.sample's
            aligned_matmul(z, F, xc, s, getattr(pr, "_block", block))
            aligned_matmul(z, G, yc, s, block)
        if noise > 0:
            if noise_type == "relative":
                _add_noise_relative(yc, key, s, noise, scratch)
            else:
                _add_noise_absolute(yc, key, s, noise, scratch)
        if not native:
            _copy_rows(X[s:e], xc)
            _copy_rows(Y[s:e], yc)
    return X, Y
