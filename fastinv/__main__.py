"""``python -m fastinv``: the command line (what the ``fastinv`` script runs), so that
``torchrun --nproc_per_node P -m fastinv run ...`` starts fastinv on P processes."""

from fastinv.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="fastinv")
