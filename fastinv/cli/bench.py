"""`fastinv bench`: time the stages over n. The work is :func:`fastinv.workflows.bench.scaling`."""

from __future__ import annotations

from pathlib import Path

import click

from fastinv.cli import common
from fastinv.errors import FastinvError

__all__ = ["DEFAULT_MAX_N", "bench"]

#: the CLI's default sizes: the library's DEFAULT_NS capped by --max-n (2048), so that the
#: default run stays within about 3 minutes on 2 cores
DEFAULT_MAX_N = 2048


@click.command()
@click.option(
    "--ns",
    default="256,512,1024,2048,4096",
    show_default=True,
    help="sizes n, comma-separated (those above --max-n are dropped)",
)
@click.option(
    "--max-n",
    type=int,
    default=DEFAULT_MAX_N,
    show_default=True,
    help="largest n to run (the default keeps the run near 3 minutes on 2 cores)",
)
@click.option(
    "--stages",
    default="generate,fit_linear,rsvd,svd_full",
    show_default=True,
    help="comma-separated: generate, fit_linear, rsvd, svd_full, audit, and the large-n "
    "stages on square images (n = H·H) blur_generate, blur_topk, topk_audit, topk_audit_cnn",
)
@click.option("--repeats", type=int, default=3, show_default=True, help="timed runs (median)")
@click.option(
    "--samples-per-n",
    type=int,
    default=4,
    show_default=True,
    help="rows of data N = this × n",
)
@click.option("--k", type=int, default=64, show_default=True, help="rank of the rsvd stage")
@click.option(
    "--rank",
    type=int,
    default=256,
    show_default=True,
    help="k of the large-n stages (capped at n)",
)
@click.option(
    "--n-iter", type=int, default=4, show_default=True, help="power iterations of the rsvd stage"
)
@click.option(
    "--fit-points",
    type=int,
    default=3,
    show_default=True,
    help="fit the exponent over this many of the largest n",
)
@common.device_option(
    "cpu",
    help="cuda: fit_linear, rsvd and svd_full through torch on the GPU (refused without CUDA)",
)
@common.seed_option()
@common.out_option(help="output folder [runs/bench-<time>]")
@common.force_option()
@click.option("--no-plot", is_flag=True, help="do not write scaling.png")
@common.quiet_option()
@common.friendly
def bench(ns, max_n, stages, repeats, samples_per_n, k, rank, n_iter, fit_points, device, seed,
          out, force, no_plot, quiet):  # fmt: skip
    """Time each stage (data generation, the surrogate fit, randomized and full SVD; on request
    the audits and the large-n stages on images) over n, with its peak memory, fit the growth
    exponents p of t ≈ c·n^p, and write bench.md, scaling.png and scaling.json."""
    from fastinv._device import cuda_available
    from fastinv.workflows.bench import scaling

    sizes = [n for n in common.size_list(ns, "--ns") if n <= max_n]
    if not sizes:
        raise FastinvError(f"no size in --ns is at most --max-n = {max_n}; raise --max-n")
    if device == "cuda" and not cuda_available():
        raise FastinvError(
            "--device cuda was asked for but no CUDA device is available; use --device cpu or auto"
        )
    stage_list = [s.strip() for s in stages.split(",") if s.strip()]
    if out is None:
        out = common.default_out("bench")
    res = scaling(
        sizes,
        stage_list,
        repeats=repeats,
        samples_per_n=samples_per_n,
        out=out,
        device=device,
        k=k,
        rank=rank,
        n_iter=n_iter,
        fit_points=min(fit_points, len(sizes)) if len(sizes) >= 2 else 2,
        seed=seed,
        plot=not no_plot,
        log=_stderr_log(quiet),
        force=force,
    )
    click.echo(res.to_markdown())
    click.echo(f"fastinv bench finished in {res.wall_s:.1f} s — {Path(out) / 'bench.md'}")


def _stderr_log(quiet: bool):
    """Progress lines to stderr, or nowhere with --quiet."""

    def log(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    return log
