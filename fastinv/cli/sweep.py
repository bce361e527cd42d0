"""`fastinv sweep`: a controlled family of models. The work is
:func:`fastinv.workflows.sweep.run_sweep`."""

from __future__ import annotations

from pathlib import Path

import click

from fastinv._progress import Stopwatch
from fastinv.cli import common
from fastinv.errors import FastinvError

__all__ = ["LIST", "sweep"]

#: help-text tail of the options that take a comma-separated list
LIST = "comma-separated list; a single value is fine"

#: the axes of the family in the order they are checked: (name, least value), None for the
#: noise levels (numbers >= 0)
_AXES = (("epochs", 1), ("widths", 1), ("depths", 0), ("samples", 2), ("noise", None), ("seeds", 0))


@click.command()
@common.operator_option(
    help="catalogue name (see `fastinv operators`), a matrix file, or a factory "
    "module:function or file.py:function"
)
@common.n_option(help="size n of A (default 64 for catalogue operators)")
@common.param_option(help="operator parameter, e.g. --param cond=10 (repeatable)")
@click.option(
    "--epochs",
    default="5,20,60",
    show_default=True,
    help=f"checkpoint epochs ({LIST}); each model is trained once to the largest",
)
@click.option("--widths", default="64,256", show_default=True, help=f"hidden widths ({LIST})")
@click.option("--depths", default="1,2", show_default=True, help=f"hidden layers ({LIST})")
@click.option(
    "--samples", default="2000,8000", show_default=True, help=f"training-set sizes ({LIST})"
)
@click.option("--noise", default="0.01", show_default=True, help=f"noise levels ({LIST})")
@click.option("--seeds", default="0,1", show_default=True, help=f"model seeds ({LIST})")
@common.prior_option()
@common.prior_param_option()
@common.noise_type_option()
@click.option(
    "--ood-prior",
    default=None,
    help="prior of the out-of-distribution probes [piecewise_constant, or smooth "
    "when training on piecewise_constant]",
)
@click.option(
    "--ood-noise",
    type=float,
    default=None,
    help="noise level of the out-of-distribution probes [2 × the training noise]",
)
@common.model_option()
@common.activation_option()
@common.optimizer_option()
@common.lr_option()
@common.batch_size_option()
@common.schedule_option(
    default="constant",
    help="learning-rate schedule over max(epochs) (constant: a checkpoint at epoch e "
    "equals training for e epochs)",
)
@common.probes_option(help="probes for C [max(2000, 4n)]")
@common.test_samples_option()
@common.device_option("cpu", ("auto", "cpu", "cuda"))
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="worker processes on the CPU (models run one after another on CUDA)",
)
@click.option(
    "--cluster",
    default=None,
    metavar="ADDRESS",
    help="run each model as a task of a Dask cluster: tcp://HOST:PORT (a running scheduler) "
    "or local:N (N local worker processes); needs pip install -e '.[cluster]'",
)
@common.seed_option(help="seeds the common test sets and probes")
@click.option(
    "--bootstrap",
    "n_boot",
    type=int,
    default=2000,
    show_default=True,
    help="bootstrap resamples for the confidence intervals",
)
@common.out_option(help="output folder [runs/sweep-<operator>-n<n>-<time>]")
@click.option(
    "--resume",
    is_flag=True,
    help="continue the sweep in --out: models whose file exists are not retrained",
)
@common.force_option(help="overwrite the files of an existing --out folder")
@common.quiet_option()
@common.friendly
def sweep(op_params, prior_params, jobs, batch_size, out, quiet, **opts):
    """Train a controlled family of models (every width × depth × samples × noise × seed,
    checkpointed at each of --epochs) and test whether test error goes with the distance of
    their surrogate C to A⁻¹ and to the LMMSE (Spearman ρ with bootstrap CI)."""
    from fastinv.workflows.sweep import run_sweep

    axes = _parse_axes(opts)
    _check_options(jobs, batch_size, opts)
    operator_params = common.parse_params(op_params, "--param")
    opts["n"] = common.catalogue_n(opts["operator"], opts["n"], operator_params)
    if out is None:
        stem = Path(opts["operator"]).stem
        out = common.default_out(f"sweep-{stem}-n{opts['n'] or 'file'}")
    clock = Stopwatch()
    res = run_sweep(
        opts.pop("operator"),
        opts.pop("n"),
        **axes,
        jobs=jobs,
        batch_size=None if batch_size == 0 else batch_size,
        operator_params=operator_params,
        prior_params=common.parse_params(prior_params, "--prior-param"),
        out=out,
        progress=not quiet,
        **opts,
    )
    _echo_summary(res, out, clock.seconds)


def _parse_axes(opts: dict) -> dict:
    """Take the axis strings out of ``opts`` as sorted lists of values."""
    from fastinv.workflows.sweep import float_list, int_list

    axes = {}
    for name, lo in _AXES:
        text, what = opts.pop(name), f"--{name}"
        if lo is None:
            axes[name] = float_list(text, what)
        else:
            axes[name] = int_list(text, what, lo=lo)
    return axes


def _check_options(jobs: int, batch_size: int, opts: dict) -> None:
    if jobs < 1:
        raise FastinvError(f"--jobs must be at least 1, got {jobs}")
    if batch_size < 0:
        raise FastinvError(f"--batch-size must be >= 0 (0 for full batch), got {batch_size}")
    if opts["resume"] and opts["force"]:
        raise FastinvError("--resume and --force exclude each other; choose one")


def _echo_summary(res, out, wall: float) -> None:
    n_models = len({r["key"] for r in res.rows})
    click.echo(
        f"\nfastinv sweep finished in {wall:.1f} s: {n_models} models, "
        f"{len(res.rows)} rows ({res.timings.get('models_trained', 0)} trained now) — "
        f"{Path(out) / 'summary.md'}"
    )
    for c in res.correlations:
        part = "" if c.partial_rho is None else f", partial {c.partial_rho:.3f} | {c.partial_on}"
        click.echo(f"  ρ({c.x}, {c.y}) = {c.rho:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]{part}")
    for line in res.summary:
        click.echo(f"  - {line}")
