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
    "Operator": ("fastinv.problem.operators", "Operator"),
    "make_operator": ("fastinv.problem.operators", "make_operator"),
    "load_operator": ("fastinv.problem.operators", "load_operator"),
    "list_operators": ("fastinv.problem.operators", "list_operators"),
    "generate": ("fastinv.problem.data", "generate"),
    "make_prior": ("fastinv.problem.priors", "make_prior"),
    "train": ("fastinv.nets.training", "train"),
    "make_model": ("fastinv.nets.models", "make_model"),
    "MomentAccumulator": ("fastinv.linalg.surrogate", "MomentAccumulator"),
    "fit_linear": ("fastinv.linalg.surrogate", "fit_linear"),
    "fit_surrogate": ("fastinv.linalg.surrogate", "fit_surrogate"),
    "jacobians": ("fastinv.linalg.surrogate", "jacobians"),
    "mean_jacobian": ("fastinv.linalg.surrogate", "mean_jacobian"),
    "rsvd": ("fastinv.linalg.randomized", "rsvd"),
    "svd_topk": ("fastinv.linalg.randomized", "svd_topk"),
    "compare": ("fastinv.linalg.spectral", "compare"),
    "audit": ("fastinv.auditing.core", "audit"),
    "estimators": ("fastinv.linalg.estimators", None),
    "spectral": ("fastinv.linalg.spectral", None),
    "operators": ("fastinv.problem.operators", None),
    "surrogate": ("fastinv.linalg.surrogate", None),
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
