"""The affine surrogate of a model, by streaming least squares.

A model ``f`` (a trained network, or any map ``(m, n) -> (m, n)``) is summarised by the
affine map that best explains it on a set of probes ``y_i``::

    x̂_i = f(y_i) ≈ C y_i + b,     C = M_xy M_yy⁻¹,  b = x̄ − C ȳ,

with the co-moment matrices ``M_yy = Σ (y_i − ȳ)(y_i − ȳ)ᵀ`` and
``M_xy = Σ (x_i − x̄)(y_i − ȳ)ᵀ``. They are accumulated chunk by chunk
(:class:`~fastinv.linalg.moments.MomentAccumulator`, where the numerics are described), so
the memory is O(n²) -- the N×n data, or the N×n outputs of ``f``, are never stacked.

:func:`fit_linear` fits data ``(Y, X)``; :func:`fit_surrogate` fits a model on probes. Both
can hold out a random fraction of the rows: the held-out R² is then computed by a second
streamed pass over those rows, from the residuals themselves.

Cost
----
``fit_linear`` costs what its BLAS/LAPACK calls cost (one ``syrk`` and one ``gemm`` per
chunk, one Cholesky solve). Extra memory: the two co-moment matrices, one more n×n array on
the eigh fallback, plus one chunk when chunks must be cast (float32) or shifted. Chunks are
fed to one multi-threaded BLAS call each; Python-thread accumulators would not help, since
SciPy's f2py BLAS wrappers hold the GIL -- use ``MomentAccumulator.merge`` across processes
instead.

``jacobians``, ``mean_jacobian`` (:mod:`fastinv.linalg.jacobians`), ``LinearFit`` and
``MomentAccumulator`` (:mod:`fastinv.linalg.moments`) are importable from here too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from fastinv._device import is_torch, resolve_device, to_numpy
from fastinv._validation import check_float, check_int, check_model_output
from fastinv.errors import FastinvError
from fastinv.linalg.jacobians import jacobians, mean_jacobian, module_dtype_device
from fastinv.linalg.moments import (
    LinearFit,
    MomentAccumulator,
    R2Stream,
    abs_row,
    check_real_2d,
    chunk_rows,
    raise_nonfinite,
    rows_text,
)

__all__ = [
    "LinearFit",
    "MomentAccumulator",
    "fit_linear",
    "fit_surrogate",
    "holdout_mask",
    "jacobians",
    "mean_jacobian",
    "surrogate_moments",
]

# ----------------------------------------------------------------------------------------
# rows: chunks, holdout


class _Rows(NamedTuple):
    """N rows streamed in chunks of ``chunk`` rows; ``mask`` marks the held-out ones; the
    rows are numbered from ``offset`` in error messages (a part of a larger probe set)."""

    N: int
    chunk: int
    mask: np.ndarray | None
    offset: int = 0

    def chunks(self, held: bool) -> Iterator[tuple]:
        """(start, stop, sel, row0): sel is None (all rows of the slice) or a boolean row
        selector; row0 is ``offset + start`` or the absolute indices of the selected rows."""
        N, chunk, mask, offset = self
        for a in range(0, N, chunk):
            b = min(N, a + chunk)
            if mask is None:
                yield a, b, None, offset + a
                continue
            sel = mask[a:b] if held else ~mask[a:b]
            if sel.any():
                yield a, b, sel, offset + a + np.flatnonzero(sel)

    @property
    def n_fitted(self) -> int:
        """Rows the fit is accumulated on (the rows not held out)."""
        return self.N - (0 if self.mask is None else int(self.mask.sum()))


def holdout_mask(N: int, holdout, seed) -> np.ndarray | None:
    """The rows of ``N`` held out of a fit (True) for ``holdout`` fraction and ``seed``, as
    :func:`fit_linear` and :func:`fit_surrogate` draw them; None when ``holdout`` is 0."""
    h = check_float(holdout, "holdout", lo=0, hi=1, hi_open=True)
    if h == 0.0:
        return None
    k = int(round(h * N))
    if k < 2 or N - k < 1:
        raise FastinvError(
            f"holdout={h} of N={N} rows leaves {k} held-out and {N - k} training rows; "
            "use more rows or a holdout fraction that leaves at least 2 of each"
        )
    rng = np.random.default_rng(seed)
    mask = np.zeros(N, dtype=bool)
    mask[rng.choice(N, size=k, replace=False)] = True
    return mask


def _sub_rows(row0, i: int, m: int):
    return row0[i : i + m] if isinstance(row0, np.ndarray) else row0 + i


def _take(A, a: int, b: int, sel):
    if sel is None:
        return A[a:b]
    if is_torch(A):
        import torch

        return A[a:b][torch.as_tensor(sel, device=A.device)]
    return A[a:b][sel]


def _accumulate(acc: MomentAccumulator, pair: Callable, what_x: str, rows: _Rows) -> None:
    """Add the rows that are not held out to ``acc``; ``pair(start, stop, sel, row0)``
    returns the chunk ``(Y_c, X_c)``."""
    for a, b, sel, r0 in rows.chunks(held=False):
        Yc, Xc = pair(a, b, sel, r0)
        acc.update(Yc, Xc, row0=r0, what_y="Y", what_x=what_x)


def _solve_and_score(
    acc: MomentAccumulator,
    pair: Callable,
    what_x: str,
    rows: _Rows,
    intercept: bool,
    ridge: float,
) -> LinearFit:
    """Solve the accumulated moments in place, then score the held-out rows (``pair`` as
    in :func:`_accumulate`)."""
    # the training mean of x: the reference about which the held-out deviations are summed
    xref = None if rows.mask is None else acc.mean_x
    fit = acc.solve(intercept=intercept, ridge=ridge, in_place=True, stacklevel=4)
    if rows.mask is None:
        return fit
    sc = R2Stream(fit.C, fit.b, xref, acc.device)
    for a, b, sel, r0 in rows.chunks(held=True):
        Yc, Xc = pair(a, b, sel, r0)
        sc.update(Yc, Xc, r0, "Y", what_x)
    r2h = sc.result()
    fit.r2_heldout = float(r2h)
    fit.r2 = float(r2h)
    fit.n_heldout = int(rows.mask.sum())
    return fit


# ----------------------------------------------------------------------------------------
# data


def fit_linear(
    Y,
    X,
    *,
    intercept: bool = True,
    ridge: float = 0.0,
    chunk_size: int | None = None,
    holdout: float = 0.0,
    seed: int = 0,
) -> LinearFit:
    """Least-squares affine fit ``X ≈ Y Cᵀ + b`` from streamed moments.

    Parameters
    ----------
    Y : ndarray or torch.Tensor of shape (N, n_in)
        Inputs, one sample per row (float32 or float64; accumulated in float64).
    X : ndarray or torch.Tensor of shape (N, n_out)
        Targets.
    intercept : bool
        Fit ``b`` too (default). Without it the raw moments about 0 are used.
    ridge : float
        Ridge on the covariance scale: ``C = Cov(x, y)(Cov(y) + ridge·I)⁻¹``.
    chunk_size : int, optional
        Rows per chunk (default: a chunk of Y and X together ≤ 64 MiB, 256..8192 rows).
    holdout : float
        Fraction of rows held out (random split by ``seed``) for an out-of-sample R²,
        computed by a streamed second pass. ``fit.r2`` is then the held-out R².
    seed : int
        Seed of the holdout split.

    Returns
    -------
    LinearFit

    Notes
    -----
    Torch tensors select the torch backend on their device (float64 on that device).
    Memory: the two co-moment matrices (``n_in² + n_in·n_out`` floats) plus one chunk;
    the solve works in place in them.
    """
    Y = check_real_2d(Y, "Y")
    X = check_real_2d(X, "X")
    N, n_in = Y.shape
    if X.shape[0] != N:
        raise FastinvError(f"X has {X.shape[0]} rows but Y has {N}; pass one target row per input")
    if N == 0:
        raise FastinvError("Y has no rows; pass at least one sample")
    n_out = X.shape[1]
    ridge = check_float(ridge, "ridge", lo=0)
    gpu = is_torch(Y) and Y.device.type != "cpu"
    chunk = chunk_rows(chunk_size, n_in, n_out, gpu=gpu)
    rows = _Rows(N, chunk, holdout_mask(N, holdout, seed))
    if is_torch(Y):
        acc = MomentAccumulator(n_in, n_out, backend="torch", device=Y.device)
    else:
        X = to_numpy(X)
        acc = MomentAccumulator(n_in, n_out)

    def pair(a, b, sel, r0):
        return _take(Y, a, b, sel), _take(X, a, b, sel)

    _accumulate(acc, pair, "X", rows)
    return _solve_and_score(acc, pair, "X", rows, intercept, ridge)


# ----------------------------------------------------------------------------------------
# a model on probes


def _call_model(f, x):
    try:
        return f(x)
    except Exception as e:  # noqa: BLE001 -- any model failure becomes one message
        raise FastinvError(
            f"the model raised {type(e).__name__}: {e} on a batch of shape {tuple(x.shape)}"
        ) from e


def _module_evaluator(f, keep_tensor: bool, n_out: int):
    """``ev(Yc, row0)`` for a torch module: its dtype and device, no_grad, checked outputs."""
    import torch

    dtype, dev = None, None

    def ev(Yc, row0):
        nonlocal dtype, dev
        if dtype is None:
            dtype, dev = module_dtype_device(f, Yc)
        if isinstance(Yc, torch.Tensor):
            yt = Yc.detach().to(device=dev, dtype=dtype)
        else:
            yt = torch.as_tensor(np.asarray(Yc)).to(device=dev, dtype=dtype)
        with torch.no_grad():
            out = _call_model(f, yt)
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(np.asarray(out))
        check_model_output(out.shape, yt.shape, n_out)
        fin = torch.isfinite(out)
        if not bool(fin.all()):
            _bad_rows(fin.cpu().numpy(), row0)
        out = out.detach()
        return out if keep_tensor else out.cpu().numpy()

    return ev


def _callable_evaluator(f, n_out: int):
    """``ev(Yc, row0)`` for a callable on NumPy arrays, with checked outputs."""

    def ev(Yc, row0):
        Yc = to_numpy(Yc)
        out = np.asarray(to_numpy(_call_model(f, Yc)))
        check_model_output(out.shape, Yc.shape, n_out)
        if out.dtype.kind not in "fiu":
            raise FastinvError(f"the model returned dtype {out.dtype}; it must return real numbers")
        fin = np.isfinite(out)
        if not fin.all():
            _bad_rows(fin, row0)
        return out

    return ev


def _make_evaluator(f, keep_tensor: bool, n_out: int):
    """``ev(Yc, row0) -> outputs`` with the shape (``n_out`` columns) / finiteness /
    exception checks."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(f, torch.nn.Module):
        return _module_evaluator(f, keep_tensor, n_out)
    if not callable(f):
        raise FastinvError(
            f"f must be a torch.nn.Module or a callable (m, n) -> (m, n), got {type(f).__name__}"
        )
    return _callable_evaluator(f, n_out)


def _batched(ev, batch: int, device):
    """``outputs(Yc, row0)``: ``ev`` on at most ``batch`` rows at a time, concatenated
    (as tensors on ``device`` when one is given, else as NumPy arrays)."""

    def outputs(Yc, row0):
        m = Yc.shape[0]
        if m <= batch:
            return ev(Yc, row0)
        parts = [ev(Yc[i : i + batch], _sub_rows(row0, i, batch)) for i in range(0, m, batch)]
        if device is None:
            return np.concatenate(parts)
        import torch

        return torch.cat([torch.as_tensor(p).to(device) for p in parts])

    return outputs


def _check_probes(Yc, row0) -> None:
    """NaN/Inf in probes are reported as such (before the model turns them into NaN outputs)."""
    if is_torch(Yc):
        if not bool(sys.modules["torch"].isfinite(Yc).all()):
            raise_nonfinite(to_numpy(Yc), "Y", row0)
    elif Yc.dtype.kind == "f" and not np.isfinite(Yc).all():
        raise_nonfinite(Yc, "Y", row0)


def _bad_rows(fin: np.ndarray, row0) -> None:
    rows = np.flatnonzero(~fin.all(axis=1))
    first = abs_row(row0, int(rows[0]))
    raise FastinvError(
        f"model output contains NaN or Inf in {rows.size} row(s) of the batch of input rows "
        f"{rows_text(row0, fin.shape[0])} (first: input row {first}); check the model and "
        "its inputs"
    )


def _resolve_backend(f, Y, device):
    """(backend, torch device or None) for fit_surrogate."""
    if device is not None:
        dev = resolve_device(device)
        return ("cpu", None) if dev.type == "cpu" else ("torch", dev)
    torch = sys.modules.get("torch")
    dev = None
    if torch is not None and isinstance(f, torch.nn.Module):
        for t in list(f.parameters()) + list(f.buffers()):
            dev = t.device
            break
    if dev is None and is_torch(Y):
        dev = Y.device
    if dev is not None and dev.type != "cpu":
        return "torch", dev
    return "cpu", None


def fit_surrogate(
    f,
    Y,
    *,
    intercept: bool = True,
    ridge: float = 0.0,
    chunk_size: int | None = None,
    holdout: float = 0.0,
    seed: int = 0,
    device=None,
    batch_size: int | None = None,
    n_out: int | None = None,
    moments: MomentAccumulator | None = None,
) -> LinearFit:
    """Affine surrogate ``f(y) ≈ C y + b`` of a model, evaluated chunk by chunk on probes.

    Parameters
    ----------
    f : torch.nn.Module or callable
        Maps (N, m) to (N, n_out) (n_out = m unless given). A module runs under
        ``torch.no_grad()`` in its own dtype and device (its mode -- train/eval -- is left
        as it is); inputs are converted per batch.
        A callable receives NumPy arrays.
    Y : ndarray or torch.Tensor of shape (N, n)
        Probes, one per row.
    intercept, ridge, holdout, seed
        As in :func:`fit_linear`.
    chunk_size : int, optional
        Rows whose moments are accumulated at once (default as in :func:`fit_linear`).
    device : str or torch.device, optional
        Where the moments are accumulated: None follows the model (a CUDA module, or CUDA
        probes, use the torch backend on that device; else the CPU/BLAS backend); "cpu",
        "cuda", "cuda:1" or "auto" choose explicitly.
    batch_size : int, optional
        Rows per call of ``f`` (default: ``chunk_size``).
    n_out : int, optional
        Width of the outputs (the signal size n of a rectangular operator's (m, n)); default
        the inputs' width. C then has shape (n_out, m).
    moments : MomentAccumulator, optional
        The fitted rows' moments, already accumulated elsewhere (by :func:`surrogate_moments`
        over parts of ``Y``, merged -- e.g. on the ranks of a process group): ``f`` then
        runs only on the held-out rows, for R². It must hold exactly the rows of ``Y`` that
        ``holdout`` and ``seed`` do not hold out; it is used up (solved in place).

    Returns
    -------
    LinearFit
        With ``r2`` the held-out R² when ``holdout > 0``.

    Raises
    ------
    FastinvError
        If ``f`` returns the wrong shape or NaN/Inf, or raises; if ``moments`` do not match
        ``Y``.

    Notes
    -----
    The outputs of ``f`` are never stacked: memory is the O(n²) moments plus one chunk.
    With a holdout the held-out rows are evaluated once, in a second pass after the solve.
    """
    ridge = check_float(ridge, "ridge", lo=0)
    pr = _probes(f, Y, chunk_size, batch_size, device, n_out, moments)
    rows = _Rows(pr.N, pr.chunk, holdout_mask(pr.N, holdout, seed))
    if moments is None:
        _accumulate(pr.acc, pr.pair, _OUTPUT, rows)
    else:
        _check_moments(moments, rows)
    return _solve_and_score(pr.acc, pr.pair, _OUTPUT, rows, intercept, ridge)


def surrogate_moments(
    f,
    Y,
    *,
    start: int = 0,
    total: int | None = None,
    holdout: float = 0.0,
    seed: int = 0,
    chunk_size: int | None = None,
    device=None,
    batch_size: int | None = None,
    n_out: int | None = None,
) -> MomentAccumulator:
    """The moments of ``(y, f(y))`` over the rows of a part of a probe set that a fit uses.

    ``Y`` holds rows ``start .. start + len(Y)`` of a probe set of ``total`` rows; the rows
    :func:`fit_surrogate` would hold out of all ``total`` (``holdout``, ``seed``) are
    skipped. Accumulators of parts that tile the probe set, merged
    (:meth:`MomentAccumulator.merge`, or :func:`fastinv.nets.distributed.allreduce_moments`
    across processes), are the moments one pass over the whole set accumulates: pass them
    to ``fit_surrogate(f, Y_all, holdout=..., seed=..., moments=merged)``.

    Parameters
    ----------
    f, chunk_size, device, batch_size, n_out
        As in :func:`fit_surrogate`.
    Y : ndarray or torch.Tensor of shape (N_part, n)
        This part's probes (may have no rows).
    start : int
        Number of ``Y``'s first row in the whole probe set.
    total : int, optional
        Rows of the whole probe set (default: ``start + len(Y)``).
    holdout, seed
        The split of the whole probe set, as given to :func:`fit_surrogate`.

    Returns
    -------
    MomentAccumulator
        This part's fitted rows (none when they are all held out).
    """
    Y = check_real_2d(Y, "Y")
    start = check_int(start, "start", lo=0)
    stop = start + Y.shape[0]
    total = stop if total is None else check_int(total, "total", lo=1)
    if stop > total:
        raise FastinvError(
            f"Y holds rows {start} .. {stop} of a probe set of total = {total} rows; give "
            "start and total so that the part lies inside the set"
        )
    mask = holdout_mask(total, holdout, seed)
    if Y.shape[0] == 0 and Y.shape[1] > 0:  # a part with no rows (more parts than probes)
        width = Y.shape[1] if n_out is None else check_int(n_out, "n_out", lo=1)
        return MomentAccumulator(Y.shape[1], width, **_backend_kw(f, Y, device))
    pr = _probes(f, Y, chunk_size, batch_size, device, n_out, None)
    part = None if mask is None else mask[start:stop]
    _accumulate(pr.acc, pr.pair, _OUTPUT, _Rows(pr.N, pr.chunk, part, start))
    return pr.acc


_OUTPUT = "the model's output"


class _Probes(NamedTuple):
    """Probes checked and chunked, the accumulator they go into, and ``pair(a, b, sel,
    row0)``: the chunk of probes and the model's checked outputs on them."""

    N: int
    chunk: int
    acc: MomentAccumulator
    pair: Callable


def _backend_kw(f, Y, device) -> dict:
    backend, dev = _resolve_backend(f, Y, device)
    return {"backend": backend, "device": dev}


def _probes(f, Y, chunk_size, batch_size, device, n_out, moments) -> _Probes:
    """The probes ``Y`` with the accumulator their moments go into (``moments``, or a new
    one on the backend :func:`_resolve_backend` picks) and the model evaluated on chunks."""
    Y = check_real_2d(Y, "Y")
    N, n = Y.shape
    if N == 0 or n == 0:
        raise FastinvError(f"Y must have at least one row and one column, got shape {Y.shape}")
    n_out = n if n_out is None else check_int(n_out, "n_out", lo=1)
    chunk = chunk_rows(chunk_size, n, n_out)
    batch = chunk if batch_size is None else check_int(batch_size, "batch_size", lo=1)
    if moments is None:
        acc = MomentAccumulator(n, n_out, **_backend_kw(f, Y, device))
    else:
        acc = _moments_for(moments, n, n_out)
    ev = _make_evaluator(f, keep_tensor=acc.backend == "torch", n_out=n_out)
    outputs = _batched(ev, batch, acc.device)

    def pair(a, b, sel, r0):
        Yc = _take(Y, a, b, sel)
        _check_probes(Yc, r0)
        return Yc, outputs(Yc, r0)

    return _Probes(N, chunk, acc, pair)


def _moments_for(moments, n: int, n_out: int) -> MomentAccumulator:
    """``moments`` when it is an accumulator of inputs of width n and outputs of n_out."""
    if not isinstance(moments, MomentAccumulator):
        raise FastinvError(
            f"moments must be a MomentAccumulator (from surrogate_moments), got "
            f"{type(moments).__name__}"
        )
    if (moments.n_in, moments.n_out) != (n, n_out):
        raise FastinvError(
            f"moments are of inputs of width {moments.n_in} and outputs of width "
            f"{moments.n_out}, but the probes have {n} columns and the model {n_out} outputs; "
            "accumulate them from the same probes and model"
        )
    return moments


def _check_moments(moments: MomentAccumulator, rows: _Rows) -> None:
    """The merged moments hold as many rows as the probe set's fitted rows."""
    if moments.n_samples != rows.n_fitted:
        held = rows.N - rows.n_fitted
        raise FastinvError(
            f"moments hold {moments.n_samples} rows, but {rows.N} probes with {held} held "
            f"out leave {rows.n_fitted} to fit; accumulate them with surrogate_moments over "
            "parts that tile all the probes, with the same holdout and seed"
        )
