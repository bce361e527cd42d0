"""`fastinv run`: one experiment end to end. The work is
:func:`fastinv.workflows.run.run_experiment`."""

from __future__ import annotations

from pathlib import Path

import click

from fastinv._progress import Stopwatch
from fastinv.auditing.references import inverse_wording
from fastinv.cli import common

__all__ = ["run"]


@click.command()
@common.operator_option(
    help="catalogue name (see `fastinv operators`), a matrix file .npy/.npz/.mat/.csv/.txt, "
    "or a factory module:function or file.py:function"
)
@common.n_option(
    help="size n of A (default 64 for catalogue operators; taken from the file for a matrix file)"
)
@common.param_option(help="operator parameter, e.g. --param kappa=5 (repeatable)")
@common.prior_option(
    default=None,
    show_default=False,
    help="signal prior: gaussian, smooth, piecewise_constant, sparse; for images: grf, "
    "shapes, images (with --data) [default: smooth for 1-D operators, grf for images]",
)
@common.prior_param_option(help="prior parameter, e.g. --prior-param length_scale=0.1 (repeatable)")
@common.path_option(
    "--data",
    help="your clean images, an (N, H, W) or (N, n) array in .npy/.npz: the signals are drawn "
    "from them (prior 'images'; leave --prior unset)",
)
@click.option(
    "--noise",
    type=float,
    default=0.01,
    show_default=True,
    help="noise level (relative ‖e‖/‖Ax‖, or σ with --noise-type absolute)",
)
@common.noise_type_option()
@click.option("--samples", type=int, default=8000, show_default=True, help="training pairs")
@common.test_samples_option()
@common.probes_option(help="inputs at which C is fitted [max(2000, 4n)]")
@common.model_option(
    type=click.Choice(["mlp", "linear", "residual", "cnn"]),
    help="cnn: a residual CNN on the back-projection Aᵀy (image operators, e.g. blur2d)",
)
@click.option(
    "--width", type=int, default=None, help="hidden width [max(n, 64) up to n = 1024, else 1024]"
)
@click.option("--depth", type=int, default=2, show_default=True, help="hidden layers")
@common.activation_option()
@click.option("--bias/--no-bias", default=True, show_default=True)
@common.optimizer_option()
@common.lr_option()
@click.option("--epochs", type=int, default=None, help="[60 up to n = 1024, else 20]")
@common.batch_size_option()
@common.schedule_option(default="cosine")
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--patience", type=int, default=None, help="early-stopping patience (epochs)")
@click.option(
    "--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True
)
@click.option(
    "--precision",
    type=click.Choice(["float32", "bf16", "tf32"]),
    default="float32",
    show_default=True,
    help="training arithmetic: bf16 autocast (CPU/CUDA) or TF32 matmuls (CUDA); weights, "
    "losses and the audit stay float32",
)
@common.device_option("auto", ("auto", "cpu", "cuda"))
@common.seed_option()
@common.jacobian_probes_option()
@common.audit_rank_option()
@common.path_option(
    "--config",
    "config_path",
    help="rerun from a run directory's config.json (other options are ignored)",
)
@common.out_option(help="run directory [runs/<operator>-n<n>-<time>]")
@common.force_option()
@common.quiet_option()
@common.friendly
def run(config_path, out, force, quiet, op_params, prior_params, **opts):
    """Make A, generate (x, y = A x + e), train a network, fit its affine surrogate C,
    audit C against A⁻¹ and the classical inverses, and write a report."""
    from fastinv.workflows.run import run_experiment

    cfg = _config(config_path, op_params, prior_params, opts)
    if out is None:
        stem = Path(cfg.operator).stem if Path(cfg.operator).suffix else cfg.operator
        out = common.default_out(f"{stem}-n{cfg.n or 'file'}")
    clock = Stopwatch()
    metrics = run_experiment(cfg, out, progress=not quiet, force=force)
    if metrics is not None:  # None: a torchrun rank other than 0 (rank 0 reports)
        _echo_summary(metrics, out, clock.seconds)


def _config(config_path, op_params, prior_params, opts: dict):
    """The RunConfig: read from ``config_path``, else built from the options."""
    from fastinv.workflows.run import RunConfig

    if config_path:
        return RunConfig.from_json(config_path)
    opts["batch_size"] = None if opts["batch_size"] == 0 else opts["batch_size"]
    operator_params = common.parse_params(op_params, "--param")
    opts["n"] = common.catalogue_n(opts["operator"], opts["n"], operator_params)
    return RunConfig(
        operator_params=operator_params,
        prior_params=common.parse_params(prior_params, "--prior-param"),
        **opts,
    )


def _echo_summary(metrics: dict, out, wall: float) -> None:
    click.echo(f"\nfastinv run finished in {wall:.1f} s — report: {Path(out) / 'report.md'}")
    err = metrics.get("errors", {})
    sur = metrics.get("surrogate", {})
    audit = metrics.get("audit") or {}
    if audit.get("path") == "top-k":
        full = metrics.get("errors_full") or {}
        click.echo(
            f"  top-k audit (k = {audit.get('k')}): {audit.get('why')}\n"
            f"  test error on the k directions: network {_g(err.get('network'))}, surrogate "
            f"{_g(err.get('surrogate'))}; over all of x: network "
            f"{_g(full.get('network'))}; R² {_g(sur.get('r2_heldout'))}"
        )
    else:
        line = (
            f"  test error: network {_g(err.get('network'))}, surrogate C "
            f"{_g(err.get('surrogate'))}; R² {_g(sur.get('r2_heldout'))}; ‖C − A⁻¹‖₂/‖A⁻¹‖₂ "
            f"{_g(sur.get('rel_dist_to_inverse'))}"
        )
        click.echo(inverse_wording(line, metrics))
    for line in metrics.get("verdict", []):
        click.echo(f"  - {line}")


def _g(x):
    return "n/a" if x is None else f"{x:.4g}"
