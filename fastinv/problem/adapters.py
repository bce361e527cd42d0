"""Adapters: the linear operators users already have, as linear maps (problem.structured).

:func:`as_linear_map` accepts

- a ``scipy.sparse`` matrix (kept sparse: :class:`~fastinv.problem.structured.SparseMap`);
- a ``scipy.sparse.linalg.LinearOperator`` (its ``matmat`` / ``rmatmat``);
- a PyLops ``LinearOperator`` (``matmat`` / ``rmatmat``; its ``dims`` give the image shape
  when they are 2-D);
- a deepinv ``LinearPhysics``, or anything with callable ``A`` and ``A_adjoint`` acting on
  torch tensors of shape (B, C, H, W): the image shape comes from ``image_shape`` ((H, W) or
  (C, H, W)) or from the physics' ``img_size`` / ``tensor_size``; the measurement shape from
  one call of ``A`` on a zero image; the noise level ``noise_model.sigma`` is recorded
  where the physics states it. The products run in the physics' own floating dtype (the
  dtype of its first floating buffer or parameter, else torch's default), under
  ``torch.no_grad``;
- a :class:`~fastinv.problem.structured.LinearMap` (returned as is).

PyLops and deepinv are never imported here: objects are recognised by their type's module
and by their methods, so both stay optional.
"""

from __future__ import annotations

import math

import numpy as np

from fastinv.errors import FastinvError
from fastinv.problem.structured import FuncMap, LinearMap, SparseMap

__all__ = ["as_linear_map"]


def as_linear_map(obj, *, image_shape=None) -> tuple[LinearMap, dict]:
    """``(linear_map, info)`` for ``obj``; ``info["kind"]`` names what it was, and a deepinv
    physics adds ``noise_sigma`` where it states one. See the module docstring."""
    import scipy.sparse
    import scipy.sparse.linalg

    if isinstance(obj, LinearMap):
        return obj, {"kind": "linear map"}
    if scipy.sparse.issparse(obj):
        return _sparse(obj, image_shape), {"kind": "scipy.sparse matrix"}
    if _from_package(obj, "pylops"):
        return _pylops(obj, image_shape), {"kind": "PyLops LinearOperator"}
    if isinstance(obj, scipy.sparse.linalg.LinearOperator):
        return _scipy_linop(obj, image_shape, "LinearOperator"), {"kind": "SciPy LinearOperator"}
    if callable(getattr(obj, "A", None)) and callable(getattr(obj, "A_adjoint", None)):
        return _physics(obj, image_shape)
    raise FastinvError(
        f"cannot use a {type(obj).__module__}.{type(obj).__name__} as an operator; give a "
        "NumPy array, a scipy.sparse matrix, a scipy.sparse.linalg.LinearOperator, a PyLops "
        "LinearOperator or a deepinv LinearPhysics (A and A_adjoint)"
    )


def _from_package(obj, package: str) -> bool:
    return any(c.__module__.split(".")[0] == package for c in type(obj).__mro__)


def _real(dtype, what: str) -> None:
    if dtype is not None and np.dtype(dtype).kind == "c":
        raise FastinvError(
            f"{what} is complex (dtype {np.dtype(dtype)}); fastinv needs a real operator"
        )


def _sparse(S, image_shape) -> SparseMap:
    _real(S.dtype, "the sparse matrix")
    if not np.isfinite(S.data).all():
        raise FastinvError("the sparse matrix holds NaN or Inf values; remove them")
    return SparseMap(S, image_shape)


def _scipy_linop(L, image_shape, what: str) -> FuncMap:
    _real(getattr(L, "dtype", None), what)
    m, n = (int(d) for d in L.shape)
    try:  # one product each way: a missing adjoint is reported now, not inside a solver
        L.rmatvec(np.zeros(m))
        L.matvec(np.zeros(n))
    except NotImplementedError as e:
        raise FastinvError(
            f"the {what} has no adjoint ({e}); define rmatvec/rmatmat so that A^T can be applied"
        ) from None
    return FuncMap(
        lambda X: np.asarray(L.matmat(np.ascontiguousarray(X.T))).T,
        lambda Y: np.asarray(L.rmatmat(np.ascontiguousarray(Y.T))).T,
        (m, n),
        image_shape,
    )


def _pylops(Op, image_shape) -> FuncMap:
    dims = tuple(int(d) for d in np.atleast_1d(getattr(Op, "dims", ())))
    if image_shape is None and len(dims) == 2 and math.prod(dims) == Op.shape[1]:
        image_shape = dims
    return _scipy_linop(Op, image_shape, "PyLops LinearOperator")


# deepinv -------------------------------------------------------------------------------
def _physics_image_shape(physics, image_shape) -> tuple[int, int, int]:
    shp = image_shape
    if shp is None:
        for attr in ("img_size", "imsize", "tensor_size"):  # deepinv's names, by class
            shp = shp or getattr(physics, attr, None)
    if shp is None:
        raise FastinvError(
            "this physics does not state its image size; pass image_shape=(H, W) or (C, H, W)"
        )
    shp = tuple(int(d) for d in shp)
    if len(shp) == 2:
        shp = (1, *shp)
    if len(shp) != 3 or min(shp) < 1:
        raise FastinvError(f"image_shape must be (H, W) or (C, H, W), got {shp}")
    return shp


def _physics_dtype(physics):
    import torch

    tensors = _physics_tensors(physics)
    return tensors[0].dtype if tensors else torch.get_default_dtype()


def _physics_device(physics):
    import torch

    tensors = _physics_tensors(physics)
    return tensors[0].device if tensors else torch.device("cpu")


def _physics_tensors(physics) -> list:
    """The physics' floating-point tensors that describe it (public buffers, parameters and
    attributes)."""
    import torch

    tensors = []
    for attr in ("named_buffers", "named_parameters"):
        f = getattr(physics, attr, None)
        if callable(f):  # private buffers (deepinv 0.5's float32 _device_holder) say nothing
            tensors += [
                t
                for name, t in f()
                if t.is_floating_point() and not any(p.startswith("_") for p in name.split("."))
            ]
    # a physics that is not an nn.Module: the tensors among its attributes
    attrs = getattr(physics, "__dict__", {}).values()
    tensors += [t for t in attrs if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return tensors


def _noise_sigma(physics) -> float | None:
    sigma = getattr(getattr(physics, "noise_model", None), "sigma", None)
    try:
        return None if sigma is None else float(sigma)
    except (TypeError, ValueError):  # a tensor of per-image levels: not one number
        return None


def _physics(physics, image_shape) -> tuple[FuncMap, dict]:
    import torch

    C, H, W = _physics_image_shape(physics, image_shape)
    dt = _physics_dtype(physics)
    with torch.no_grad():
        y0 = physics.A(torch.zeros((1, C, H, W), dtype=dt))
    out_shape = tuple(y0.shape[1:])
    n, m = C * H * W, int(math.prod(out_shape))

    def call(f, X, shape):
        with torch.no_grad():
            t = torch.as_tensor(np.ascontiguousarray(X), dtype=dt).reshape(X.shape[0], *shape)
            return f(t).reshape(X.shape[0], -1).to(torch.float64).cpu().numpy()

    dev = _physics_device(physics)

    def torch_call(X, adjoint):  # differentiable: the physics is torch code
        f, shape = (physics.A_adjoint, out_shape) if adjoint else (physics.A, (C, H, W))
        t = X.to(device=dev, dtype=dt).reshape(X.shape[0], *shape)
        return f(t).reshape(X.shape[0], -1).to(device=X.device, dtype=X.dtype)

    lm = FuncMap(
        lambda X: call(physics.A, X, (C, H, W)),
        lambda Y: call(physics.A_adjoint, Y, out_shape),
        (m, n),
        (H, W) if C == 1 else (C, H, W),
        torch_rows=torch_call,
    )
    lm.physics = physics  # kept for models called as model(y, physics) (nets.loading.physics_of)
    info = {"kind": "deepinv physics", "dtype": str(dt).replace("torch.", "")}
    sigma = _noise_sigma(physics)
    if sigma is not None:
        info["noise_sigma"] = sigma
    return lm, info
