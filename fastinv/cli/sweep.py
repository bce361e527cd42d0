"""`fastinv sweep`: the click command (registered in fastinv/cli.py with
``main.add_command(sweep)``). The work is :func:`fastinv.workflows.sweep.run_sweep`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from fastinv.errors import FastinvError


def _lazy_friendly(fn):
    """fastinv.cli.main.friendly, looked up at call time: fastinv/cli.py imports this module at its
    end (``main.add_command(sweep)``), so importing fastinv.cli.main here at import time would
    cycle."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from fastinv.cli.main import friendly

        return friendly(fn)(*args, **kwargs)

    return wrapper


LIST = "comma-separated list; a single value is fine"


@click.command()
@click.option(
    "--operator",
    default="shaw",
    show_default=True,
    help="catalogue name (see `fastinv operators`) or a matrix file",
)
@click.option(
    "--n", type=int, default=None, help="size n of A (default 64 for catalogue operators)"
)
@click.option(
    "--param",
    "op_params",
    multiple=True,
    metavar="KEY=VALUE",
    help="operator parameter, e.g. --param cond=10 (repeatable)",
)
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
@click.option(
    "--prior",
    default="smooth",
    show_default=True,
    help="signal prior: gaussian, smooth, piecewise_constant, sparse",
)
@click.option("--prior-param", "prior_params", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--noise-type",
    type=click.Choice(["relative", "absolute"]),
    default="relative",
    show_default=True,
)
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
@click.option(
    "--model", type=click.Choice(["mlp", "linear", "residual"]), default="mlp", show_default=True
)
@click.option("--activation", default="relu", show_default=True)
@click.option(
    "--optimizer", type=click.Choice(["adam", "gd", "sgd"]), default="adam", show_default=True
)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True, help="0 for full batch")
@click.option(
    "--schedule",
    type=click.Choice(["constant", "cosine", "step"]),
    default="constant",
    show_default=True,
    help="learning-rate schedule over max(epochs) (constant: a checkpoint at epoch e "
    "equals training for e epochs)",
)
@click.option("--probes", type=int, default=None, help="probes for C [max(2000, 4n)]")
@click.option("--test-samples", type=int, default=None, help="test pairs [max(1000, 2n)]")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True
)
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="worker processes on the CPU (models run one after another on CUDA)",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="seeds the common test sets and probes"
)
@click.option(
    "--bootstrap",
    "n_boot",
    type=int,
    default=2000,
    show_default=True,
    help="bootstrap resamples for the confidence intervals",
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="output folder [runs/sweep-<operator>-n<n>-<time>]",
)
@click.option(
    "--resume",
    is_flag=True,
    help="continue the sweep in --out: models whose file exists are not retrained",
)
@click.option("--force", is_flag=True, help="overwrite the files of an existing --out folder")
@click.option("--quiet", "-q", is_flag=True, help="no progress output")
@_lazy_friendly
def sweep(
    op_params,
    prior_params,
    epochs,
    widths,
    depths,
    samples,
    noise,
    seeds,
    jobs,
    batch_size,
    out,
    quiet,
    **opts,
):
    """Train a controlled family of models (every width × depth × samples × noise × seed,
    checkpointed at each of --epochs) and test whether test error goes with the distance of
    their surrogate C to A⁻¹ and to the LMMSE (Spearman ρ with bootstrap CI)."""
    from fastinv.cli.main import _parse_params
    from fastinv.workflows.sweep import _float_list, _int_list, run_sweep

    axes = dict(
        epochs=_int_list(epochs, "--epochs", lo=1),
        widths=_int_list(widths, "--widths", lo=1),
        depths=_int_list(depths, "--depths", lo=0),
        samples=_int_list(samples, "--samples", lo=2),
        noise=_float_list(noise, "--noise"),
        seeds=_int_list(seeds, "--seeds", lo=0),
    )
    if jobs < 1:
        raise FastinvError(f"--jobs must be at least 1, got {jobs}")
    if batch_size < 0:
        raise FastinvError(f"--batch-size must be >= 0 (0 for full batch), got {batch_size}")
    if opts["resume"] and opts["force"]:
        raise FastinvError("--resume and --force exclude each other; choose one")
    is_file = Path(opts["operator"]).suffix.lower() in {".npy", ".npz", ".mat", ".csv", ".txt"}
    if opts["n"] is None and not is_file:
        opts["n"] = 64
    if out is None:
        stem = Path(opts["operator"]).stem
        out = Path("runs") / f"sweep-{stem}-n{opts['n'] or 'file'}-{time.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.perf_counter()
    res = run_sweep(
        opts.pop("operator"),
        opts.pop("n"),
        **axes,
        jobs=jobs,
        batch_size=None if batch_size == 0 else batch_size,
        operator_params=_parse_params(op_params, "--param"),
        prior_params=_parse_params(prior_params, "--prior-param"),
        out=out,
        progress=not quiet,
        **opts,
    )
    n_models = len({r["key"] for r in res.rows})
    click.echo(
        f"\nfastinv sweep finished in {time.perf_counter() - t0:.1f} s: {n_models} models, "
        f"{len(res.rows)} rows ({res.timings.get('models_trained', 0)} trained now) — "
        f"{Path(out) / 'summary.md'}"
    )
    for c in res.correlations:
        part = "" if c.partial_rho is None else f", partial {c.partial_rho:.3f} | {c.partial_on}"
        click.echo(f"  ρ({c.x}, {c.y}) = {c.rho:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]{part}")
    for line in res.summary:
        click.echo(f"  - {line}")
