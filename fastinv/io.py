"""File IO, JSON conversion and the memory probe: atomic writes, output folders, memory checks.

Every output file is written to a temporary name in the same folder and renamed into place,
so an interrupted run never leaves a half-written result, and an existing file is replaced
only by a complete one. Files get the permissions the umask allows (0o666 & ~umask).

Output folders are published whole (:class:`OutFolder`). A command that writes ``runs/x``

1. checks the destination before any computation (not a file, not under a file, its parent
   creatable and writable) and takes the lock ``runs/.x.lock`` (``fcntl.flock``: a second
   writer is refused at once; the kernel drops the lock of a killed process);
2. works in the hidden sibling ``runs/.x.partial``, whose ``manifest.json`` says
   ``"status": "incomplete"`` until the end;
3. writes the manifest as ``"complete"`` (every file and its size, the fastinv version) and
   renames the folder into place; with ``force`` the old ``runs/x`` is first renamed to
   ``runs/.x.old`` and removed only once the new folder is in place. (Should ``runs/x`` also
   hold files fastinv did not write, they are kept: only fastinv's own entries, those its
   manifest lists, are swapped, one rename each, under a manifest marked "incomplete".)

A run killed at any moment thus leaves ``runs/x`` absent or complete (the old one, or the
new one); the hidden partial folder it may leave is removed by the next writer. A resumable
command (the sweep) keeps its partial folder when interrupted so that ``resume`` continues it.
"""

from __future__ import annotations

import contextvars
import functools
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from fastinv.errors import FastinvError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

__all__ = [
    "FASTINV_FILES",
    "MANIFEST",
    "OutFolder",
    "available_memory",
    "check_memory",
    "check_out_dir",
    "closes_out_folders",
    "file_mode",
    "manifest_problems",
    "save_figure",
    "save_npz",
    "to_jsonable",
    "write_json",
    "write_text",
]

#: the manifest of an output folder: status, files and sizes, fastinv version
MANIFEST = "manifest.json"

#: the names fastinv writes in an output folder (besides ``*.png``): ``force`` replaces only a
#: folder that holds nothing else
FASTINV_FILES = frozenset(
    {
        MANIFEST,
        "config.json",
        "arrays.npz",
        "metrics.json",
        "report.md",
        "report.html",
        "sweep_config.json",
        "sweep.json",
        "sweep.csv",
        "summary.md",
        "filter_factors.npz",
        "models",
        "bench.md",
        "scaling.json",
    }
)


def _umask() -> int:
    """The process's umask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """The permission bits of a new file: 0o666 less the umask (as ``open`` would give)."""
    return 0o666 & ~_umask()


def _atomic(path: Path, write, mode: str = "w") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, file_mode())  # mkstemp makes 0o600
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


# --------------------------------------------------------------------------------------------
# output folders published whole


def _is_fastinv_name(name: str) -> bool:
    tmp = name.startswith(".") and name.endswith(".tmp")
    return name in FASTINV_FILES or name.endswith(".png") or tmp


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _remove_temporaries(folder: Path) -> None:
    """The ``.NAME.xxxx.tmp`` files an interrupted atomic write left in ``folder``."""
    for p in folder.rglob(".*.tmp"):
        try:
            p.unlink()
        except OSError:
            pass


def _list_files(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (but the manifest and temporaries) and its size in bytes."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not _is_temporary(p.name)
    }


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def manifest_problems(folder) -> list[str]:
    """What keeps ``folder`` from being a complete fastinv output folder (empty when it is one):
    no manifest, a status other than "complete", a listed file missing or of another size, or a
    file the manifest does not list (files of two runs mixed; the user's own files that
    ``force`` kept are listed under "kept")."""
    folder = Path(folder)
    try:
        man = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        return [f"cannot read {folder / MANIFEST}: {e}"]
    problems = [] if man.get("status") == "complete" else [f"status is {man.get('status')!r}"]
    listed = man.get("files") or {}
    present = _list_files(folder)
    for name, size in listed.items():
        if present.get(name) != size:
            problems.append(f"{name}: {present.get(name)} bytes, the manifest says {size}")
    kept = set(man.get("kept") or [])
    unlisted = [n for n in sorted(set(present) - set(listed)) if n.split("/")[0] not in kept]
    problems += [f"{name} is not in the manifest" for name in unlisted]
    return problems


def _check_destination(path: Path, given: Path) -> None:
    """Refuse, in one line, a destination (``path``: ``given`` resolved) that is a file, lies
    under a file, is the working directory, or whose parent cannot be created or written."""
    shown = str(given)
    if path.exists() and not path.is_dir():
        raise FastinvError(f"--out {shown} is a file; give a folder name")
    blocker = next((p for p in given.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise FastinvError(
            f"--out {shown} lies under {blocker}, which is a file; give a folder outside it"
        )
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents or not path.name:
        raise FastinvError(
            f"--out {shown} is the working directory or above it; give a new folder name"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FastinvError(
            f"cannot create the folder {path.parent} for --out {shown} ({e.strerror}); "
            "choose another --out"
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise FastinvError(
            f"cannot write in {path.parent} (permission denied) for --out {shown}; "
            "choose another --out"
        )


def _manifest(folder: Path) -> dict:
    """The manifest of ``folder`` ({} when there is none or it cannot be read)."""
    try:
        man = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return man if isinstance(man, dict) else {}


def _owned_entries(folder: Path) -> set[str]:
    """The entries of ``folder`` that fastinv wrote: those its manifest lists; without one
    (a folder of an older fastinv) all of them when each has a name fastinv writes, else none.
    Temporaries of interrupted writes count as fastinv's."""
    names = set(os.listdir(folder))
    try:
        man = json.loads((folder / MANIFEST).read_text())
        listed = {f.split("/")[0] for f in man.get("files") or {}} | {MANIFEST}
    except (OSError, json.JSONDecodeError, AttributeError):
        listed = names if all(_is_fastinv_name(n) for n in names) else set()
    return {n for n in names if n in listed or _is_temporary(n)}


class _Lock:
    """An exclusive lock on ``path`` (``fcntl.flock``; the file holds the owner's pid)."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, path: Path, shown: str) -> _Lock:
        """The lock, or FastinvError at once when another process holds it."""
        for _ in range(50):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise FastinvError(
                    f"cannot write in {path.parent} for --out {shown} ({e.strerror}); "
                    "choose another --out"
                ) from None
            if not _flock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                raise FastinvError(
                    f"another fastinv{holder} is writing --out {shown}; wait for it to finish "
                    "or choose another --out"
                )
            if _same_file(fd, path):  # else its holder removed it as we opened it: again
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(path, fd)
            os.close(fd)
        raise FastinvError(f"cannot lock {path} for --out {shown}; try again")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: the next writer makes a new one
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _flock(fd: int) -> bool:
    """Lock ``fd`` without waiting; False when another process holds the lock (True also where
    the file system cannot lock: nothing better is possible there)."""
    if fcntl is None:  # pragma: no cover - not on POSIX
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


_OPEN_FOLDERS: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "fastinv_open_folders", default=None
)


def closes_out_folders(fn):
    """Decorator: every :class:`OutFolder` opened while ``fn`` runs and not published when it
    returns or raises is closed (its partial folder removed or kept, its lock released)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        token = _OPEN_FOLDERS.set([])
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            for folder in _OPEN_FOLDERS.get() or []:
                folder.close(e)
            raise
        finally:
            for folder in _OPEN_FOLDERS.get() or []:
                folder.close()
            _OPEN_FOLDERS.reset(token)

    return wrapper


class OutFolder:
    """An output folder published whole: checked and locked by :meth:`open`, written in
    :attr:`work`, renamed into place by :meth:`publish` (see the module's docstring).

    Parameters
    ----------
    out : path
        The folder to publish (its parents are created).
    force : bool
        Replace a folder that holds files: all of fastinv's files (those its manifest lists, so
        also stale ones of an older run) go, files fastinv did not write stay.
    resume : bool
        Continue in the partial folder an interrupted run kept (``resumable`` commands), or
        start anew; an ``out`` that holds files is then left to the caller to check.
    command : str
        Written to the manifest and used in messages ("run", "analyze", "sweep", "bench").
    resumable : bool
        The partial folder is kept when the command fails or is interrupted after
        :attr:`keep_on_failure` was set, and a stale one is not removed without ``force``.

    Use it as a context manager, or call :meth:`open` and :meth:`publish` (or :meth:`close`)
    inside a function decorated with :func:`closes_out_folders`.
    """

    def __init__(self, out, *, force=False, resume=False, command="run", resumable=False):
        self.given = Path(out)
        self.shown = str(out)
        self.path = Path(os.path.realpath(out))
        name = self.path.name or "_"  # "/" has none: refused by open()
        self.work, self.old, self._lock_path = (
            self.path.parent / f".{name}.{what}" for what in ("partial", "old", "lock")
        )
        self.force, self.resume, self.command, self.resumable = force, resume, command, resumable
        #: the work folder is a partial folder kept by an interrupted run, continued
        self.resumed = False
        #: keep the work folder when the command fails (set once it holds results worth keeping)
        self.keep_on_failure = False
        self.published = False
        self._lock: _Lock | None = None
        self._started = _now()

    def __enter__(self) -> OutFolder:
        return self if self._lock is not None or self.published else self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)

    def open(self) -> OutFolder:
        """Check the destination, take the lock and make (or take up) the work folder."""
        _check_destination(self.path, self.given)
        self._lock = _Lock.acquire(self._lock_path, self.shown)
        try:
            self._recover()
            self._check_existing()
            self._make_work()
        except BaseException:
            self._release()
            raise
        registry = _OPEN_FOLDERS.get()
        if registry is not None:
            registry.append(self)
        return self

    def _recover(self) -> None:
        """After a kill between the two renames of a swap: the old folder back, or away."""
        if self.old.exists():
            if self.path.exists():
                _rmtree(self.old)
            else:
                os.rename(self.old, self.path)

    def _check_existing(self) -> None:
        if not (self.path.is_dir() and any(self.path.iterdir())):
            return
        if not (self.force or self.resume):
            raise FastinvError(
                f"output folder {self.shown} already holds files; choose another --out or pass "
                "--force to replace it"
            )

    def _make_work(self) -> None:
        if self.work.exists():
            same = _manifest(self.work).get("command") == self.command
            if self.resume and self.resumable and same:
                self.resumed = self.keep_on_failure = True
                _remove_temporaries(self.work)
                return
            if self.resumable and not self.force and _list_files(self.work):
                raise FastinvError(
                    f"an interrupted {self.command} was kept in {self.work}; pass --resume to "
                    "continue it or --force to start over"
                )
            _rmtree(self.work)
        try:
            os.mkdir(self.work)
        except OSError as e:
            raise FastinvError(
                f"cannot create {self.work} for --out {self.shown} ({e.strerror}); choose "
                "another --out"
            ) from None
        self._write_manifest("incomplete")

    def _write_manifest(self, status: str, kept: list[str] | None = None) -> None:
        from fastinv import __version__

        man = {
            "status": status,
            "command": self.command,
            "fastinv_version": __version__,
            "started": self._started,
            "pid": os.getpid(),
        }
        if status == "complete":
            man.update(finished=_now(), files=_list_files(self.work))
        if kept:
            man["kept"] = kept
        write_json(self.work / MANIFEST, man)

    def publish(self) -> Path:
        """Mark the work folder complete and rename it into place; release the lock."""
        if self._lock is None:
            raise RuntimeError(f"{self.shown} is not open for writing")
        _remove_temporaries(self.work)
        self._write_manifest("complete")
        if self.path.is_dir() and any(self.path.iterdir()):
            owned = _owned_entries(self.path)
            foreign = sorted(set(os.listdir(self.path)) - owned)
            if foreign:
                self._replace_in_place(owned, foreign)
            else:
                self._swap()
        else:
            try:
                os.rename(self.work, self.path)  # also replaces an empty folder, atomically
            except OSError as e:
                self.keep_on_failure = True
                raise FastinvError(
                    f"cannot move the finished results into {self.shown} ({e.strerror}; did "
                    f"another program write there?); they are in {self.work}"
                ) from None
        self.published = True
        self._release()
        return self.path

    def _swap(self) -> None:
        """Old folder aside, new one in, old one removed (``force``/``resume`` only)."""
        if not (self.force or self.resume):
            self.keep_on_failure = True
            raise FastinvError(
                f"another program wrote into {self.shown} while fastinv ran; the results are "
                f"in {self.work}"
            )
        os.rename(self.path, self.old)
        try:
            os.rename(self.work, self.path)
        except BaseException:
            os.rename(self.old, self.path)
            raise
        _rmtree(self.old)

    def _replace_in_place(self, owned: set[str], foreign: list[str]) -> None:
        """Replace fastinv's entries of a folder that also holds the user's (``force`` or
        ``resume``): the old ones aside, the new ones in (the manifest last), the old ones
        removed; the folder's manifest says "incomplete" in between."""
        if not (self.force or self.resume):
            self._swap()  # refuses
        self._write_manifest("complete", kept=foreign)
        new = sorted(os.listdir(self.work), key=lambda name: name == MANIFEST)
        write_json(self.path / MANIFEST, {"status": "incomplete", "pid": os.getpid()})
        os.mkdir(self.old)
        for name in sorted((owned | set(new)) - {MANIFEST}):
            if os.path.lexists(self.path / name):
                os.rename(self.path / name, self.old / name)
        for name in new:
            os.rename(self.work / name, self.path / name)
        os.rmdir(self.work)
        _rmtree(self.old)

    def close(self, exc: BaseException | None = None) -> None:
        """Give up an unpublished folder: remove the work folder (or keep it, see
        ``keep_on_failure``) and release the lock. An interruption ``exc`` gets a
        ``fastinv_note`` saying what became of the folder."""
        if self._lock is None:
            return
        keep = self.keep_on_failure and self.work.exists()
        if not keep:
            _rmtree(self.work)
        self._release()
        if isinstance(exc, KeyboardInterrupt):
            exc.fastinv_note = self._note(keep)

    def _note(self, kept: bool) -> str:
        if kept:
            return (
                f"the unfinished {self.command} is kept in {self.work}; rerun it with "
                "--resume to continue"
            )
        if self.path.exists():
            return f"{self.shown} was left as it was"
        return f"nothing was written to {self.shown}"

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
