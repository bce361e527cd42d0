"""Progress and stage timing: one reporter that logs, times and draws progress bars.

A :class:`Reporter` is quiet unless asked (library calls print nothing by default); the CLI
makes one with ``enabled=True``. Stages are timed with ``with rep.stage("train"):`` into
``rep.timings`` (seconds), whether or not anything is printed. Progress bars are tqdm bars on
stderr (a plain counter line when tqdm is missing).

>>> rep = Reporter(enabled=False)
>>> with rep.stage("data", "generating 10 pairs"):
...     pass
>>> sorted(rep.timings)
['data']
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import contextmanager

__all__ = ["Reporter", "Stopwatch", "progress_bar", "quiet"]


class Stopwatch:
    """Seconds since it was made (or last :meth:`restart`), by ``time.perf_counter``."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def restart(self) -> None:
        self._t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._t0


class Reporter:
    """Progress lines on stderr (when ``enabled``) and a timing of each named stage.

    Parameters
    ----------
    enabled : bool
        Print lines and draw bars; when False only the timings are kept.
    prefix : str
        Put in brackets before each line (``[fastinv] operator shaw ...``).
    sink : callable, optional
        Where lines go instead of stderr (a test's list.append, a logger's info).
    """

    def __init__(
        self, enabled: bool = False, *, prefix: str = "fastinv", sink: Callable | None = None
    ):
        self.enabled = bool(enabled) or sink is not None
        self.prefix = prefix
        self._sink = sink
        self.timings: dict[str, float] = {}

    def __call__(self, msg: str) -> None:
        """Print one progress line (nothing when disabled)."""
        if not self.enabled:
            return
        line = f"[{self.prefix}] {msg}" if self.prefix else msg
        if self._sink is not None:
            self._sink(line)
        else:
            print(line, file=sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str, message: str | None = None):
        """Time the block as ``timings[name]`` (added to what the name already holds)."""
        if message:
            self(message)
        clock = Stopwatch()
        try:
            yield self
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + clock.seconds

    def child(self) -> Reporter:
        """A reporter printing (and drawing bars) where this one does, with its own timings."""
        return Reporter(self.enabled, prefix=self.prefix, sink=self._sink)

    def bar(self, total: int, desc: str, unit: str = "it"):
        """A progress bar when enabled, else a no-op bar with the same methods."""
        if not self.enabled or self._sink is not None:
            return _NoBar()
        return progress_bar(total, desc, unit)


def quiet() -> Reporter:
    """A reporter that prints nothing (the library default)."""
    return Reporter(enabled=False)


def progress_bar(total: int, desc: str, unit: str = "it"):
    """A tqdm bar on stderr, or a plain counter line when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _LineBar(total, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=True)


class _NoBar:
    n = 0

    def set_postfix_str(self, s: str) -> None:
        pass

    def update(self, k: int = 1) -> None:
        self.n += k

    def close(self) -> None:
        pass


class _LineBar(_NoBar):
    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.postfix = ""

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def update(self, k: int = 1) -> None:
        self.n += k
        sys.stderr.write(f"\r{self.desc}: {self.unit} {self.n}/{self.total} {self.postfix}   ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
