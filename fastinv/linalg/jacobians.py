"""Jacobians of a torch model at probe points: all of them, their mean, or matrix-free.

Dense: ``torch.func.jacrev`` (or ``jacfwd``) of the model on one probe, vmapped over batches
of probes; the model runs in its own dtype and on its own device. :func:`jacobians` returns
the (m, k, n) stack in float64, :func:`mean_jacobian` accumulates the mean without storing it.

Matrix-free (never an n × n matrix, for large n): :func:`projected_jacobians` gives
``Vᵀ J(y_i) U`` by Jacobian-vector products (``torch.func.jvp`` vmapped over the columns of
U and over probes, in chunks sized by :func:`plan_projected_jacobians` from the model's
widest activation, :func:`activation_row_bytes`); :func:`jacobian_sigma_max` is ``σ_max(J)``
by power iteration on ``JᵀJ`` (JVP then VJP); :func:`jacobian_topk_svals` the top-k singular
values by the randomized SVD on JVP/VJP closures. The model runs in eval mode (its mode is
restored afterwards), in its own dtype; results are float64.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from fastinv import io
from fastinv._device import device_free_bytes, is_torch, to_numpy
from fastinv._validation import check_choice, check_finite, check_float, check_int, check_matrix
from fastinv.errors import FastinvError
from fastinv.linalg.moments import check_real_2d

__all__ = [
    "activation_row_bytes",
    "jacobian_sigma_max",
    "jacobian_topk_svals",
    "jacobians",
    "mean_jacobian",
    "module_dtype_device",
    "plan_projected_jacobians",
    "projected_jacobians",
]

#: computing a batch of full Jacobians holds at most about this many bytes of activations
_JAC_COMPUTE_BYTES = 1 << 31
#: a batch of Jacobians takes at most this many bytes (caps ``batch_size``); the vmapped
#: reverse pass holds several times that in intermediates, so it is kept moderate
_JAC_BATCH_BYTES = 1 << 28


def module_dtype_device(model, Y):
    """(torch dtype, torch device) a module computes in: those of its first floating-point
    parameter or buffer, else of the probes ``Y`` (float64 unless they are float32, CPU
    for NumPy probes)."""
    import torch

    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    if is_torch(Y):
        dt = Y.dtype if Y.is_floating_point() else torch.float64
        return dt, Y.device
    dt = torch.float32 if np.asarray(Y).dtype == np.float32 else torch.float64
    return dt, torch.device("cpu")


def _available_bytes() -> float:
    """Memory available now, in bytes (inf when unknown)."""
    avail = io.available_memory()
    return math.inf if avail is None else float(avail)


def _batch_rows(batch_size, m: int, n: int, dtype) -> int:
    """``batch_size`` checked and capped so that a batch of (n, n) Jacobians takes at most
    256 MiB."""
    import torch

    batch_size = check_int(batch_size, "batch_size", lo=1)
    item = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8
    cap = max(1, _JAC_BATCH_BYTES // max(1, n * n * item))
    return int(min(batch_size, cap, m))


def _vmap_or_loop(fn, loop_fn=None, in_dims=0):
    """``(X, ...) -> stack(fn(x, ...) for x in X)``, by ``torch.func.vmap`` while the model
    allows it (``in_dims`` as vmap's: 0 maps over every argument, a tuple maps the arguments
    marked 0 and passes those marked None whole).

    A model that torch.func cannot vmap (an in-place update of a tensor that is not batched,
    as in some deepinv physics: "vmap: inplace arithmetic ...", or a broadcast error) raises
    a RuntimeError; then, once and for all, the rows go one by one (``loop_fn``, default
    ``fn``): slower, the same result. A model that is simply broken fails in the loop too,
    and that error is the one reported."""
    import torch

    state = {"vmap": True}
    loop_fn = fn if loop_fn is None else loop_fn

    def call(*args):
        if state["vmap"]:
            try:
                return torch.func.vmap(fn, in_dims=in_dims)(*args)
            except RuntimeError:
                state["vmap"] = False
        dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
        rows = next(a.shape[0] for a, d in zip(args, dims, strict=True) if d == 0)
        return torch.stack(
            [
                loop_fn(*(a[i] if d == 0 else a for a, d in zip(args, dims, strict=True)))
                for i in range(rows)
            ]
        )

    return call


def _vmapped_jacobian(model, mode: str):
    """``Y (b, n) -> J (b, k, n)``: the Jacobian of one probe, vmapped (row by row with
    reverse-mode autograd, no torch.func, for a model that cannot be vmapped)."""
    import torch

    def single(y):
        out = model(y.unsqueeze(0))
        return out.squeeze(0)

    def looped(y):
        with torch.enable_grad():
            return torch.autograd.functional.jacobian(single, y, vectorize=False)

    jac = torch.func.jacrev(single) if mode == "rev" else torch.func.jacfwd(single)
    return _vmap_or_loop(jac, looped)


def _jacobian_batches(vj, Y, bs: int, dtype, dev, n: int):
    """Yield ``(first row, J)`` for the probes in batches of ``bs`` rows."""
    import torch

    for a in range(0, Y.shape[0], bs):
        Yb = Y[a : a + bs]
        if isinstance(Yb, torch.Tensor):
            yt = Yb.detach().to(device=dev, dtype=dtype)
        else:
            yt = torch.as_tensor(np.asarray(Yb)).to(device=dev, dtype=dtype)
        try:
            with torch.no_grad():
                J = vj(yt)
        except Exception as e:  # noqa: BLE001
            raise FastinvError(
                f"the model raised {type(e).__name__}: {e} while differentiating a batch of "
                f"shape {tuple(yt.shape)}"
            ) from e
        if J.ndim != 3 or J.shape[0] != yt.shape[0] or J.shape[2] != n:
            raise FastinvError(
                f"the model's Jacobians have shape {tuple(J.shape)} for a batch "
                f"{tuple(yt.shape)}; the model must map (m, n) to (m, k)"
            )
        yield a, J


def _computing_cap(model, Y, bs: int, n: int, dev) -> int:
    """Probes per vmapped call so that computing them fits: one probe's Jacobian by reverse
    (or forward) mode holds about n copies of the model's activations on one row
    (:func:`activation_row_bytes`); refused with one message when a single probe does not
    fit in the memory available now (on the CPU)."""
    import torch

    if not isinstance(model, torch.nn.Module):
        return bs
    per_probe = n * activation_row_bytes(model, np.asarray(Y[0], dtype=np.float64))
    avail = _available_bytes() if dev.type == "cpu" else math.inf
    if per_probe > 0.8 * avail:
        raise FastinvError(
            f"computing one full Jacobian ({n} x {n}) of this model needs about "
            f"{per_probe / 2**30:.1f} GiB (its activations for {n} directions) but "
            f"{avail / 2**30:.1f} GiB are free; use the top-k audit (--audit-rank k), "
            "which needs k Jacobian-vector products instead, or --jacobian-probes 0"
        )
    budget = min(_JAC_COMPUTE_BYTES, 0.5 * avail)
    return int(max(1, min(bs, budget // max(per_probe, 1))))


def _jac_setup(model, Y, batch_size, mode):
    """Check the arguments; returns ``(torch, m, n, batches)`` with ``batches()`` yielding
    ``(first row, J)``."""
    import torch

    if not isinstance(model, torch.nn.Module) and not callable(model):
        raise FastinvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    mode = check_choice(mode, "mode", ("rev", "fwd"), normalize=False)
    Y = check_real_2d(Y, "Y")
    m, n = Y.shape
    if m == 0:
        raise FastinvError("Y has no rows; pass at least one probe")
    if isinstance(model, torch.nn.Module):
        dtype, dev = module_dtype_device(model, Y)
    else:
        dtype, dev = torch.float64, torch.device("cpu")
    bs = _batch_rows(batch_size, m, n, dtype)
    bs = _computing_cap(model, Y, bs, n, dev)
    vj = _vmapped_jacobian(model, mode)
    return torch, m, n, lambda: _jacobian_batches(vj, Y, bs, dtype, dev, n)


def jacobians(model, Y, *, batch_size: int = 64, mode: str = "rev") -> np.ndarray:
    """Jacobians ``J_i = ∂model(y)/∂y`` at the probes ``y_i`` (torch.func, vmapped).

    Parameters
    ----------
    model : torch.nn.Module
        Maps (m, n) to (m, k); evaluated in its own dtype and on its own device.
    Y : ndarray or torch.Tensor of shape (m, n)
        Probes.
    batch_size : int
        Probes per vmapped call (capped so that one batch of Jacobians takes ≤ 256 MiB).
    mode : {"rev", "fwd"}
        ``torch.func.jacrev`` (default) or ``jacfwd``.

    Returns
    -------
    ndarray of shape (m, k, n)
        float64; ``J[i, a, b] = ∂f_a/∂y_b`` at ``y_i``.

    Raises
    ------
    FastinvError
        If the (m, k, n) result would not fit in the available memory (use
        :func:`mean_jacobian`, or fewer probes).
    """
    torch, m, n, batches = _jac_setup(model, Y, batch_size, mode)
    out = None
    for a, J in batches():
        if out is None:
            out = _allocate(m, J.shape[1], n)
        # cast while copying into ``out``: no float64 temporary of the whole batch
        J = J.detach()
        if J.dtype not in (torch.float32, torch.float64):  # bfloat16 etc.: no NumPy dtype
            J = J.to(torch.float64)
        out[a : a + J.shape[0]] = J.cpu().numpy()
    return out


def _allocate(m: int, k: int, n: int) -> np.ndarray:
    """The (m, k, n) float64 result, refused up front when it would not fit in memory."""
    need = m * k * n * 8
    avail = _available_bytes()
    if need > 0.8 * avail:
        raise FastinvError(
            f"the {m} Jacobians of shape ({k}, {n}) need {need / 2**30:.1f} GiB but "
            f"only {avail / 2**30:.1f} GiB are free; use mean_jacobian() or fewer probes"
        )
    return np.empty((m, k, n))


def mean_jacobian(model, Y, *, batch_size: int = 64, mode: str = "rev") -> np.ndarray:
    """Mean Jacobian ``(1/m) Σ_i ∂model(y_i)/∂y``, accumulated without storing all of them.

    Parameters
    ----------
    model : torch.nn.Module
    Y : ndarray or torch.Tensor of shape (m, n)
    batch_size : int
        Probes per vmapped call (capped so that one batch of Jacobians takes ≤ 256 MiB).
    mode : {"rev", "fwd"}

    Returns
    -------
    ndarray of shape (k, n)
        float64 (accumulated in float64 on the model's device).
    """
    torch, m, n, batches = _jac_setup(model, Y, batch_size, mode)
    acc = None
    for _, J in batches():
        s = J.sum(0, dtype=torch.float64)
        acc = s if acc is None else acc.add_(s)
    return (acc / m).cpu().numpy()


# --------------------------------------------------------------------------------------
# matrix-free: Jacobian-vector products (JVP) and vector-Jacobian products (VJP)
# --------------------------------------------------------------------------------------
#: the vmapped JVPs of one call take at most this many bytes by the plan on the CPU (and at
#: most a quarter of the free memory); on CUDA a quarter of the free memory, up to 4 GiB
_JVP_BUDGET_BYTES = 1 << 28
_JVP_BUDGET_CUDA = 1 << 32
#: live tangent-sized temporaries of one tangent row in units of its widest activation: the
#: JVP of a layer holds the input and output tangents and a derivative factor (tanh:
#: 1 - t²) at once (measured with the profiler's allocation trace on tanh/ReLU MLPs and a
#: CNN: about 1.1, from 1.0 to 1.3); 3 leaves room for layers with more temporaries
_ACT_LIVE = 3
#: widest activation of a model assumed by the plan when not measured, in input widths
_DEFAULT_WIDTH_FACTOR = 4


def _set_eval(model) -> bool | None:
    """Put a module in eval mode; returns its previous mode (None for a plain function).
    Modules from torch.export refuse mode changes and are left as they are."""
    import torch

    if not isinstance(model, torch.nn.Module):
        return None
    before = bool(model.training)
    try:
        model.train(False)
    except NotImplementedError:
        pass
    return before


def _restore_mode(model, before: bool | None) -> None:
    if before is not None:
        try:
            model.train(before)
        except NotImplementedError:
            pass


def _check_model(model):
    import torch

    if not isinstance(model, torch.nn.Module) and not callable(model):
        raise FastinvError(
            f"model must be a torch.nn.Module or a callable, got {type(model).__name__}"
        )
    return model


def _dtype_device(model, Y):
    """The model's own (dtype, device); that of the probes for a parameter-free model."""
    import torch

    if isinstance(model, torch.nn.Module):
        return module_dtype_device(model, Y)
    return module_dtype_device(torch.nn.Module(), Y)


def _n_params(model) -> int:
    import torch

    if not isinstance(model, torch.nn.Module):
        return 0
    return sum(int(p.numel()) for p in model.parameters())


def _check_probes(Y, what: str = "Y"):
    """``Y`` as a 2-D real array or tensor with at least one row and finite entries."""
    Y = check_real_2d(Y, what)
    if Y.shape[0] == 0 or Y.shape[1] == 0:
        raise FastinvError(f"{what} is empty (shape {tuple(Y.shape)}); pass at least one probe")
    if is_torch(Y):
        import torch

        if not bool(torch.isfinite(Y).all()):
            check_finite(to_numpy(Y), what)
    else:
        check_finite(Y, what)
    return Y


def _check_basis(B, what: str, rows: int, rows_are: str) -> np.ndarray:
    """``B`` as a finite float64 (rows, k) array with k >= 1."""
    B = check_matrix(to_numpy(B), what)
    if B.shape[0] != rows:
        raise FastinvError(
            f"{what} must have {rows} rows ({rows_are}), got shape {B.shape}; "
            f"pass the basis vectors as columns"
        )
    return B


def _to_torch(a, dev, dtype):
    import torch

    t = a.detach() if is_torch(a) else torch.as_tensor(np.ascontiguousarray(a))
    return t.to(device=dev, dtype=dtype)


def _model_error(e: Exception, shape) -> FastinvError:
    if isinstance(e, FastinvError):
        return e
    return FastinvError(
        f"the model raised {type(e).__name__}: {e} while differentiating at inputs of shape "
        f"{tuple(shape)}"
    )


def _single(model):
    """``y (n,) -> model(y[None])[0]``: the model on one row."""

    def single(y):
        return model(y.unsqueeze(0)).squeeze(0)

    return single


def _probe_forward(model, y1) -> tuple[int, int]:
    """Run the model on one row (shape (1, n)) with forward hooks on every submodule;
    returns (``row_bytes`` of :func:`activation_row_bytes`, output width)."""
    import torch

    widest = [int(y1.numel() * y1.element_size()), 0]  # widest activation, im2col buffer

    def hook(mod, inp, out):
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                widest[0] = max(widest[0], int(t.numel() * t.element_size()))
        ks = getattr(mod, "kernel_size", None)
        if isinstance(ks, tuple) and inp and isinstance(inp[0], torch.Tensor):
            # a convolution without a fused kernel (float64 on the CPU) unfolds its input
            # (im2col): kernel-area copies of it
            col = inp[0].numel() * inp[0].element_size() * math.prod(ks)
            widest[1] = max(widest[1], int(col))

    # a ScriptModule takes no hooks: then only the input and the output are measured
    scripted = isinstance(model, torch.jit.ScriptModule)
    mods = list(model.modules()) if isinstance(model, torch.nn.Module) and not scripted else []
    handles = [mod.register_forward_hook(hook) for mod in mods]
    try:
        with torch.no_grad():
            out = model(y1)
    except Exception as e:  # noqa: BLE001 - the user's model: one clear message
        raise _model_error(e, y1.shape) from e
    finally:
        for h in handles:
            h.remove()
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise FastinvError(
            f"the model maps a row of shape {tuple(y1.shape)} to {got}; it must map (m, n) "
            f"rows to (m, n_out) rows"
        )
    widest[0] = max(widest[0], int(out.numel() * out.element_size()))
    return _ACT_LIVE * widest[0] + widest[1], int(out.shape[1])


def activation_row_bytes(model, y) -> int:
    """Bytes the JVP of one tangent row holds at its peak, estimated from one forward row
    ``y`` (shape (n,) or (1, n)) with forward hooks, in the model's dtype (eval mode):
    ``3 ×`` the widest activation (the largest of the input, the output and every
    submodule's tensor output) plus the largest convolution input times its kernel area
    (the im2col buffer of unfused convolutions, e.g. float64 on the CPU; fused float32
    kernels need less). The ``row_bytes`` of :func:`plan_projected_jacobians`."""
    model = _check_model(model)
    y = y if is_torch(y) else np.asarray(y)
    y = _check_probes(y.reshape(1, -1) if y.ndim == 1 else y, "y")
    dtype, dev = _dtype_device(model, y)
    before = _set_eval(model)
    try:
        return _probe_forward(model, _to_torch(y[:1], dev, dtype))[0]
    finally:
        _restore_mode(model, before)


def _split_chunk(chunk: int, m: int, k: int) -> tuple[int, int]:
    """(probes per call, columns of U per call) for a chunk of ``chunk`` tangent rows."""
    if chunk >= k:
        return max(1, min(m, chunk // k)), k
    return 1, chunk


def _plan(model_params, n, k, m, itemsize, kv, n_out, row_bytes, chunk, budget):
    """(chosen chunk, bytes needed) for :func:`plan_projected_jacobians`."""
    kv = k if kv is None else kv
    n_out = n if n_out is None else n_out
    if row_bytes is None:
        row_bytes = _ACT_LIVE * _DEFAULT_WIDTH_FACTOR * max(n, n_out) * itemsize
    act = max(int(row_bytes), _ACT_LIVE * max(n, n_out) * itemsize)
    # per tangent row: its activations, the tangent in, the tangent out and its float64
    # copy, the projected row
    per_row = act + n * itemsize + n_out * (itemsize + 8) + kv * 8
    # a transient copy of the weights (forward-mode linear layers copy theirs), U and V in
    # the model's dtype and in float64, the (m, kv, k) result
    fixed = model_params * itemsize + (n * k + n_out * kv) * (itemsize + 8) + m * kv * k * 8
    if chunk is None:
        budget = _JVP_BUDGET_BYTES if budget is None else budget
        chunk = int(min(max(1, budget // (per_row + act)), m * k))
    pb, c = _split_chunk(chunk, m, k)
    # the primal rows of the pb probes of one call
    return chunk, int(fixed + pb * c * per_row + pb * act)


def plan_projected_jacobians(
    model_params: int,
    n: int,
    k: int,
    m: int,
    itemsize: int,
    *,
    kv: int | None = None,
    n_out: int | None = None,
    row_bytes: int | None = None,
    chunk: int | None = None,
    budget: int | None = None,
) -> int:
    """Bytes :func:`projected_jacobians` needs at its chosen chunk (for the memory plan).

    Parameters
    ----------
    model_params : int
        Parameters of the model (a transient copy of the weights is counted).
    n, k, m : int
        Input width, columns of U (``ku``) and number of probes.
    itemsize : int
        Bytes per element of the model's dtype (4 for float32, 8 for float64).
    kv, n_out : int, optional
        Columns of V and output width; default ``k`` and ``n``.
    row_bytes : int, optional
        Bytes the JVP of one tangent row holds (:func:`activation_row_bytes`); default
        ``12 * max(n, n_out) * itemsize`` (an MLP up to 4 n wide).
    chunk : int, optional
        Tangent rows per vmapped call; default the most that fit in ``budget``.
    budget : int, optional
        Bytes one call may take, default 256 MiB (what :func:`projected_jacobians` uses on
        the CPU when at least 1 GiB is free).

    Returns
    -------
    int
        Peak bytes beyond the model and the probes: the weights' transient copy, U and V,
        the result, and ``chunk`` tangent rows (each ``row_bytes``) with their inputs,
        outputs and projections.
    """
    vals = {"model_params": (model_params, 0), "n": (n, 1), "k": (k, 1), "m": (m, 1)}
    vals.update({"itemsize": (itemsize, 1), "kv": (kv, 1), "n_out": (n_out, 1)})
    vals.update({"row_bytes": (row_bytes, 0), "chunk": (chunk, 1), "budget": (budget, 1)})
    v = {name: None if x is None else check_int(x, name, lo=lo) for name, (x, lo) in vals.items()}
    return _plan(**v)[1]


def _budget(dev) -> int:
    """Bytes one vmapped JVP call may take on ``dev``."""
    free = device_free_bytes(dev)
    if free is not None:
        return int(min(_JVP_BUDGET_CUDA, free // 4))
    return int(min(_JVP_BUDGET_BYTES, _available_bytes() // 4))


def _check_fits(need: int, dev) -> None:
    free = device_free_bytes(dev)
    avail = float(free) if free is not None else _available_bytes()
    if need > 0.8 * avail:
        raise FastinvError(
            f"the projected Jacobians need about {need / 2**30:.1f} GiB but only "
            f"{avail / 2**30:.1f} GiB are free on {dev}; use fewer probes, a smaller k, or "
            f"a smaller chunk"
        )


def _vmapped_jvp(model):
    """``(Y (b, n), T (c, n)) -> (b, c, n_out)``: ``J(y) t`` for every probe and tangent."""
    import torch

    single = _single(model)

    def jvp(y, t):
        return torch.func.jvp(single, (y,), (t,))[1]

    # one decision for the whole audit: vmapped over probes and tangents, else loops
    return _vmap_or_loop(
        lambda y, T: torch.func.vmap(jvp, in_dims=(None, 0))(y, T),
        lambda y, T: torch.stack([jvp(y, t) for t in T]),
        in_dims=(0, None),
    )


def _projected(model, Y, U, V, chunk: int, dtype, dev, progress=None) -> np.ndarray:
    """The loop of :func:`projected_jacobians` over chunks of probes and columns of U."""
    import torch

    m, ku, kv = Y.shape[0], U.shape[1], V.shape[1]
    Ut = _to_torch(U.T, dev, dtype)  # (ku, n): the tangents, in the model's dtype
    V64 = _to_torch(V, dev, torch.float64)
    f = _vmapped_jvp(model)
    pb, c = _split_chunk(chunk, m, ku)
    out = np.empty((m, kv, ku))
    for a in range(0, m, pb):
        yb = _to_torch(Y[a : a + pb], dev, dtype)
        for j in range(0, ku, c):
            try:
                with torch.no_grad():
                    T = f(yb, Ut[j : j + c])
            except Exception as e:  # noqa: BLE001 - the user's model: one clear message
                raise _model_error(e, yb.shape) from e
            P = torch.matmul(T.to(torch.float64), V64)  # (b, c, kv)
            out[a : a + pb, :, j : j + c] = P.transpose(1, 2).cpu().numpy()
            if progress is not None:
                progress(yb.shape[0] * min(c, ku - j))
    return out


def projected_jacobians(model, Y, U, V, *, chunk: int | None = None, progress=None) -> np.ndarray:
    """``Vᵀ J(y_i) U`` for every row ``y_i`` of ``Y``, never forming ``J``.

    ``ku`` Jacobian-vector products per probe (``torch.func.jvp`` vmapped over the columns
    of U and over probes), each projected on V in float64. The model runs in eval mode (its
    mode is restored), in its own dtype and on its own device.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps rows (B, n) to rows (B, n_out), row by row.
    Y : ndarray or torch.Tensor of shape (m, n)
        Probes (finite).
    U : ndarray of shape (n, ku)
        Input directions (columns).
    V : ndarray of shape (n_out, kv)
        Output directions (columns).
    progress : callable, optional
        Called with the number of Jacobian-vector products done after each call.
    chunk : int, optional
        Tangent rows per vmapped call (a call covers ``max(1, chunk // ku)`` probes when
        ``chunk >= ku``); default the most that fit in the memory budget
        (:func:`plan_projected_jacobians`: 256 MiB on the CPU, a quarter of the free memory
        up to 4 GiB on CUDA). The result does not depend on it.

    Returns
    -------
    ndarray of shape (m, kv, ku)
        float64; ``out[i] = Vᵀ J(y_i) U``.
    """
    model = _check_model(model)
    Y = _check_probes(Y)
    m, n = Y.shape
    U = _check_basis(U, "U", n, "the probes' width n")
    if chunk is not None:
        chunk = check_int(chunk, "chunk", lo=1)
    dtype, dev = _dtype_device(model, Y)
    before = _set_eval(model)
    try:
        widest, n_out = _probe_forward(model, _to_torch(Y[:1], dev, dtype))
        V = _check_basis(V, "V", n_out, "the model's output width")
        item = _itemsize(dtype)
        chunk, need = _plan(
            _n_params(model),
            n,
            U.shape[1],
            m,
            item,
            V.shape[1],
            n_out,
            widest,
            chunk,
            _budget(dev),
        )
        _check_fits(need, dev)
        return _projected(model, Y, U, V, chunk, dtype, dev, progress)
    finally:
        _restore_mode(model, before)


def _itemsize(dtype) -> int:
    """Bytes per element of a torch dtype."""
    import torch

    return torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8


def _check_point(model, y):
    """(model, y as a (n,) tensor in the model's dtype and on its device, n_out, vjp_fn)."""
    import torch

    model = _check_model(model)
    y = y if is_torch(y) else np.asarray(y)
    if y.ndim == 2 and y.shape[0] == 1:
        y = y[0]
    if y.ndim != 1:
        raise FastinvError(f"y must be one probe of shape (n,), got shape {tuple(np.shape(y))}")
    Y = _check_probes(y.reshape(1, -1), "y")
    dtype, dev = _dtype_device(model, Y)
    _, n_out = _probe_forward(model, _to_torch(Y, dev, dtype))
    yt = _to_torch(Y[0], dev, dtype)
    try:
        _, vjp_fn = torch.func.vjp(_single(model), yt)
    except Exception as e:  # noqa: BLE001 - the user's model: one clear message
        raise _model_error(e, (1, *yt.shape)) from e
    return yt, n_out, vjp_fn


def _unit_start(n: int, seed: int, yt):
    v = np.random.default_rng(seed).standard_normal(n)
    return _to_torch(v / np.linalg.norm(v), yt.device, yt.dtype)


def _power_sigma(single, yt, vjp_fn, v, iters: int, tol: float) -> tuple[float, float]:
    """Power iteration on ``JᵀJ`` from the unit vector ``v``: ``(σ ≈ ‖J v‖, last relative
    change)``; the change is ``inf`` after a single step."""
    import torch

    prev = 0.0
    change = math.inf
    for it in range(iters):
        with torch.no_grad():
            u = torch.func.jvp(single, (yt,), (v,))[1].detach()
        sigma = float(torch.linalg.vector_norm(u.to(torch.float64)))
        if sigma == 0.0:
            return 0.0, 0.0
        change = abs(sigma - prev) / sigma if it else math.inf
        if change <= tol:
            return sigma, change
        w = vjp_fn(u)[0].detach()
        v = w / torch.linalg.vector_norm(w)
        prev = sigma
    return sigma, change


def jacobian_sigma_max(model, y, *, iters: int = 30, tol: float = 1e-6, seed: int = 0) -> float:
    """Largest singular value of ``J(y)``, the model's Jacobian at one probe, never forming J.

    Power iteration on ``JᵀJ`` (one ``torch.func.jvp`` and one ``torch.func.vjp`` product per
    step) from a Gaussian start drawn from ``seed``; the estimate ``‖J v‖`` (v unit) rises
    to ``σ₁`` with error of order ``(σ₂/σ₁)^(4t)`` after t steps. Stops when it changes by at
    most ``tol`` (relative) between steps; warns (RuntimeWarning) when ``iters`` steps end
    first. The model runs in eval mode, in its own dtype.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps rows (B, n) to rows (B, n_out).
    y : ndarray or torch.Tensor of shape (n,)
        The probe (finite).
    iters : int, default 30
        Most power steps.
    tol : float, default 1e-6
        Relative change of the estimate that stops the iteration.
    seed : int, default 0

    Returns
    -------
    float
    """
    iters = check_int(iters, "iters", lo=1)
    tol = check_float(tol, "tol", lo=0)
    seed = check_int(seed, "seed", lo=0)
    before = _set_eval(model)
    try:
        yt, _, vjp_fn = _check_point(model, y)
        v = _unit_start(yt.shape[0], seed, yt)
        try:
            sigma, change = _power_sigma(_single(model), yt, vjp_fn, v, iters, tol)
        except Exception as e:  # noqa: BLE001 - the user's model: one clear message
            raise _model_error(e, (1, *yt.shape)) from e
    finally:
        _restore_mode(model, before)
    if change > tol:
        warnings.warn(
            f"jacobian_sigma_max did not converge in {iters} iterations (last relative "
            f"change {change:.1e} > tol = {tol:g}); the value is a lower bound, raise iters",
            RuntimeWarning,
            stacklevel=2,
        )
    return sigma


def _jv_closures(model, yt, vjp_fn, chunk: int):
    """NumPy ``matvec(X) = J X`` (X (n, b)) and ``rmatvec(Z) = Jᵀ Z`` (Z (n_out, b)), by
    vmapped JVPs / VJPs over chunks of ``chunk`` columns."""
    import torch

    single = _single(model)
    jv = _vmap_or_loop(lambda t: torch.func.jvp(single, (yt,), (t,))[1])
    vj = _vmap_or_loop(lambda u: vjp_fn(u)[0])

    def apply(fn, X):
        Xt = _to_torch(np.asarray(X).T, yt.device, yt.dtype)
        with torch.no_grad():
            parts = [fn(Xt[j : j + chunk]).detach() for j in range(0, Xt.shape[0], chunk)]
        parts = [p.to(torch.float64) for p in parts]
        return torch.cat(parts).T.cpu().numpy()

    return (lambda X: apply(jv, X)), (lambda Z: apply(vj, Z))


def jacobian_topk_svals(
    model,
    y,
    k: int,
    *,
    seed: int = 0,
    n_iter: int | str = "auto",
    n_oversamples: int = 10,
    method: str = "hmt",
    chunk: int | None = None,
) -> np.ndarray:
    """Top-``k`` singular values of ``J(y)`` by the randomized SVD
    (:func:`fastinv.linalg.randomized.svd_topk`) on JVP / VJP closures, never forming J.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps rows (B, n) to rows (B, n_out).
    y : ndarray or torch.Tensor of shape (n,)
    k : int
        ``1 <= k <= min(n, n_out)``.
    seed, n_iter, n_oversamples, method
        As in :func:`~fastinv.linalg.randomized.rsvd` (``2 n_iter + 2`` passes, each
        ``k + n_oversamples`` JVPs or VJPs).
    chunk : int, optional
        Vectors per vmapped call (default: the most that fit the memory budget).

    Returns
    -------
    ndarray of shape (k,)
        float64, descending.
    """
    from fastinv.linalg.randomized import svd_topk

    before = _set_eval(model)
    try:
        yt, n_out, vjp_fn = _check_point(model, y)
        n = int(yt.shape[0])
        k = check_int(k, "k", lo=1, hi=min(n, n_out))
        if chunk is None:
            item = _itemsize(yt.dtype)
            row = _ACT_LIVE * _DEFAULT_WIDTH_FACTOR * max(n, n_out) * item
            chunk = max(1, _budget(yt.device) // row)
        chunk = check_int(chunk, "chunk", lo=1)
        matvec, rmatvec = _jv_closures(model, yt, vjp_fn, chunk)
        try:
            _, s, _, _ = svd_topk(
                None,
                k,
                matvec=matvec,
                rmatvec=rmatvec,
                shape=(n_out, n),
                seed=seed,
                n_iter=n_iter,
                n_oversamples=n_oversamples,
                method=method,
                estimate_error=False,
            )
        except Exception as e:  # noqa: BLE001 - the user's model: one clear message
            raise _model_error(e, (1, n)) from e
        return np.asarray(to_numpy(s), dtype=np.float64)
    finally:
        _restore_mode(model, before)
