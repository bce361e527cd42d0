"""matplotlib for fastinv's figures: pyplot on the non-interactive Agg backend."""

from __future__ import annotations

__all__ = ["pyplot"]


def pyplot():
    """``matplotlib.pyplot``, with the Agg backend selected unless one is already in use."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt
