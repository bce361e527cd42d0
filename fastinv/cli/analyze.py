"""`fastinv analyze`: audit a model trained elsewhere. The work is
:func:`fastinv.workflows.analyze.analyze_model`."""

from __future__ import annotations

from pathlib import Path

import click

from fastinv._progress import Stopwatch
from fastinv.cli import common
from fastinv.errors import FastinvError

__all__ = ["analyze"]


@click.command()
@click.option("--operator", required=True, help="matrix file or catalogue name (with --n)")
@common.n_option(help="n for a catalogue operator")
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
@common.path_option("--probes", "probes_path", help="your inputs Y (m, n): .npy/.npz/.csv/.txt")
@common.path_option(
    "--truth", "truth_path", help="targets X (m, n) paired with --probes, for errors"
)
@common.path_option(
    "--test-probes",
    "test_probes_path",
    help="a test set of inputs (m, n) apart from --probes [the probes themselves]",
)
@common.path_option(
    "--test-truth", "test_truth_path", help="targets (m, n) paired with --test-probes"
)
@common.prior_option(
    default=None,
    show_default=False,
    help="prior for generated probes (without --probes): gaussian, smooth [default for 1-D], "
    "piecewise_constant, sparse; grf [default for images], shapes",
)
@common.prior_param_option()
@click.option(
    "--noise",
    type=float,
    default=None,
    help="noise level: of generated probes [0.01], or the one in your --probes (then the "
    "LMMSE reference is computed; without it, it is not)",
)
@common.noise_type_option(default=None, show_default=False, help="with --noise [relative]")
@click.option(
    "--samples",
    type=int,
    default=None,
    help="generated probes [max(2000, 4n); top-k audit: 10 per direction, at least 2000]",
)
@common.jacobian_probes_option()
@common.audit_rank_option()
@common.device_option("cpu")
@common.seed_option()
@common.out_option(help="run directory [runs/analyze-<time>]")
@common.force_option()
@common.quiet_option(help=None)
@common.friendly
def analyze(truth_path, probes_path, prior_params, out, quiet, **opts):
    """Audit your own trained model against your operator."""
    from fastinv.workflows.analyze import analyze_model

    if truth_path and not probes_path:
        raise FastinvError("--truth pairs with --probes; give the inputs too")
    if opts["test_truth_path"] and not opts["test_probes_path"]:
        raise FastinvError("--test-truth pairs with --test-probes; give the inputs too")
    if opts["test_probes_path"] and not probes_path:
        raise FastinvError("--test-probes goes with --probes (your fitting probes); give them")
    if opts["device"] == "auto":
        from fastinv._device import resolve_device

        opts["device"] = str(resolve_device("auto"))
    if out is None:
        out = common.default_out("analyze")
    clock = Stopwatch()
    metrics = analyze_model(
        probes_path=probes_path,
        truth_path=truth_path,
        out=out,
        progress=not quiet,
        prior_params=common.parse_params(prior_params, "--prior-param"),
        **opts,
    )
    click.echo(
        f"\nfastinv analyze finished in {clock.seconds:.1f} s — report: {Path(out) / 'report.md'}"
    )
    for line in metrics.get("verdict", []):
        click.echo(f"  - {line}")
