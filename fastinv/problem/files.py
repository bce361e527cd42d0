"""Reading a user's matrix from a file: ``.npy``, ``.npz``, ``.mat``, ``.csv`` or ``.txt``.

:func:`read_matrix` returns the array as stored (the caller checks that it is a real, finite,
square matrix) and turns every failure to read into one :class:`~fastinv.errors.FastinvError`
line that says what is wrong with the file and how to write it instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fastinv.errors import FastinvError

__all__ = ["LOADABLE_SUFFIXES", "read_matrix"]

#: file suffixes :func:`read_matrix` reads
LOADABLE_SUFFIXES = (".npy", ".npz", ".mat", ".csv", ".txt")

#: the arrays ``scipy.sparse.save_npz`` writes
_SPARSE_NPZ = {"data", "indices", "indptr", "format", "shape"}


def read_matrix(path, *, key: str | None = None) -> tuple[Any, str | None]:
    """Read the array a matrix file holds.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (one array), ``.npz`` (one array, or the one named ``key``; a
        ``scipy.sparse.save_npz`` file stays sparse), ``.mat`` (``scipy.io.loadmat``; same
        key rule, MATLAB's ``__header__`` entries ignored; sparse stays sparse), or ``.csv`` /
        ``.txt`` (``np.loadtxt``, comma- or whitespace-delimited, ``#`` comments).
    key : str, optional
        Which array to take from a ``.npz`` or ``.mat`` file holding several.

    Returns
    -------
    A : array_like
        The array, not yet validated (may be 1-D, non-numeric, ...); a sparse matrix
        is returned sparse.
    key : str or None
        The name of the array taken from a ``.npz`` or ``.mat`` file; None for the others and
        for a sparse ``.npz`` file.
    """
    p, spath = Path(path), str(path)
    suffix = p.suffix.lower()
    _check_path(p, spath, suffix, key)
    try:
        _check_header(p, spath, suffix)
        return _READERS[suffix](p, spath, key)
    except FastinvError:
        raise
    except PermissionError:
        raise FastinvError(
            f"cannot read {spath}: permission denied; make the file readable (chmod u+r) or "
            "copy it somewhere you can read"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise _value_error(e, spath, suffix) from None
    except Exception as e:  # corrupt or truncated files raise many types
        raise _unreadable(e, spath, suffix) from None


def _check_path(p: Path, spath: str, suffix: str, key: str | None) -> None:
    if suffix not in LOADABLE_SUFFIXES:
        raise FastinvError(
            f"cannot read {spath!r}: unsupported file type {suffix or '(none)'}; save A as "
            f"{', '.join(LOADABLE_SUFFIXES)}"
        )
    if not p.exists():
        raise FastinvError(f"no such file: {spath}; check the path")
    if p.is_dir():
        raise FastinvError(f"{spath} is a directory; give the path of a matrix file")
    if key is not None and suffix not in (".npz", ".mat"):
        raise FastinvError(f"key= applies only to .npz and .mat files, not to {suffix}")


def _check_header(p: Path, spath: str, suffix: str) -> None:
    """Refuse a .npy / .npz file whose first bytes are not NumPy's (or a zip's)."""
    magic = {".npy": (b"\x93NUMPY",), ".npz": (b"PK\x03\x04", b"PK\x05\x06")}.get(suffix)
    if magic is None:
        return
    with open(p, "rb") as f:
        head = f.read(6)
    if not head.startswith(magic):
        kind = "NumPy .npy" if suffix == ".npy" else "NumPy .npz (zip)"
        writer = "numpy.save" if suffix == ".npy" else "numpy.savez"
        raise FastinvError(
            f"cannot read {spath}: it is not a {kind} file (wrong header); write A with "
            f"{writer} or use a matching file extension"
        )


# readers: (path, path as given, key) -> (array, key of the array taken or None)
def _read_npy(p: Path, spath: str, key: str | None) -> tuple[Any, None]:
    return np.load(p, allow_pickle=False), None


def _read_npz(p: Path, spath: str, key: str | None) -> tuple[Any, str | None]:
    with np.load(p, allow_pickle=False) as z:
        files = list(z.files)
        if _SPARSE_NPZ <= set(files) and key is None:
            import scipy.sparse

            return scipy.sparse.load_npz(p), None
        _, chosen = _pick(dict.fromkeys(files), key, spath)
        return z[chosen], chosen


def _read_mat(p: Path, spath: str, key: str | None) -> tuple[Any, str]:
    try:
        d = _loadmat_guarded(p, spath)
    except NotImplementedError as e:
        raise FastinvError(
            f"cannot read {spath}: it is a MATLAB v7.3 (HDF5) file ({_one_line(e)}); "
            "save it with save(..., '-v7') or as .npy"
        ) from None
    arrays = {k: v for k, v in d.items() if not k.startswith("__")}
    return _pick(arrays, key, spath)


def _loadmat_guarded(p: Path, spath: str) -> dict:
    """``scipy.io.loadmat(p)``, in a forked child where the system has fork: scipy's MAT
    reader can die of SIGBUS/SIGSEGV on a damaged file (found by tests/test_fuzz.py), which
    must become one clear error, not a crash of the caller. The child hands the variables
    back through files (:func:`_dump_mat_variables`) or the exception it raised."""
    import scipy.io

    if not hasattr(os, "fork"):
        return scipy.io.loadmat(p)
    import pickle
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fastinv_mat_") as tmp:
        folder = Path(tmp)
        err = folder / "error.pickle"
        pid = os.fork()
        if pid == 0:  # the child: load, hand over, leave without running the parent's cleanup
            code = 0
            try:
                _dump_mat_variables(scipy.io.loadmat(p), folder)
            except BaseException as e:  # noqa: BLE001 - handed to the parent
                try:
                    err.write_bytes(pickle.dumps(e))
                except Exception:  # noqa: BLE001 - an exception that does not pickle
                    err.write_bytes(pickle.dumps(ValueError(_one_line(e))))
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            raise FastinvError(
                f"cannot read {spath}: the MAT-file reader crashed on it (signal "
                f"{os.WTERMSIG(status)}); the file is damaged — save it again, or as .npy"
            )
        if err.exists():
            raise pickle.loads(err.read_bytes())  # noqa: S301 - written by our own child
        return _load_mat_variables(folder)


def _dump_mat_variables(d: dict, folder: Path) -> None:
    """loadmat's variables as pickle-free files: dense ones in ``arrays.npz``, a sparse one
    as a sparse .npz beside its name, a cell or struct as its text (same shape; refused later
    as non-numeric)."""
    import scipy.sparse

    dense = {}
    for i, (k, v) in enumerate(d.items()):
        if k.startswith("__"):
            continue
        if scipy.sparse.issparse(v):
            scipy.sparse.save_npz(folder / f"sparse_{i}.npz", v)
            (folder / f"sparse_{i}.name").write_text(k)
            continue
        v = np.asarray(v)
        if v.dtype == object:
            v = np.vectorize(repr, otypes=[str])(v) if v.size else v.astype(str)
        dense[k] = v
    np.savez(folder / "arrays.npz", **dense)


def _load_mat_variables(folder: Path) -> dict:
    """The variables :func:`_dump_mat_variables` wrote."""
    import scipy.sparse

    with np.load(folder / "arrays.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for name in sorted(folder.glob("sparse_*.name")):
        arrays[name.read_text()] = scipy.sparse.load_npz(name.with_suffix(".npz"))
    return arrays


def _read_table(p: Path, spath: str, key: str | None) -> tuple[np.ndarray, None]:
    with open(spath, encoding="utf-8", errors="strict") as f:
        first = ""
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                first = s
                break
    delimiter = "," if "," in first else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data": reported by the caller
        return np.loadtxt(spath, delimiter=delimiter, ndmin=2, dtype=np.float64), None


_READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".mat": _read_mat,
    ".csv": _read_table,
    ".txt": _read_table,
}


def _pick(arrays: dict, key: str | None, path: str) -> tuple[Any, str]:
    names = list(arrays)
    if not names:
        raise FastinvError(f"{path} holds no arrays; save A into it")
    if key is None:
        if len(names) == 1:
            return arrays[names[0]], names[0]
        raise FastinvError(
            f"{path} holds several arrays ({', '.join(names)}); choose one with key=..."
        )
    if key not in arrays:
        raise FastinvError(f"{path} has no array {key!r}; its arrays are {', '.join(names)}")
    return arrays[key], key


# errors -------------------------------------------------------------------------------------
def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    if len(msg) > 200:
        msg = msg[:197] + "..."
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _value_error(e: BaseException, spath: str, suffix: str) -> FastinvError:
    if suffix in (".csv", ".txt"):
        return FastinvError(
            f"cannot parse {spath} as a table of numbers ({_one_line(e)}); remove header "
            "lines or mark them with #"
        )
    if "object arrays" in str(e).lower():
        return FastinvError(
            f"{spath} holds an object (non-numeric) array; save A as a numeric array"
        )
    return _unreadable(e, spath, suffix)


def _unreadable(e: BaseException, spath: str, suffix: str) -> FastinvError:
    return FastinvError(
        f"cannot read {spath} as a {suffix} file ({_one_line(e)}); check that the file is "
        "complete and of that format"
    )
