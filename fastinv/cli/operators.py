"""`fastinv operators`: the operator catalogue, from
:func:`fastinv.problem.operators.list_operators`."""

from __future__ import annotations

import json

import click

from fastinv.cli import common

__all__ = ["operators"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@common.friendly
def operators(as_json):
    """List the operator catalogue with parameters and constraints on n."""
    from fastinv.problem.operators import list_operators

    ops = list_operators()
    if as_json:
        click.echo(json.dumps(ops, indent=2, default=str))
        return
    for o in ops:
        _echo_operator(o)
    click.echo("\nA matrix file (.npy, .npz, .mat, .csv, .txt) works wherever a name does.")


def _echo_operator(o: dict) -> None:
    params = ", ".join(f"{k}={v!r}" for k, v in (o.get("params") or {}).items())
    click.echo(f"{o['name']:<12} {o.get('description', '')}")
    if params:
        click.echo(f"{'':<12}   params: {params}")
    if o.get("constraint"):
        click.echo(f"{'':<12}   n: {o['constraint']}")
