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
    # the problem
    "Operator": ("fastinv.problem.operators", "Operator"),
    "make_operator": ("fastinv.problem.operators", "make_operator"),
    "load_operator": ("fastinv.problem.operators", "load_operator"),
    "list_operators": ("fastinv.problem.operators", "list_operators"),
    "as_operator": ("fastinv.problem.operators", "as_operator"),
    "make_prior": ("fastinv.problem.priors", "make_prior"),
    "generate": ("fastinv.problem.data", "generate"),
    # the networks
    "make_model": ("fastinv.nets.models", "make_model"),
    "TrainSpec": ("fastinv.nets.spec", "TrainSpec"),
    "train": ("fastinv.nets.training", "train"),
    "load_model": ("fastinv.nets.loading", "load_model"),
    # the numerics
    "MomentAccumulator": ("fastinv.linalg.moments", "MomentAccumulator"),
    "LinearFit": ("fastinv.linalg.moments", "LinearFit"),
    "fit_linear": ("fastinv.linalg.surrogate", "fit_linear"),
    "fit_surrogate": ("fastinv.linalg.surrogate", "fit_surrogate"),
    "surrogate_moments": ("fastinv.linalg.surrogate", "surrogate_moments"),
    "jacobians": ("fastinv.linalg.jacobians", "jacobians"),
    "mean_jacobian": ("fastinv.linalg.jacobians", "mean_jacobian"),
    "rsvd": ("fastinv.linalg.randomized", "rsvd"),
    "RSVDResult": ("fastinv.linalg.randomized", "RSVDResult"),
    "svd_topk": ("fastinv.linalg.randomized", "svd_topk"),
    "compare": ("fastinv.linalg.spectral", "compare"),
    # the audit and its report
    "audit": ("fastinv.auditing.core", "audit"),
    "AuditResult": ("fastinv.auditing.core", "AuditResult"),
    "write_audit_report": ("fastinv.report.writer", "write_audit_report"),
    # the workflows behind the commands
    "RunConfig": ("fastinv.workflows.run", "RunConfig"),
    "run_experiment": ("fastinv.workflows.run", "run_experiment"),
    "analyze_model": ("fastinv.workflows.analyze", "analyze_model"),
    "run_sweep": ("fastinv.workflows.sweep", "run_sweep"),
    "SweepResult": ("fastinv.workflows.sweep", "SweepResult"),
    # modules
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
