"""File IO, JSON conversion and the memory probe: atomic writes, output folders, memory checks.

Every output file is written to a temporary name in the same folder and renamed into place,
so an interrupted run never leaves a half-written result, and an existing file is replaced
only by a complete one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from fastinv.errors import FastinvError

__all__ = [
    "available_memory",
    "check_memory",
    "check_out_dir",
    "save_figure",
    "save_npz",
    "to_jsonable",
    "write_json",
    "write_text",
]


def _atomic(path: Path, write, mode: str = "w") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_text(path, text: str) -> Path:
    return _atomic(path, lambda fh: fh.write(text))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def save_npz(path, **arrays) -> Path:
    return _atomic(path, lambda fh: np.savez_compressed(fh, **arrays), mode="wb")


def save_figure(path, fig, **kwargs) -> Path:
    return _atomic(path, lambda fh: fig.savefig(fh, format="png", **kwargs), mode="wb")


def to_jsonable(obj):
    """Plain JSON values: numpy scalars/arrays to Python; NaN/Inf to None (JSON has none)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def available_memory() -> int | None:
    """Bytes of memory available now: MemAvailable (Linux), else free pages, else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need_bytes: float, what: str, *, suggestion: str, fraction: float = 0.8) -> None:
    """Refuse up front, with a suggestion, when ``need_bytes`` will not fit in memory."""
    avail = available_memory()
    if avail is not None and need_bytes > fraction * avail:
        raise FastinvError(
            f"{what} needs about {need_bytes / 2**30:.1f} GiB but only "
            f"{avail / 2**30:.1f} GiB of memory is available; {suggestion}"
        )


def check_out_dir(out: Path, *, force: bool) -> None:
    """Refuse to write into a folder that holds files, unless ``force``."""
    if out.exists() and not out.is_dir():
        raise FastinvError(f"--out {out} is a file; give a folder name")
    if out.exists() and any(out.iterdir()) and not force:
        raise FastinvError(
            f"output folder {out} already holds files; choose another --out or pass --force "
            "to replace the files fastinv writes there"
        )
