"""The `fastinv` command line. Thin: options in, library calls, one-line errors out."""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import click

from fastinv.errors import FastinvError


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


def friendly(fn):
    """Bad input becomes one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FastinvError as e:
            _fail(str(e))
        except MemoryError:
            _fail("ran out of memory; use fewer --samples or probes, or a smaller --n")
        except KeyboardInterrupt:
            click.echo("interrupted; files already written are complete", err=True)
            sys.exit(130)

    return wrapper


def _parse_params(items: tuple[str, ...], what: str) -> dict:
    """KEY=VALUE pairs; values parsed as JSON where they parse, else kept as strings."""
    out = {}
    for item in items:
        if "=" not in item:
            raise FastinvError(f"{what} takes KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fastinv")
def main():
    """Train a network to invert y = A x + e, then audit what it learned against A⁻¹ and the
    classical regularized inverses (Tikhonov, TSVD, Wiener/LMMSE, Landweber)."""


@main.command()
@click.option(
    "--operator",
    "operator",
    default="shaw",
    show_default=True,
    help="catalogue name (see `fastinv operators`) or a matrix file .npy/.npz/.mat/.csv/.txt",
)
@click.option(
    "--n",
    type=int,
    default=None,
    help="size n of A (default 64 for catalogue operators; taken from the file for a matrix file)",
)
@click.option(
    "--param",
    "op_params",
    multiple=True,
    metavar="KEY=VALUE",
    help="operator parameter, e.g. --param kappa=5 (repeatable)",
)
@click.option(
    "--prior",
    default="smooth",
    show_default=True,
    help="signal prior: gaussian, smooth, piecewise_constant, sparse",
)
@click.option(
    "--prior-param",
    "prior_params",
    multiple=True,
    metavar="KEY=VALUE",
    help="prior parameter, e.g. --prior-param length_scale=0.1 (repeatable)",
)
@click.option(
    "--noise",
    type=float,
    default=0.01,
    show_default=True,
    help="noise level (relative ‖e‖/‖Ax‖, or σ with --noise-type absolute)",
)
@click.option(
    "--noise-type",
    type=click.Choice(["relative", "absolute"]),
    default="relative",
    show_default=True,
)
@click.option("--samples", type=int, default=8000, show_default=True, help="training pairs")
@click.option("--test-samples", type=int, default=None, help="test pairs [max(1000, 2n)]")
@click.option(
    "--probes", type=int, default=None, help="inputs at which C is fitted [max(2000, 4n)]"
)
@click.option(
    "--model", type=click.Choice(["mlp", "linear", "residual"]), default="mlp", show_default=True
)
@click.option(
    "--width", type=int, default=None, help="hidden width [max(n, 64) up to n = 1024, else 1024]"
)
@click.option("--depth", type=int, default=2, show_default=True, help="hidden layers")
@click.option("--activation", default="relu", show_default=True)
@click.option("--bias/--no-bias", default=True, show_default=True)
@click.option(
    "--optimizer", type=click.Choice(["adam", "gd", "sgd"]), default="adam", show_default=True
)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--epochs", type=int, default=None, help="[60 up to n = 1024, else 20]")
@click.option("--batch-size", type=int, default=128, show_default=True, help="0 for full batch")
@click.option(
    "--schedule",
    type=click.Choice(["constant", "cosine", "step"]),
    default="cosine",
    show_default=True,
)
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--patience", type=int, default=None, help="early-stopping patience (epochs)")
@click.option(
    "--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jacobian-probes", "n_jacobian", type=int, default=16, show_default=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(),
    default=None,
    help="rerun from a run directory's config.json (other options are ignored)",
)
@click.option(
    "--out", type=click.Path(), default=None, help="run directory [runs/<operator>-n<n>-<time>]"
)
@click.option("--force", is_flag=True, help="replace files in an existing --out folder")
@click.option("--quiet", "-q", is_flag=True, help="no progress output")
@friendly
def run(config_path, out, force, quiet, op_params, prior_params, **opts):
    """Make A, generate (x, y = A x + e), train a network, fit its affine surrogate C,
    audit C against A⁻¹ and the classical inverses, and write a report."""
    from fastinv.workflows.pipeline import RunConfig, run_experiment

    if config_path:
        cfg = RunConfig.from_json(config_path)
    else:
        opts["batch_size"] = None if opts["batch_size"] == 0 else opts["batch_size"]
        is_file = Path(opts["operator"]).suffix.lower() in {".npy", ".npz", ".mat", ".csv", ".txt"}
        if opts["n"] is None and not is_file:
            opts["n"] = 64
        cfg = RunConfig(
            operator_params=_parse_params(op_params, "--param"),
            prior_params=_parse_params(prior_params, "--prior-param"),
            **opts,
        )
    if out is None:
        stem = Path(cfg.operator).stem if Path(cfg.operator).suffix else cfg.operator
        out = Path("runs") / f"{stem}-n{cfg.n or 'file'}-{time.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.perf_counter()
    metrics = run_experiment(cfg, out, progress=not quiet, force=force)
    wall = time.perf_counter() - t0
    click.echo(f"\nfastinv run finished in {wall:.1f} s — report: {Path(out) / 'report.md'}")
    err = metrics.get("errors", {})
    sur = metrics.get("surrogate", {})
    click.echo(
        f"  test error: network {_g(err.get('network'))}, surrogate C {_g(err.get('surrogate'))}"
        f"; R² {_g(sur.get('r2_heldout'))}; ‖C − A⁻¹‖₂/‖A⁻¹‖₂ {_g(sur.get('rel_dist_to_inverse'))}"
    )
    for line in metrics.get("verdict", []):
        click.echo(f"  - {line}")


def _g(x):
    return "n/a" if x is None else f"{x:.4g}"


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@friendly
def operators(as_json):
    """List the operator catalogue with parameters and constraints on n."""
    from fastinv.problem.operators import list_operators

    ops = list_operators()
    if as_json:
        click.echo(json.dumps(ops, indent=2, default=str))
        return
    for o in ops:
        params = ", ".join(f"{k}={v!r}" for k, v in (o.get("params") or {}).items())
        click.echo(f"{o['name']:<12} {o.get('description', '')}")
        if params:
            click.echo(f"{'':<12}   params: {params}")
        if o.get("constraint"):
            click.echo(f"{'':<12}   n: {o['constraint']}")
    click.echo("\nA matrix file (.npy, .npz, .mat, .csv, .txt) works wherever a name does.")


@main.command()
@click.option("--operator", required=True, help="matrix file or catalogue name (with --n)")
@click.option("--n", type=int, default=None, help="n for a catalogue operator")
@click.option(
    "--model",
    "model_spec",
    required=True,
    help="TorchScript / torch.export archive, pickled module (with --trust-pickle), "
    "state_dict (with --arch), or package.module:function",
)
@click.option(
    "--arch",
    default=None,
    metavar="package.module:Class",
    help="class to build before loading a state_dict",
)
@click.option("--arch-kwargs", default=None, metavar="JSON", help="keyword arguments for --arch")
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="allow loading a pickled module (a pickle runs code from the file)",
)
@click.option(
    "--probes",
    "probes_path",
    type=click.Path(),
    default=None,
    help="your inputs Y (m, n): .npy/.npz/.csv/.txt",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(),
    default=None,
    help="targets X (m, n) paired with --probes, for errors",
)
@click.option(
    "--prior",
    default="smooth",
    show_default=True,
    help="prior for generated probes (without --probes)",
)
@click.option("--prior-param", "prior_params", multiple=True, metavar="KEY=VALUE")
@click.option("--noise", type=float, default=0.01, show_default=True)
@click.option(
    "--noise-type",
    type=click.Choice(["relative", "absolute"]),
    default="relative",
    show_default=True,
)
@click.option("--samples", type=int, default=None, help="generated probes [max(2000, 4n)]")
@click.option("--jacobian-probes", "n_jacobian", type=int, default=16, show_default=True)
@click.option(
    "--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(), default=None, help="run directory [runs/analyze-<time>]")
@click.option("--force", is_flag=True, help="replace files in an existing --out folder")
@click.option("--quiet", "-q", is_flag=True)
@friendly
def analyze(truth_path, probes_path, prior_params, out, quiet, **opts):
    """Audit your own trained model against your operator."""
    from fastinv.workflows.pipeline import analyze_model

    if truth_path and not probes_path:
        raise FastinvError("--truth pairs with --probes; give the inputs too")
    if opts["device"] == "auto":
        from fastinv._device import resolve_device

        opts["device"] = str(resolve_device("auto"))
    if out is None:
        out = Path("runs") / f"analyze-{time.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.perf_counter()
    metrics = analyze_model(
        probes_path=probes_path,
        truth_path=truth_path,
        out=out,
        progress=not quiet,
        prior_params=_parse_params(prior_params, "--prior-param"),
        **opts,
    )
    click.echo(
        f"\nfastinv analyze finished in {time.perf_counter() - t0:.1f} s — report: "
        f"{Path(out) / 'report.md'}"
    )
    for line in metrics.get("verdict", []):
        click.echo(f"  - {line}")


def _register_subcommands() -> None:
    from fastinv.cli.bench import bench
    from fastinv.cli.sweep import sweep

    main.add_command(sweep)
    main.add_command(bench)


_register_subcommands()


if __name__ == "__main__":  # pragma: no cover
    main()
