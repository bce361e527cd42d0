"""The `fastinv` command group. Thin: each command lives in its own module (options in,
library calls, one-line errors out); this one only gathers them."""

from __future__ import annotations

import click

from fastinv.cli.analyze import analyze
from fastinv.cli.bench import bench
from fastinv.cli.operators import operators
from fastinv.cli.run import run
from fastinv.cli.sweep import sweep

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fastinv")
def main():
    """Train a network to invert y = A x + e, then audit what it learned against A⁻¹ and the
    classical regularized inverses (Tikhonov, TSVD, Wiener/LMMSE, Landweber)."""


for _command in (run, operators, analyze, sweep, bench):
    main.add_command(_command)
del _command


if __name__ == "__main__":  # pragma: no cover
    main()
