"""fastinv: train a network to invert a linear operator, then explain what it learned.

The public API is imported lazily so that ``import fastinv`` stays light (no torch,
matplotlib or click until a stage that needs them is used).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> "module:attribute" (attribute None: the module itself)
_LAZY = {
    "FastinvError": ("fastinv.errors", "FastinvError"),
    "Operator": ("fastinv.operators", "Operator"),
    "make_operator": ("fastinv.operators", "make_operator"),
    "load_operator": ("fastinv.operators", "load_operator"),
    "list_operators": ("fastinv.operators", "list_operators"),
    "generate": ("fastinv.data", "generate"),
    "make_prior": ("fastinv.priors", "make_prior"),
    "train": ("fastinv.training", "train"),
    "make_model": ("fastinv.models", "make_model"),
    "MomentAccumulator": ("fastinv.surrogate", "MomentAccumulator"),
    "fit_linear": ("fastinv.surrogate", "fit_linear"),
    "fit_surrogate": ("fastinv.surrogate", "fit_surrogate"),
    "jacobians": ("fastinv.surrogate", "jacobians"),
    "mean_jacobian": ("fastinv.surrogate", "mean_jacobian"),
    "rsvd": ("fastinv.randomized", "rsvd"),
    "svd_topk": ("fastinv.randomized", "svd_topk"),
    "compare": ("fastinv.spectral", "compare"),
    "audit": ("fastinv.auditing", "audit"),
    "estimators": ("fastinv.estimators", None),
    "spectral": ("fastinv.spectral", None),
    "operators": ("fastinv.operators", None),
    "surrogate": ("fastinv.surrogate", None),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    try:
        mod, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'fastinv' has no attribute {name!r}") from None
    module = importlib.import_module(mod)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__
