"""``fastinv.pipeline``, the first edition's home of `fastinv run` and `fastinv analyze`: its
names stay importable from here.

The code lives in :mod:`fastinv.workflows.run` (:class:`RunConfig`, :func:`run_experiment`,
:func:`memory_needed`, ...), :mod:`fastinv.workflows.analyze` (:func:`analyze_model`,
:func:`load_array`) and :mod:`fastinv.report.writer` (:func:`write_run_dir`).
"""

from fastinv.report.writer import write_run_dir
from fastinv.workflows.analyze import analyze_model, load_array
from fastinv.workflows.run import (
    LARGE_N,
    RunConfig,
    memory_needed,
    resolved_width_epochs,
    run_experiment,
)

__all__ = [
    "LARGE_N",
    "RunConfig",
    "analyze_model",
    "load_array",
    "memory_needed",
    "resolved_width_epochs",
    "run_experiment",
    "write_run_dir",
]
