"""The `fastinv` command group. Thin: each command lives in its own module (options in,
library calls, one-line errors out); this one only gathers them."""

from __future__ import annotations

import click
from click.exceptions import NoArgsIsHelpError

from fastinv.cli.analyze import analyze
from fastinv.cli.bench import bench
from fastinv.cli.operators import operators
from fastinv.cli.run import run
from fastinv.cli.sweep import sweep

__all__ = ["OneLineUsageError", "main"]


class OneLineUsageError(click.ClickException):
    """A usage error (bad option value, unknown option or command) shown as one ``error:``
    line with a pointer to ``--help``, exit code 2, like every other bad input."""

    exit_code = 2

    def __init__(self, error: click.UsageError) -> None:
        ctx = error.ctx
        message = " ".join(error.format_message().split())
        if ctx is not None:
            message = f"{message.rstrip('.')}; see `{ctx.command_path} --help`"
        super().__init__(message)

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    """The command group, whose usage errors (its own and its commands') are one line; a
    bare ``fastinv`` still shows the help."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            raise OneLineUsageError(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            raise OneLineUsageError(e) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fastinv")
def main():
    """Train a network to invert y = A x + e, then audit what it learned against A⁻¹ and the
    classical regularized inverses (Tikhonov, TSVD, Wiener/LMMSE, Landweber)."""


for _command in (run, operators, analyze, sweep, bench):
    main.add_command(_command)
del _command


if __name__ == "__main__":  # pragma: no cover
    main()
