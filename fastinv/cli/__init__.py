"""The command line: one module per command; nothing in fastinv imports the CLI."""

from fastinv.cli.main import main

__all__ = ["main"]
