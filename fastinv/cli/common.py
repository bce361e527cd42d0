"""What the commands share: the error wrapper, option decorators and argument parsing.

- :func:`friendly`: bad input becomes one ``error:`` line on stderr and exit code 2.
- Option presets (``seed_option(help=...)``): each option that several commands take is
  declared once; a command passes only what differs (its help text, its default).
- Parsing of option strings: ``KEY=VALUE`` pairs (:func:`parse_params`), the sizes of
  ``fastinv bench --ns`` (:func:`size_list`; the sweep axes are parsed by
  :func:`fastinv.workflows.sweep.int_list`), default ``--n`` and ``--out`` values.

Nothing here imports a command module, so every command can import this one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import sys
import threading
import time
from pathlib import Path

import click

from fastinv.errors import FastinvError

__all__ = [
    "CATALOGUE_N",
    "INTERRUPTED_EXIT",
    "Terminated",
    "activation_option",
    "batch_size_option",
    "catalogue_n",
    "default_out",
    "device_option",
    "force_option",
    "friendly",
    "jacobian_probes_option",
    "audit_rank_option",
    "lr_option",
    "model_option",
    "n_option",
    "noise_type_option",
    "operator_option",
    "optimizer_option",
    "out_option",
    "param_option",
    "parse_params",
    "path_option",
    "prior_option",
    "prior_param_option",
    "probes_option",
    "quiet_option",
    "schedule_option",
    "seed_option",
    "size_list",
    "test_samples_option",
]

#: ``--n`` of a catalogue operator when none is given
CATALOGUE_N = 64


# --------------------------------------------------------------------------------------------
# errors


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


#: the exit code of an interrupted command (Ctrl-C or SIGTERM), as a shell reports SIGINT
INTERRUPTED_EXIT = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it ends as Ctrl-C ends it."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises :class:`Terminated` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def friendly(fn):
    """Bad input becomes one line on stderr and exit code 2, never a traceback; Ctrl-C and
    SIGTERM one line (what became of the output folder) and exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with _sigterm_as_interrupt():
                return fn(*args, **kwargs)
        except FastinvError as e:
            _fail(str(e))
        except MemoryError:
            _fail("ran out of memory; use fewer --samples or probes, or a smaller --n")
        except KeyboardInterrupt as e:
            what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
            note = getattr(e, "fastinv_note", None) or "no output folder was written"
            click.echo(f"{what}; {note}", err=True)
            sys.exit(INTERRUPTED_EXIT)

    return wrapper


# --------------------------------------------------------------------------------------------
# options taken by several commands: `preset(**changes)` is the click option decorator


def _preset(*decls: str, **attrs):
    def option(**changes):
        return click.option(*decls, **{**attrs, **changes})

    return option


operator_option = _preset("--operator", default="shaw", show_default=True)
n_option = _preset("--n", type=int, default=None)
param_option = _preset("--param", "op_params", multiple=True, metavar="KEY=VALUE")
prior_option = _preset(
    "--prior",
    default="smooth",
    show_default=True,
    help="signal prior: gaussian, smooth, piecewise_constant, sparse; for images: grf, "
    "shapes (image shape from the operator), images (with --data)",
)
prior_param_option = _preset("--prior-param", "prior_params", multiple=True, metavar="KEY=VALUE")
noise_type_option = _preset(
    "--noise-type",
    type=click.Choice(["relative", "absolute"]),
    default="relative",
    show_default=True,
)
model_option = _preset(
    "--model", type=click.Choice(["mlp", "linear", "residual"]), default="mlp", show_default=True
)
activation_option = _preset("--activation", default="relu", show_default=True)
optimizer_option = _preset(
    "--optimizer", type=click.Choice(["adam", "gd", "sgd"]), default="adam", show_default=True
)
lr_option = _preset("--lr", type=float, default=1e-3, show_default=True)
batch_size_option = _preset(
    "--batch-size", type=int, default=128, show_default=True, help="0 for full batch"
)
schedule_option = _preset(
    "--schedule", type=click.Choice(["constant", "cosine", "step"]), show_default=True
)
probes_option = _preset("--probes", type=int, default=None)
test_samples_option = _preset(
    "--test-samples", type=int, default=None, help="test pairs [max(1000, 2n)]"
)
jacobian_probes_option = _preset(
    "--jacobian-probes", "n_jacobian", type=int, default=16, show_default=True
)
audit_rank_option = _preset(
    "--audit-rank",
    "audit_rank",
    type=int,
    default=None,
    help="audit on A's k leading singular directions (never an n x n matrix) [chosen: the "
    "dense audit when it fits and the probes identify C, else top-k]",
)
seed_option = _preset("--seed", type=int, default=0, show_default=True)
force_option = _preset("--force", is_flag=True, help="replace files in an existing --out folder")
quiet_option = _preset("--quiet", "-q", is_flag=True, help="no progress output")


def path_option(*decls: str, help: str):
    """A file or folder option, None when not given: ``path_option("--truth", "truth_path",
    help=...)``."""
    return click.option(*decls, type=click.Path(), default=None, help=help)


def out_option(help: str):
    """``--out``, the output folder (None when not given: see :func:`default_out`)."""
    return path_option("--out", help=help)


def device_option(default: str, choices: tuple[str, ...] = ("cpu", "cuda", "auto"), **changes):
    """``--device``, one of ``choices`` (listed in the help in this order)."""
    return click.option(
        "--device",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        **changes,
    )


# --------------------------------------------------------------------------------------------
# parsing of option values


def parse_params(items: tuple[str, ...], what: str) -> dict:
    """``KEY=VALUE`` pairs; values parsed as JSON where they parse, else kept as strings."""
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


def size_list(text: str, what: str) -> list[int]:
    """Integers from ``"256, 512,1024"`` in the order given (spaces and empty entries dropped)."""
    try:
        vals = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise FastinvError(f"{what} takes comma-separated integers, got {text!r}") from None
    if not vals:
        raise FastinvError(f"{what} is empty; give at least one integer")
    return vals


def catalogue_n(operator: str, n: int | None, params: dict | None = None) -> int | None:
    """``n``, or when none is given for a catalogue operator H·W of its ``shape`` parameter
    (an image operator), else :data:`CATALOGUE_N` (a matrix file or a factory brings its own
    size)."""
    from fastinv.problem.catalogue import shape_value
    from fastinv.problem.operators import LOADABLE_SUFFIXES, is_factory_spec

    is_file = Path(operator).suffix.lower() in LOADABLE_SUFFIXES
    if n is not None or is_file or is_factory_spec(operator):
        return n
    if params and params.get("shape") is not None:
        H, W = shape_value(operator, params["shape"])
        return H * W
    return CATALOGUE_N


def default_out(name: str) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``: the output folder when ``--out`` is not given
    (``-2``, ``-3``, ... appended when that folder exists already)."""
    base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, i = base, 1
    while out.exists() or out.with_name(f".{out.name}.lock").exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out
