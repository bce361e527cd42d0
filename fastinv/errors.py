"""The one exception type fastinv raises for bad input.

Every check of user input (see :mod:`fastinv._validation`) raises :class:`FastinvError` with a
message that says what was wrong and how to fix it. The CLI turns it into one line on stderr
and exit code 2.
"""

from __future__ import annotations

__all__ = ["FastinvError"]


class FastinvError(ValueError):
    """Bad input: the message says what was wrong and what to do instead."""
