"""Load a user's trained model in the forms people actually have.

``fastinv analyze --model SPEC`` accepts:

- a TorchScript archive (``torch.jit.save``), loaded with ``torch.jit.load``;
- a ``torch.export`` archive (``torch.export.save``, usually ``*.pt2``);
- a pickled ``nn.Module`` (``torch.save(model)``), loaded only with ``trust_pickle=True``
  because unpickling runs code from the file;
- a state_dict (``torch.save(model.state_dict())``, also inside a training checkpoint dict
  under ``"state_dict"``, ``"model_state_dict"``, ``"model"``, ...) plus
  ``arch="package.module:Class"`` and its constructor arguments ``arch_kwargs``;
- a file written by :func:`fastinv.nets.models.save_model` (it describes its own architecture);
- a Python callable ``package.module:function`` (or ``path/to/file.py:function``) mapping
  an (m, n) NumPy array to an (m, n) array.

The file's format is read from its contents, never from its extension, and the safe loaders
are tried first: ``torch.load(weights_only=True)`` tells a state_dict (plain tensors) from a
pickled object (which it refuses) without running any code.

:func:`load_model` returns a :class:`LoadedModel` whose ``fn`` maps an (m, n) float64 array
to an (m, n) float64 array in batches, in the model's own dtype and on its device, under
``torch.no_grad()``; its ``module`` is the ``torch.nn.Module`` when there is one (for
Jacobians). A probe batch is pushed through the model before it is returned, so a model
that does not map (m, n) to (m, n), or returns NaN, is refused with a clear message.

A model that works on images rather than rows is loaded with ``image_shape=(H, W)`` (or
(C, H, W)): rows are viewed as (B, C, H, W) tensors for it and its output flattened back
(row-major), and with ``physics=`` (a deepinv physics) a model whose ``forward`` takes a
``physics`` argument is called as ``model(y, physics)`` (see :func:`load_model`).

This module imports torch only when a model is loaded.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastinv._device import dtype_name
from fastinv._imports import cwd_on_path, import_object, is_object_ref
from fastinv._validation import check_2d, check_int
from fastinv.errors import FastinvError

__all__ = ["KINDS", "LoadedModel", "load_model", "physics_of"]

KINDS = ("torchscript", "export", "pickle", "state_dict", "callable")

#: keys under which training checkpoints commonly keep the model's state_dict
_CHECKPOINT_KEYS = (
    "state_dict",
    "model_state_dict",
    "model_state",
    "model",
    "net",
    "network",
    "module",
    "ema",
)
#: prefixes that wrappers add to every key (DataParallel / DDP, torch.compile)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


# --------------------------------------------------------------------------------------
# the result object
# --------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A loaded model, callable on NumPy batches.

    Attributes
    ----------
    kind : str
        One of ``"torchscript"``, ``"export"``, ``"pickle"``, ``"state_dict"``,
        ``"callable"``.
    n : int
        Signal size: the model maps (m, n) to (m, n).
    module : torch.nn.Module or None
        The network when there is one (for Jacobians), else None (a NumPy callable).
    dtype : str
        The dtype the model computes in (``"float32"``, ``"float64"``, ...); inputs are
        converted to it. ``"float64"`` for NumPy callables.
    device : str
        Where the model runs (``"cpu"``, ``"cuda:0"``, ...).
    spec : str
        What was loaded (the path or ``package.module:function``).
    batch_size : int
        Rows per forward call in :attr:`fn`.
    arch : str or None
        ``package.module:Class`` used to rebuild a state_dict model.
    arch_kwargs : dict
        Constructor arguments for ``arch``.
    """

    kind: str
    n: int
    module: Any = None
    dtype: str = "float32"
    device: str = "cpu"
    spec: str = ""
    batch_size: int = 4096
    arch: str | None = None
    arch_kwargs: dict = field(default_factory=dict)
    #: a NumPy callable (kind "callable" without a module)
    func: Callable | None = field(default=None, repr=False)
    #: exported programs with a static batch size run in chunks of exactly this many rows
    fixed_batch: int | None = None
    #: smallest batch an exported program accepts (smaller batches are zero-padded)
    min_batch: int = 0
    info: dict = field(default_factory=dict)

    # ---------------------------------------------------------------------------------

    @property
    def fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """Callable mapping an ndarray of shape (m, n) to an ndarray of shape (m, n), float64."""
        return self.predict

    def __call__(self, Y: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        return self.predict(Y, batch_size=batch_size)

    def predict(self, Y: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Apply the model to the rows of ``Y`` in batches.

        Parameters
        ----------
        Y : array_like of shape (m, n)
            Measurements, one per row (any real dtype).
        batch_size : int, optional
            Rows per forward call (default :attr:`batch_size`).

        Returns
        -------
        ndarray of shape (m, n), float64
        """
        Y = check_2d(Y, "the model input", shape=(None, self.n))
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        bs = self.batch_size if batch_size is None else check_int(batch_size, "batch_size", lo=1)
        if self.fixed_batch is not None:
            bs = self.fixed_batch
        m = Y.shape[0]
        out = np.empty((m, self.n), dtype=np.float64)
        if self.module is None:
            for i in range(0, m, bs):
                out[i : i + bs] = self._call_numpy(Y[i : i + bs])
            return out
        import torch

        with torch.no_grad():
            for i in range(0, m, bs):
                out[i : i + bs] = self._call_torch(Y[i : i + bs])
        return out

    def check(self, n: int | None = None, *, seed: int = 0) -> None:
        """Push a probe batch of shape (2, n) (standard normal, fixed seed) through the model.

        Raises
        ------
        FastinvError
            When the model raises, returns something other than a floating-point array of
            shape (2, n), or returns NaN/Inf.
        """
        n = self.n if n is None else int(n)
        if n != self.n:
            raise FastinvError(
                f"the model was loaded for n = {self.n} but checked with n = {n}; load it "
                "again with the operator's n"
            )
        probe = np.random.default_rng(seed).standard_normal((2, n))
        out = self.predict(probe)
        bad = ~np.isfinite(out)
        if bad.any():
            raise FastinvError(
                f"the model returned {int(bad.sum())} NaN/Inf value(s) on a standard-normal "
                f"probe batch of shape (2, {n}); check its weights and that it was trained "
                "for this operator"
            )

    def to_dict(self) -> dict:
        """JSON-serialisable summary (no weights)."""
        d = {
            "kind": self.kind,
            "spec": self.spec,
            "n": int(self.n),
            "dtype": self.dtype,
            "device": self.device,
            "batch_size": int(self.batch_size),
            "arch": self.arch,
            "arch_kwargs": _jsonable(self.arch_kwargs),
            "class": None,
            "n_parameters": None,
        }
        d.update(self._what_it_is())
        if self.fixed_batch is not None:
            d["fixed_batch"] = int(self.fixed_batch)
        d.update(_jsonable(self.info))
        return d

    # ---------------------------------------------------------------------------------

    def _what_it_is(self) -> dict:
        """The class name and parameter count (module) or qualified name (callable)."""
        if self.module is not None:
            n_params = int(sum(p.numel() for p in self.module.parameters()))
            return {"class": type(self.module).__name__, "n_parameters": n_params}
        if self.func is not None:
            return {"class": getattr(self.func, "__qualname__", type(self.func).__name__)}
        return {}

    def _describe_input(self) -> str:
        if "input" in self.info:
            return f"{self.info['input']} (rows of {self.n} viewed as images)"
        if self.module is None:
            return f"a float64 NumPy array of shape (m, {self.n})"
        return f"a {self.dtype} tensor of shape (m, {self.n}) on {self.device}"

    def _raised(self, exc: BaseException, shape: tuple) -> FastinvError:
        return FastinvError(
            f"the model raised {type(exc).__name__}: {_error_text(exc)} on a batch of shape "
            f"{_fmt_shape(shape)}; it must accept {self._describe_input()}"
        )

    def _call_numpy(self, Yb: np.ndarray) -> np.ndarray:
        try:
            res = self.func(Yb.copy())
        except FastinvError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure inside the user's code
            raise self._raised(exc, Yb.shape) from exc
        return _output_to_numpy(res, Yb.shape, self.n)

    def _rows_for(self, b: int) -> int:
        """Rows to feed for a batch of ``b``: exported programs may need a fixed or least size."""
        if self.fixed_batch is not None and b < self.fixed_batch:
            return self.fixed_batch
        return max(b, self.min_batch)

    def _call_torch(self, Yb: np.ndarray) -> np.ndarray:
        import torch

        b = Yb.shape[0]
        Yp = _pad_rows(Yb, self._rows_for(b))
        x = torch.from_numpy(Yp).to(device=self.device, dtype=_torch_dtype(self.dtype))
        try:
            res = self.module(x)
        except FastinvError:  # an image model's wrong output shape, already explained
            raise
        except Exception as exc:  # noqa: BLE001 - any failure inside the user's network
            raise self._raised(exc, tuple(x.shape)) from exc
        return _output_to_numpy(res, Yp.shape, self.n)[:b]


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------


def load_model(
    spec: str | os.PathLike,
    *,
    n: int,
    arch: str | None = None,
    arch_kwargs: dict | str | None = None,
    trust_pickle: bool = False,
    device: str = "cpu",
    batch_size: int = 4096,
    image_shape: tuple[int, ...] | None = None,
    physics: Any = None,
) -> LoadedModel:
    """Load a trained model (file or Python callable); check that it maps (m, n) to (m, n).

    Parameters
    ----------
    spec : str or path
        A model file (TorchScript, torch.export, pickled module, state_dict, or a file from
        :func:`fastinv.nets.models.save_model`) or ``package.module:function`` /
        ``file.py:function`` naming a callable that maps an ndarray of shape (m, n) to (m, n).
    n : int
        Signal size of the operator.
    arch : str, optional
        ``package.module:Class`` (or a factory function) that builds the network whose
        state_dict ``spec`` holds. The current working directory is importable.
    arch_kwargs : dict or str, optional
        Constructor arguments for ``arch``: a dict, a JSON object string, or the path of a
        ``.json`` file holding one.
    trust_pickle : bool, default False
        Allow loading a pickled module (``torch.save(model)``); unpickling runs code from
        the file.
    device : str, default "cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or ``"auto"`` (CUDA when available).
    batch_size : int, default 4096
        Rows per forward call in :attr:`LoadedModel.fn`.
    image_shape : tuple (H, W) or (C, H, W), optional
        The model works on images: each batch of rows (B, n) is reshaped row-major to
        (B, C, H, W) (C = 1 for (H, W); pixel (r, c) of channel k is entry k·H·W + r·W + c)
        before the call, and the model must return images of that same shape, which are
        flattened back to (B, n); any other output shape is refused with a message that
        says so. Pass the operator's ``image_shape``. ``module`` is then a
        :class:`~fastinv.nets.models.ImageModelAdapter` around the network (rows in, rows
        out, so the audit's Jacobians see rows); a NumPy callable gets (B, C, H, W) arrays.
        Files written by fastinv's own ``save_model`` always map rows and are not reshaped.
    physics : object, optional
        A deepinv physics (``A`` / ``A_adjoint`` on (B, C, H, W) tensors; see
        :func:`physics_of` to get it back from an Operator). A network whose ``forward``
        has a parameter named ``physics``, or two required positional parameters (deepinv's
        ``model(y, physics)``), is called as ``model(y, physics)``, y shaped as the
        physics' measurements (from one call of ``physics.A`` on a zero image); any other
        network is called on images as with ``image_shape``. The image shape comes from
        ``image_shape``, else from the physics' ``img_size`` / ``tensor_size``.

    Raises
    ------
    FastinvError
        When the file is missing, unreadable or of an unsupported form, when a pickle is
        loaded without ``trust_pickle``, when a state_dict comes without ``arch`` or does not
        fit it, or when the model fails the probe check (see :meth:`LoadedModel.check`).
    """
    n = check_int(n, "n", lo=1)
    batch_size = check_int(batch_size, "batch_size", lo=1)
    spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec:
        raise FastinvError("the model spec is empty; pass a model file or package.module:function")
    tdev = _resolve_device(device)
    kwargs = _parse_arch_kwargs(arch_kwargs)
    lm = _load_any(spec, tdev=tdev, arch=arch, kwargs=kwargs, trust_pickle=trust_pickle)
    _for_images(lm, n, image_shape, physics)
    lm.n = n
    lm.spec = spec
    lm.batch_size = batch_size
    lm.check(n)
    return lm


def physics_of(operator) -> Any:
    """The deepinv physics an Operator was made from (its ``linear_map.physics``), or None.

    Also accepts the physics itself (anything with callable ``A`` and ``A_adjoint``)."""
    linear_map = getattr(operator, "linear_map", None)
    if linear_map is not None:  # an Operator (never touch its .A: that builds the dense A)
        return getattr(linear_map, "physics", None)
    if callable(getattr(operator, "A", None)) and callable(getattr(operator, "A_adjoint", None)):
        return operator
    return None


def _for_images(lm: LoadedModel, n: int, image_shape, physics) -> None:
    """Wrap ``lm``'s model, in place, to take rows when it works on images (see load_model)."""
    from fastinv.nets.spec import check_image_shape

    shape = check_image_shape(image_shape)
    if shape is None and physics is None:
        return
    if lm.module is not None and getattr(lm.module, "fastinv_spec", None) is not None:
        return  # fastinv's own models map rows
    x_shape = _x_shape(shape, physics, n)
    if lm.module is None:
        lm.func = _numpy_images(lm.func, x_shape)
        lm.info["input"] = f"images (B, {', '.join(map(str, x_shape))})"
        return
    from fastinv.nets.models import ImageModelAdapter

    use_physics = physics is not None and _takes_physics(lm.module)
    y_shape = _measurement_shape(physics, x_shape, lm.dtype) if use_physics else x_shape
    lm.module = ImageModelAdapter(lm.module, x_shape, y_shape, physics if use_physics else None)
    lm.info["input"] = (
        "model(y, physics)" if use_physics else f"images (B, {', '.join(map(str, x_shape))})"
    )


def _x_shape(shape, physics, n: int) -> tuple[int, int, int]:
    """The model's image shape (C, H, W): the one given, else the physics'; C·H·W = n."""
    from fastinv.nets.spec import check_image_shape

    if shape is None:
        stated = getattr(physics, "img_size", None) or getattr(physics, "tensor_size", None)
        shape = check_image_shape(stated, "the physics' img_size")
    if shape is None:
        raise FastinvError(
            "this physics does not state its image size; pass image_shape=(H, W) or (C, H, W)"
        )
    if len(shape) == 2:
        shape = (1, *shape)
    if int(np.prod(shape)) != n:
        raise FastinvError(
            f"image_shape {shape} has {int(np.prod(shape))} pixels but the operator has n = "
            f"{n}; pass the operator's image shape"
        )
    return shape


def _measurement_shape(physics, x_shape, dtype: str) -> tuple[int, ...]:
    """The shape of one measurement of ``physics``: ``physics.A`` on a zero image (in the
    model's dtype, which the physics will see)."""
    import torch

    with torch.no_grad():
        y0 = physics.A(torch.zeros((1, *x_shape), dtype=_torch_dtype(dtype)))
    return tuple(int(d) for d in y0.shape[1:])


def _takes_physics(module) -> bool:
    """Whether ``module.forward`` follows deepinv's ``model(y, physics)``: it has a
    parameter named ``physics`` or two required positional parameters."""
    import inspect

    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError, AttributeError):
        return False  # TorchScript / exported programs take tensors only
    if any(p.name == "physics" for p in params):
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in params if p.kind in positional and p.default is p.empty]
    return len(required) >= 2


def _numpy_images(func, x_shape):
    """A NumPy callable on (B, C, H, W) arrays as one on rows (B, n)."""

    def rows(Y: np.ndarray) -> np.ndarray:
        b = Y.shape[0]
        out = np.asarray(func(Y.reshape(b, *x_shape)))
        if out.shape != (b, *x_shape):
            raise FastinvError(
                f"the model maps images of shape {(b, *x_shape)} to {out.shape}; it must "
                f"return images of shape {(b, *x_shape)} for this operator"
            )
        return out.reshape(b, -1)

    rows.__qualname__ = getattr(func, "__qualname__", type(func).__name__)
    return rows


def _load_any(spec: str, *, tdev, arch, kwargs, trust_pickle) -> LoadedModel:
    """The model ``spec`` names: a file (by its contents) or a Python callable."""
    if os.path.isdir(spec):
        raise FastinvError(
            f"model path {spec!r} is a folder; pass the model file inside it (TorchScript, "
            "torch.export archive or state_dict)"
        )
    if os.path.isfile(spec):
        return _load_file(spec, tdev=tdev, arch=arch, kwargs=kwargs, trust_pickle=trust_pickle)
    if is_object_ref(spec):
        if arch is not None:
            raise FastinvError(
                f"--arch is only used with a state_dict file, but {spec!r} names a Python "
                "callable; drop --arch, or pass the state_dict file as the model"
            )
        return _load_callable(spec, tdev=tdev)
    raise FastinvError(
        f"model file {spec!r} not found; check the path, or name a Python function as "
        "package.module:function"
    )


def _load_file(path, *, tdev, arch, kwargs, trust_pickle) -> LoadedModel:
    """A model file, by the form :func:`_sniff` reads from its contents."""
    form = _sniff(path)
    if form == "torchscript":
        _no_arch(arch, path, "a TorchScript archive")
        return _from_module(_load_torchscript(path, tdev), "torchscript", tdev)
    if form == "export":
        _no_arch(arch, path, "a torch.export archive")
        return _load_export(path, tdev)
    if form == "safetensors":
        sd = _load_safetensors(path)
        return _from_state_dict(sd, path, tdev=tdev, arch=arch, kwargs=kwargs, info={})
    return _load_torch_file(path, tdev=tdev, arch=arch, kwargs=kwargs, trust_pickle=trust_pickle)


def _load_torch_file(path, *, tdev, arch, kwargs, trust_pickle) -> LoadedModel:
    """A ``torch.save`` file: read weights-only first; a pickle only when trusted."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise _unreadable(path, exc) from None
        # a pickled object: refused by the safe loader, so it carries classes (code)
        if not trust_pickle:
            raise FastinvError(
                f"{path} is a pickled module; loading a pickle runs code from the file: pass "
                "--trust-pickle if you trust it, or save a state_dict / TorchScript instead"
            ) from None
        _no_arch(arch, path, "a pickled module")
        return _load_pickle(path, tdev)
    except Exception as exc:  # noqa: BLE001 - anything else: try TorchScript, then give up
        try:
            module = _load_torchscript(path, tdev)
        except Exception:  # noqa: BLE001
            raise _unreadable(path, exc) from None
        _no_arch(arch, path, "a TorchScript archive")
        return _from_module(module, "torchscript", tdev)
    return _from_plain_object(obj, path, tdev=tdev, arch=arch, kwargs=kwargs)


def _from_plain_object(obj, path, *, tdev, arch, kwargs) -> LoadedModel:
    """What the safe loader read (plain tensors and containers, no code) as a model."""
    import torch

    if isinstance(obj, Mapping) and "fastinv_spec" in obj and arch is None:
        return _load_fastinv(path, tdev)
    if isinstance(obj, torch.Tensor):
        raise FastinvError(
            f"{path} holds a single tensor of shape {tuple(obj.shape)}, not a model; save the "
            "network (TorchScript, torch.export, or its state_dict with --arch)"
        )
    sd, key = _find_state_dict(obj)
    if sd is None:
        what = (
            f"a dict with keys {_first(list(obj.keys()), 6)}"
            if isinstance(obj, Mapping)
            else f"a {type(obj).__name__}"
        )
        raise FastinvError(
            f"{path} holds {what} but no state_dict of tensors; save the model with "
            "torch.save(model.state_dict()), torch.jit.save or torch.export.save"
        )
    info = {"state_dict_key": key} if key is not None else {}
    return _from_state_dict(sd, path, tdev=tdev, arch=arch, kwargs=kwargs, info=info)


def _sniff(path: str) -> str:
    """Guess the file form from its contents: torchscript, export, safetensors or torch."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise FastinvError(
            f"cannot read model file {path!r} ({exc.strerror or exc}); check its permissions"
        ) from None
    if len(head) >= 9 and head[8:9] == b"{" and path.lower().endswith(".safetensors"):
        return "safetensors"
    if not zipfile.is_zipfile(path):
        return "torch"  # a legacy (non-zip) torch.save file, or garbage: torch.load decides
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return "torch"
    rest = [nm.split("/", 1)[1] if "/" in nm else nm for nm in names]
    if any(r == "constants.pkl" or r.startswith("code/") for r in rest):
        return "torchscript"
    if any(
        r in ("archive_format", "serialized_exported_program.json")
        or (r.startswith("models/") and r.endswith(".json"))
        for r in rest
    ):
        return "export"
    return "torch"


def _unreadable(path: str, exc: BaseException) -> FastinvError:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 200:
        first = first[:197] + "..."
    return FastinvError(
        f"could not read {path} as a torch model ({type(exc).__name__}: {first}); the file is "
        "damaged or not a model: save it with torch.jit.save, torch.export.save or "
        "torch.save(model.state_dict())"
    )


def _no_arch(arch, path, what) -> None:
    if arch is not None:
        raise FastinvError(
            f"--arch is only used with a state_dict file, but {path} is {what} that holds its "
            "own architecture; drop --arch"
        )


def _load_torchscript(path: str, tdev):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(path, map_location=tdev)


def _load_export(path: str, tdev) -> LoadedModel:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.load(path)
            module = ep.module()
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(path, exc) from None
    try:
        module = module.to(tdev)
    except Exception as exc:  # noqa: BLE001
        raise FastinvError(
            f"could not move the exported program in {path} to {tdev} ({type(exc).__name__}: "
            f"{exc}); export it on that device, or pass --device cpu"
        ) from None
    lm = _from_module(module, "export", tdev)
    lm.fixed_batch, lm.min_batch = _export_batch_constraints(ep)
    return lm


def _export_batch_constraints(ep) -> tuple[int | None, int]:
    """(fixed batch size or None, smallest accepted batch size) of an exported program."""
    try:
        user_inputs = set(ep.graph_signature.user_inputs)
        for node in ep.graph.nodes:
            if node.op != "placeholder" or node.name not in user_inputs:
                continue
            shape = node.meta["val"].shape
            if len(shape) == 0:
                return None, 0
            b = shape[0]
            if isinstance(b, int):
                return int(b), 0
            lo = 0
            for sym, vr in ep.range_constraints.items():
                if sym == b.node.expr:
                    try:
                        lo = int(vr.lower)
                    except (TypeError, ValueError):
                        lo = 0
            return None, max(lo, 0)
    except Exception:  # noqa: BLE001 - metadata layout differs between torch versions
        pass
    return None, 0


def _load_pickle(path: str, tdev) -> LoadedModel:
    import torch
    from torch import nn

    try:
        with cwd_on_path(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location=tdev, weights_only=False)
    except (ImportError, AttributeError) as exc:
        raise FastinvError(
            f"could not unpickle {path} ({type(exc).__name__}: {exc}); the code that defines "
            "the model class must be importable: run from its folder or add it to PYTHONPATH"
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(path, exc) from None
    if isinstance(obj, Mapping) and not isinstance(obj, nn.Module):
        mods = [v for v in obj.values() if isinstance(v, nn.Module)]
        if len(mods) == 1:
            obj = mods[0]
    if not isinstance(obj, nn.Module):
        raise FastinvError(
            f"{path} unpickles to a {type(obj).__name__}, not a torch.nn.Module; save the "
            "network itself (torch.save(model)) or its state_dict with --arch"
        )
    return _from_module(obj, "pickle", tdev)


def _load_fastinv(path: str, tdev) -> LoadedModel:
    from fastinv.nets.models import load_saved_model

    module = load_saved_model(path, device=tdev)
    return _from_module(module, "state_dict", tdev, info={"format": "fastinv"})


def _load_safetensors(path: str) -> dict:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise FastinvError(
            f"{path} is a safetensors file and the safetensors package is not installed; "
            "pip install safetensors, or save the state_dict with torch.save"
        ) from None
    try:
        return load_file(path, device="cpu")
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(path, exc) from None


def _find_state_dict(obj) -> tuple[dict | None, str | None]:
    """A state_dict (mapping of str -> tensor) in ``obj`` itself or under a checkpoint key."""
    if _is_state_dict(obj):
        return dict(obj), None
    if isinstance(obj, Mapping):
        for key in _CHECKPOINT_KEYS:
            if key in obj and _is_state_dict(obj[key]):
                return dict(obj[key]), key
    return None, None


def _is_state_dict(obj) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _from_state_dict(sd, path, *, tdev, arch, kwargs, info) -> LoadedModel:
    """Rebuild ``arch(**kwargs)`` and load the state_dict ``sd`` into it."""
    if arch is None:
        raise FastinvError(
            f"{path} holds a state_dict (weights only, {len(sd)} tensors); pass --arch "
            "package.module:Class (with --arch-kwargs '{...}' if its constructor needs "
            "arguments) so fastinv can rebuild the network"
        )
    module = _build_arch(arch, kwargs)
    sd = _matching_state_dict(sd, module, path, arch)
    module = _to_saved_precision(module, sd)
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "size mismatch" in ln), lines[-1] if lines else "")
        raise FastinvError(
            f"the state_dict in {path} does not fit {arch}: {detail.rstrip('.')}; pass the "
            "--arch-kwargs it was trained with"
        ) from None
    lm = _from_module(module.to(tdev), "state_dict", tdev, info=dict(info))
    lm.arch = arch
    lm.arch_kwargs = dict(kwargs)
    return lm


def _build_arch(arch: str, kwargs: dict):
    """The user's network ``arch(**kwargs)`` (a class or a factory function)."""
    from torch import nn

    factory = import_object(arch, what="--arch")
    if not callable(factory):
        raise FastinvError(
            f"--arch {arch} is a {type(factory).__name__}, not a class; pass the nn.Module "
            "subclass (or a function that builds one) as package.module:Class"
        )
    try:
        module = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's constructor
        raise FastinvError(
            f"building {arch}(**{kwargs}) raised {type(exc).__name__}: {exc}; pass the "
            "constructor arguments it needs with --arch-kwargs as a JSON object"
        ) from None
    if not isinstance(module, nn.Module):
        raise FastinvError(
            f"--arch {arch} built a {type(module).__name__}, not a torch.nn.Module; pass the "
            "network class"
        )
    return module


def _matching_state_dict(sd: dict, module, path, arch: str) -> dict:
    """``sd`` with its keys matching the module's (a wrapper prefix dropped), or an error."""
    want = set(module.state_dict().keys())
    sd = _strip_wrapper_prefix(sd, want)
    missing = [k for k in module.state_dict() if k not in sd]
    unexpected = [k for k in sd if k not in want]
    if missing or unexpected:
        raise FastinvError(
            f"the state_dict in {path} does not match {arch}: missing keys "
            f"{_first(missing)}, unexpected keys {_first(unexpected)}; check --arch and "
            "--arch-kwargs (the network must be built exactly as when it was saved)"
        )
    return sd


def _to_saved_precision(module, sd: dict):
    """Respect the saved precision: a float64 state_dict makes a float64 network."""
    fdt = {v.dtype for v in sd.values() if v.is_floating_point()}
    if len(fdt) == 1:
        saved = next(iter(fdt))
        current = _first_float(module)
        if current is not None and current.dtype != saved:
            module = module.to(saved)
    return module


def _strip_wrapper_prefix(sd: dict, want: set) -> dict:
    """Drop a DataParallel/torch.compile prefix when every key has it and the module has none."""
    if set(sd) == want:
        return sd
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in sd):
            stripped = {k[len(prefix) :]: v for k, v in sd.items()}
            if set(stripped) == want:
                return stripped
    return sd


def _load_callable(spec: str, tdev) -> LoadedModel:
    from torch import nn

    obj = import_object(spec, what="the model")
    if _is_model_factory(obj):
        obj = _call_model_factory(obj, spec)
    if isinstance(obj, nn.Module):
        return _from_module(obj.to(tdev), "callable", tdev)
    if isinstance(obj, type):
        raise FastinvError(
            f"{spec} is a class, not a function; to load trained weights into it, pass the "
            f"state_dict file as the model and --arch {spec}"
        )
    if not callable(obj):
        raise FastinvError(
            f"{spec} is a {type(obj).__name__}, not a callable; name a function that maps an "
            "(m, n) NumPy array to (m, n)"
        )
    return LoadedModel(kind="callable", n=0, module=None, dtype="float64", device="cpu", func=obj)


def _is_model_factory(obj) -> bool:
    """A function of no parameters at all (``make_model()``): it builds the model."""
    import inspect

    if isinstance(obj, type) or not callable(obj):
        return False
    try:
        return len(inspect.signature(obj).parameters) == 0
    except (TypeError, ValueError):  # builtins without a signature
        return False


def _call_model_factory(factory, spec: str):
    """The torch module that the factory ``spec`` returns."""
    from torch import nn

    try:
        obj = factory()
    except Exception as e:  # noqa: BLE001 - the user's code: one line, not a traceback
        raise FastinvError(f"the model factory {spec}() raised {type(e).__name__}: {e}") from None
    if not isinstance(obj, nn.Module):
        raise FastinvError(
            f"the model factory {spec}() returned a {type(obj).__name__}; a function without "
            "parameters must return a torch.nn.Module (a NumPy model takes the (m, n) array)"
        )
    return obj


def _from_module(module, kind: str, tdev, *, info: dict | None = None) -> LoadedModel:
    import torch

    try:
        module.eval()
    except Exception:  # noqa: BLE001 - exported GraphModules refuse .eval()
        pass
    t = _first_float(module)
    dtype = t.dtype if t is not None else torch.float32
    dev = t.device if t is not None else _first_tensor_device(module, tdev)
    return LoadedModel(
        kind=kind,
        n=0,
        module=module,
        dtype=dtype_name(dtype),
        device=str(dev),
        info=dict(info or {}),
    )


def _first_float(module):
    """The module's first floating parameter (or buffer), or None."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.is_floating_point():
            return t
    return None


def _first_tensor_device(module, tdev):
    for t in itertools.chain(module.parameters(), module.buffers()):
        return t.device
    return tdev


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def _parse_arch_kwargs(arch_kwargs) -> dict:
    if arch_kwargs is None:
        return {}
    if isinstance(arch_kwargs, Mapping):
        return dict(arch_kwargs)
    if isinstance(arch_kwargs, str):
        text = arch_kwargs
        if text.strip().lower().endswith(".json") and os.path.isfile(text.strip()):
            with open(text.strip()) as fh:
                text = fh.read()
        try:
            val = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise FastinvError(
                f"--arch-kwargs is not valid JSON ({exc.msg} at char {exc.pos}); pass a JSON "
                """object such as '{"width": 64, "depth": 2}'"""
            ) from None
        if not isinstance(val, dict):
            raise FastinvError(
                f"--arch-kwargs must be a JSON object, got {type(val).__name__}; pass "
                """something like '{"width": 64}'"""
            )
        return val
    raise FastinvError(
        f"arch_kwargs must be a dict or a JSON object string, got {type(arch_kwargs).__name__}"
    )


def _resolve_device(device) -> str:
    """The device as a string; None means the CPU (resolve_device checks the rest)."""
    if device is None:
        return "cpu"
    from fastinv._device import resolve_device

    return str(resolve_device(device))


def _output_to_numpy(res, in_shape: tuple, n: int) -> np.ndarray:
    """Validate a model output for an input of shape ``in_shape`` and return it as float64."""
    import torch

    b = in_shape[0]
    want = f"it must map (m, {n}) to (m, {n}) for this operator"
    if isinstance(res, torch.Tensor):
        shape = tuple(res.shape)
        if not res.is_floating_point():
            raise FastinvError(
                f"the model returned values of dtype {str(res.dtype).removeprefix('torch.')}; "
                "it must return floating-point values (float32 or float64)"
            )
        if shape != (b, n):
            raise FastinvError(
                f"the model maps a {_fmt_shape(in_shape)} batch to shape "
                f"{_fmt_shape(shape)}; {want}"
            )
        return res.detach().to(device="cpu", dtype=torch.float64).numpy()
    if isinstance(res, tuple | list) and not isinstance(res, np.ndarray):
        raise FastinvError(
            f"the model returned a {type(res).__name__} of {len(res)} items for a "
            f"{_fmt_shape(in_shape)} batch; it must return one array of shape (m, {n})"
        )
    if not isinstance(res, np.ndarray) and not hasattr(res, "__array__"):
        raise FastinvError(
            f"the model returned a {type(res).__name__} for a {_fmt_shape(in_shape)} batch; "
            f"it must return an array of shape (m, {n})"
        )
    arr = np.asarray(res)
    if not np.issubdtype(arr.dtype, np.floating):
        raise FastinvError(
            f"the model returned values of dtype {arr.dtype}; it must return floating-point "
            "values (float32 or float64)"
        )
    if arr.shape != (b, n):
        raise FastinvError(
            f"the model maps a {_fmt_shape(in_shape)} batch to shape {_fmt_shape(arr.shape)}; "
            f"{want}"
        )
    return arr.astype(np.float64, copy=False)


def _torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def _fmt_shape(shape) -> str:
    shape = tuple(int(s) for s in shape)
    return str(shape)


def _first(items: list, k: int = 3) -> str:
    if not items:
        return "[]"
    shown = ", ".join(repr(x) for x in items[:k])
    more = f", ... ({len(items)} in all)" if len(items) > k else ""
    return f"[{shown}{more}]"


def _error_text(exc: BaseException) -> str:
    """The useful line of an exception's message, at most 300 characters."""
    msg = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = msg[0] if msg else ""
    if text.startswith("The following operation failed in the TorchScript") and msg:
        # TorchScript puts the real error on the last line, after two tracebacks
        text = msg[-1]
        for prefix in ("RuntimeError: ", "ValueError: "):
            text = text.removeprefix(prefix)
    if len(text) > 300:
        text = text[:297] + "..."
    return text


def _pad_rows(Yb: np.ndarray, rows: int) -> np.ndarray:
    """``Yb`` zero-padded to ``rows`` rows (the caller drops the padded outputs)."""
    if rows == Yb.shape[0]:
        return Yb
    Yp = np.zeros((rows, Yb.shape[1]), dtype=np.float64)
    Yp[: Yb.shape[0]] = Yb
    return Yp


def _jsonable(obj):
    """Plain JSON values for ``to_dict``; anything else as its repr.

    Unlike :func:`fastinv.io.to_jsonable` (which leaves unknown objects as they are and
    turns NaN into None), a user's ``arch_kwargs`` may hold any object, and the summary must
    stay JSON-serialisable whatever it holds.
    """
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return repr(obj)
