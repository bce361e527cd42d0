"""Hypothesis strategies and checks for tests/test_fuzz.py (a plain module, not a test file).

- :func:`settings_for`: the fuzzing profile (``FASTINV_FUZZ=long`` for runs by hand).
- Option tables: for each CLI option, values that must be accepted (``GOOD``) and values that
  must be refused with one ``error:`` line (``BAD``); :func:`cli_args` draws a combination and
  says whether it holds a bad value.
- :data:`BAD_FILES`: writers of broken matrix / probe / model files of every supported format.
- :func:`snapshot` and :func:`check_cli`: the property every CLI example must satisfy.

Inputs excluded because they hit a bug another engineer of issue 11 is fixing are kept in
``KNOWN_BAD`` tables with the bug named, so they can be moved back once the fix lands.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

__all__ = [
    "ANALYZE_BAD",
    "ARRAY_DAMAGE",
    "BAD_FLOATS",
    "BAD_INTS",
    "ANALYZE_GOOD",
    "BAD_FILES",
    "BAD_MODEL_FILES",
    "BENCH_BAD",
    "BENCH_GOOD",
    "KNOWN_BAD",
    "LONG",
    "PARSER_ERRORS_ONE_LINE",
    "RUN_BAD",
    "RUN_GOOD",
    "SWEEP_BAD",
    "SWEEP_GOOD",
    "arrays",
    "check_cli",
    "cli_args",
    "floats",
    "ints",
    "names",
    "settings_for",
    "snapshot",
]

# hypothesis keeps caches (and patches of failing examples) in .hypothesis/ of the working
# folder, which the repository does not ignore: keep them in the temporary folder instead
if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "fastinv-hypothesis"))

#: ``FASTINV_FUZZ=long python3 -m pytest -q tests/test_fuzz.py`` runs the long profile
LONG = os.environ.get("FASTINV_FUZZ", "").lower() == "long"

#: click's own parse errors (``--n 2.5``, an unknown choice or option) print click's usage
#: block (Usage: / Try ... / blank / Error: ...), not one ``error:`` line. Issue 11 item 7
#: ("one-line click usage errors") is being fixed by another engineer; set this to True when
#: it lands so that the fuzz holds those errors to the one-line rule too.
PARSER_ERRORS_ONE_LINE = True


def settings_for(default: int, long: int | None = None) -> settings:
    """Hypothesis settings: ``default`` examples in CI (reproducible: derandomized), ``long``
    (default 10×) under ``FASTINV_FUZZ=long`` (random, so each run tries new inputs)."""
    if LONG:
        return settings(
            max_examples=long or 10 * default,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    return settings(
        max_examples=default,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
        print_blob=True,
    )


# --------------------------------------------------------------------------------------------
# CLI option tables: option -> values (strings as a user types them)

_NONFINITE = ["nan", "inf", "-inf"]

#: a tiny `fastinv run` that finishes in about a second
RUN_BASE = {
    "--n": "8",
    "--samples": "50",
    "--test-samples": "30",
    "--probes": "30",
    "--epochs": "1",
    "--width": "4",
    "--depth": "1",
    "--jacobian-probes": "0",
}

RUN_GOOD = {
    "--operator": ["shaw", "heat", "deriv2", "random", "identity", "blur1d"],
    "--n": ["8", "12"],
    "--samples": ["40", "64"],
    "--test-samples": ["20", "30"],
    "--probes": ["20", "40"],
    "--epochs": ["0", "1", "2"],
    "--width": ["2", "5"],
    "--depth": ["1", "2"],
    "--batch-size": ["0", "16", "1000"],
    "--lr": ["0.01", "1e-4"],
    "--noise": ["0", "0.05"],
    "--noise-type": ["relative", "absolute"],
    "--val-fraction": ["0", "0.2"],
    "--patience": ["1", "3"],
    "--prior": ["gaussian", "smooth", "piecewise_constant", "sparse"],
    "--activation": ["relu", "tanh"],
    "--model": ["mlp", "linear", "residual"],
    "--optimizer": ["adam", "gd", "sgd"],
    "--schedule": ["constant", "cosine", "step"],
    "--dtype": ["float32", "float64"],
    "--device": ["cpu", "auto"],
    "--seed": ["0", "7", str(2**31)],
    "--jacobian-probes": ["0", "2"],
    "--bias": [None],
    "--no-bias": [None],
}

RUN_BAD = {
    "--operator": ["nosuch", "", "missing.npy", "a_dir.npy", "shaw.xyz"],
    "--n": ["0", "-4", "7", "2.5", "abc", "", "100000"],
    "--samples": ["0", "-1", "1e3", "x", "1000000000"],
    "--test-samples": ["0", "-5"],
    "--probes": ["0", "-1"],
    "--epochs": ["-1", "1.5"],
    "--width": ["0", "-3"],
    "--depth": ["-1"],
    "--batch-size": ["-2"],
    "--lr": ["0", "-1", "x", *_NONFINITE],
    "--noise": ["-0.1", *_NONFINITE],
    "--val-fraction": ["1", "1.5", "-0.1", "nan"],
    "--patience": ["-1"],
    "--prior": ["nosuch", ""],
    "--prior-param": ["x", "=", "nosuch=1", "length_scale=-1", "length_scale=nan"],
    "--param": ["x", "nosuch=3", "="],
    "--activation": ["nosuch", ""],
    "--model": ["nosuch"],
    "--optimizer": ["lbfgs"],
    "--schedule": ["nosuch"],
    "--dtype": ["float16", "int32"],
    "--device": ["cuda:7", "tpu", "cuda"],  # cuda: bad only without a GPU (see cli_args)
    "--seed": ["-1", "x"],
    "--jacobian-probes": ["-3"],
    "--noise-type": ["nosuch"],
    "--bogus-option": [None],
}

ANALYZE_BASE = {"--samples": "30", "--jacobian-probes": "0"}

ANALYZE_GOOD = {
    "--samples": ["20", "40"],
    "--jacobian-probes": ["0", "2"],
    "--prior": ["gaussian", "smooth"],
    "--noise": ["0", "0.05"],
    "--noise-type": ["relative", "absolute"],
    "--seed": ["0", "3"],
    "--device": ["cpu", "auto"],
}

ANALYZE_BAD = {
    "--samples": ["-1", "x", "0", "1"],
    "--jacobian-probes": ["x", "-3"],
    "--prior": ["nosuch"],
    "--prior-param": ["x", "nosuch=1"],
    "--noise": ["-1", "nan", "inf"],
    "--seed": ["-1"],
    "--arch-kwargs": ["{bad json", "[1, 2]"],
    "--device": ["tpu"],
    "--n": ["0", "-3"],
}

SWEEP_BASE = {
    "--n": "8",
    "--samples": "40",
    "--epochs": "1",
    "--widths": "3",
    "--depths": "1",
    "--seeds": "0",
    "--probes": "20",
    "--test-samples": "20",
    "--bootstrap": "100",
}

SWEEP_GOOD = {
    "--epochs": ["1", "1,2"],
    "--widths": ["3", "2,3"],
    "--depths": ["1"],
    "--samples": ["40"],
    "--noise": ["0.01", "0.01,0.02"],
    "--seeds": ["0", "1"],
    "--bootstrap": ["100"],
    "--jobs": ["1"],
    "--schedule": ["constant", "cosine"],
    "--ood-noise": ["0.02"],
}

SWEEP_BAD = {
    "--epochs": ["", "-1", "0", "0,1", "a,b", "1.5", ",", "1,,x"],
    "--widths": ["", "0", "-4", "x"],
    "--depths": ["-1", "y"],
    "--samples": ["0", "-10", "1e2"],
    "--noise": ["", "-0.1", "nan", "x"],
    "--seeds": ["", "x", "-1"],
    "--bootstrap": ["0", "-5", "10"],
    "--jobs": ["0", "-2"],
    "--ood-noise": ["-1", "nan"],
    "--ood-prior": ["nosuch"],
    "--n": ["0", "-8", "7"],
    "--operator": ["nosuch", "missing.npy"],
    "--lr": ["-1", "nan"],
    "--prior": ["nosuch"],
}

BENCH_BASE = {
    "--ns": "8,16",
    "--repeats": "1",
    "--fit-points": "2",
    "--k": "2",
    "--n-iter": "1",
    "--samples-per-n": "2",
}

BENCH_GOOD = {
    "--ns": ["8,16", "16, 8", "8,16,24"],
    "--repeats": ["1", "2"],
    "--fit-points": ["2"],
    "--k": ["1", "2"],
    "--n-iter": ["0", "1"],
    "--samples-per-n": ["1", "2"],
    "--stages": ["generate", "fit_linear,rsvd", "svd_full"],
    "--max-n": ["16", "100"],
    "--seed": ["0", "5"],
    "--no-plot": [None],
}

BENCH_BAD = {
    "--ns": ["", ",", "x", "-8", "0", "8.5"],
    "--repeats": ["0", "-1"],
    "--fit-points": ["0", "-2"],
    "--k": ["0", "-1"],
    "--n-iter": ["-1"],
    "--samples-per-n": ["0", "-3"],
    "--stages": ["", "nosuch", "generate,nosuch"],
    "--max-n": ["0", "-1"],
    "--seed": ["-1"],
}

#: inputs excluded from the strategies because of a known bug, with the bug (empty: every
#: input the suite found failing has been fixed and moved back). (command, option, value): bug.
KNOWN_BAD: dict[tuple[str, str, str], str] = {}


@st.composite
def cli_args(draw, good: dict, bad: dict, base: dict, *, max_options: int = 4, min_bad: int = 0):
    """Draw ``(args, n_bad)``: ``base`` options overridden by up to ``max_options`` drawn ones,
    each a good or a bad value (at least ``min_bad`` of them bad, to keep slow successful
    commands rare); ``n_bad`` counts the bad values drawn."""
    forced = draw(st.lists(st.sampled_from(sorted(bad)), min_size=min_bad, max_size=min_bad))
    keys = sorted(set(good) | set(bad))
    chosen = draw(st.lists(st.sampled_from(keys), max_size=max_options, unique=True))
    opts = dict(base)
    n_bad = 0
    seen = set()
    for i, key in enumerate([*forced, *chosen]):
        pick_bad = key in bad and (i < len(forced) or key not in good or draw(st.booleans()))
        value = draw(st.sampled_from(bad[key] if pick_bad else good[key]))
        if key in seen:
            continue  # an option drawn twice: keep the first value
        seen.add(key)
        n_bad += pick_bad and _bad_here(key, value)
        opts[key] = value
    args = []
    for key, value in opts.items():
        args += [key] if value is None else [f"{key}={value}"]
    return args, n_bad


def _bad_here(key: str, value: str) -> bool:
    """``--device cuda`` is bad only on a machine without CUDA."""
    if key == "--device" and value == "cuda":
        import torch

        return not torch.cuda.is_available()
    return True


# --------------------------------------------------------------------------------------------
# broken files


def _npy_truncated(p: Path) -> None:
    np.save(p, np.eye(8))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _npz_truncated(p: Path) -> None:
    np.savez(p, A=np.eye(8))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 30])


def _zip_without_arrays(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "no arrays here")


def _mat_v73(p: Path) -> None:
    p.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b"\0" * 100 + b"HDF" * 50)


def _mat(arr) -> callable:
    def write(p: Path) -> None:
        import scipy.io

        scipy.io.savemat(p, {"A": arr})

    return write


def _npy(arr) -> callable:
    return lambda p: np.save(p, arr, allow_pickle=True)


def _npz(**arrays) -> callable:
    return lambda p: np.savez(p, **arrays)


def _text(s: str) -> callable:
    return lambda p: p.write_text(s)


def _bytes(b: bytes) -> callable:
    return lambda p: p.write_bytes(b)


def _directory(p: Path) -> None:
    p.mkdir()


def _missing(p: Path) -> None:
    pass


_GARBAGE = bytes(range(256)) * 3
_NAN = np.eye(8)
_NAN[2, 3] = np.nan
_INF = np.eye(8)
_INF[0, 0] = np.inf

#: suffix -> (writer(path), shape): rectangular matrices, which every reader loads as (m, n)
RECTANGULAR_FILES = {
    ".npy": (_npy(np.ones((8, 6))), (8, 6)),
    ".npz": (_npz(A=np.ones((3, 5))), (3, 5)),
    ".mat": (_mat(np.ones((3, 5))), (3, 5)),
    ".csv": (_text("1,2,3\n4,5,6\n"), (2, 3)),
    ".txt": (_text("1 2 3\n4 5 6\n"), (2, 3)),
}

#: suffix -> {what is wrong: writer(path)}; each file is a matrix fastinv must refuse (a
#: rectangular matrix is not one of them: it is audited against its pseudo-inverse, see
#: RECTANGULAR_FILES)
BAD_FILES = {
    ".npy": {
        "empty": _bytes(b""),
        "garbage": _bytes(_GARBAGE),
        "truncated": _npy_truncated,
        "1-D": _npy(np.ones(8)),
        "3-D": _npy(np.ones((2, 4, 4))),
        "0x0": _npy(np.zeros((0, 0))),
        "NaN": _npy(_NAN),
        "Inf": _npy(_INF),
        "complex": _npy(np.eye(8) * (1 + 1j)),
        "object": _npy(np.array([[1, "a"], ["b", 2]], dtype=object)),
        "strings": _npy(np.array([["a", "b"], ["c", "d"]])),
        "1x1 zero": _npy(np.zeros((1, 1))),
        "all zero": _npy(np.zeros((8, 8))),
        "directory": _directory,
        "missing": _missing,
    },
    ".npz": {
        "empty": _bytes(b""),
        "garbage": _bytes(b"PK\x03\x04" + _GARBAGE),
        "truncated": _npz_truncated,
        "no arrays": _npz(),
        "zip without npy": _zip_without_arrays,
        "two arrays": _npz(A=np.eye(8), B=np.eye(8)),
        "NaN": _npz(A=_NAN),
        "1-D": _npz(A=np.ones(8)),
        "directory": _directory,
        "missing": _missing,
    },
    ".mat": {
        "empty": _bytes(b""),
        "garbage": _bytes(_GARBAGE),
        "v7.3 header": _mat_v73,
        "NaN": _mat(_NAN),
        "strings": _mat("hello"),
        "complex": _mat(np.eye(4) * 1j),
        "directory": _directory,
        "missing": _missing,
    },
    ".csv": {
        "empty": _text(""),
        "comments only": _text("# nothing\n"),
        "header": _text("a,b\n1,2\n3,4\n"),
        "ragged": _text("1,2,3\n4,5\n6,7,8\n"),
        "NaN": _text("1,nan\n0,1\n"),
        "Inf": _text("1,0\ninf,1\n"),
        "words": _text("x,y\nz,w\n"),
        "binary": _bytes(_GARBAGE),
        "latin-1": _bytes("1,2\n3,\xe9\n".encode("latin-1")),
        "directory": _directory,
        "missing": _missing,
    },
    ".txt": {
        "empty": _text(""),
        "ragged": _text("1 2\n3\n"),
        "NaN": _text("nan 0\n0 1\n"),
        "binary": _bytes(_GARBAGE),
        "directory": _directory,
        "missing": _missing,
    },
}

#: files given to ``analyze --model``: none of them is a model fastinv can load
BAD_MODEL_FILES = {
    "empty.pt": _bytes(b""),
    "garbage.pt": _bytes(_GARBAGE),
    "zip-garbage.pt": _bytes(b"PK\x03\x04" + _GARBAGE),
    "empty-zip.pt2": _zip_without_arrays,
    "array.npy": _npy(np.eye(8)),
    "text.pt": _text("not a model\n"),
    "directory.pt": _directory,
    "missing.pt": _missing,
    "json.pt": _text('{"state_dict": {}}'),
}


# --------------------------------------------------------------------------------------------
# the property


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (relative) with the hash of its contents ('dir' for folders)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            try:
                digest = hashlib.sha1(Path(p).read_bytes()).hexdigest()
            except OSError as e:  # unreadable: record why
                digest = f"unreadable: {e.errno}"
            out[os.path.relpath(p, root)] = digest
    return out


def _is_parser_error(stderr: str) -> bool:
    return stderr.lstrip().startswith("Usage:") and "\nError: " in stderr


def check_cli(res, *, root: Path, before: dict, out: Path | None, expect: set[str]) -> str:
    """The CLI property; returns ``"ok"`` or ``"error"``.

    Exit 0 and ``out`` holds every name in ``expect`` and no temporary files; or exit 2 with
    exactly one line on stderr, starting with ``error:``, no traceback, and nothing under
    ``root`` created, changed or removed. Anything else (another exit code, an uncaught
    exception, a traceback, a partial folder) fails the test.
    """
    import traceback

    exc = res.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"uncaught {type(exc).__name__}:\n{tb}")
    stderr = res.stderr
    assert "Traceback" not in stderr and "Traceback" not in res.stdout, stderr
    if res.exit_code == 0:
        assert out is not None and out.is_dir(), f"exit 0 but no folder {out}"
        names = {p.name for p in out.iterdir()}
        assert expect <= names, f"exit 0 but {sorted(expect - names)} missing from {out}"
        leftovers = [k for k in snapshot(root) if k.endswith(".tmp")]
        assert not leftovers, f"temporary files left: {leftovers}"
        return "ok"
    assert res.exit_code == 2, f"exit code {res.exit_code}; stderr:\n{stderr}"
    if not PARSER_ERRORS_ONE_LINE and _is_parser_error(stderr):
        lines = [ln for ln in stderr.splitlines() if ln.startswith("Error: ")]
        assert len(lines) == 1, stderr
    else:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), f"stderr:\n{stderr}"
    after = snapshot(root)
    assert after == before, f"a failed command changed files: {_diff(before, after)}"
    return "error"


def _diff(before: dict, after: dict) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"added {added}, removed {removed}, changed {changed}"


# --------------------------------------------------------------------------------------------
# library arguments: good values mixed with wrong types, shapes, dtypes and non-finite values

_N = 8  # the size of every operator and signal in the library fuzz


def _good_matrix(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, cols)) + 3 * np.eye(rows, cols)


def _with(value):
    """The array with one entry (the second) set to ``value``."""

    def bad(a):
        a = np.array(a, dtype=np.float64)
        a.flat[1 % a.size] = value
        return a

    return bad


#: transformations of a good array into a (mostly) bad argument
ARRAY_DAMAGE = {
    "good": lambda a: a,
    "NaN": _with(np.nan),
    "Inf": _with(np.inf),
    "-Inf": _with(-np.inf),
    "huge": lambda a: a * 1e300,
    "int": lambda a: np.rint(a).astype(np.int64),
    "float32": lambda a: a.astype(np.float32),
    "float16": lambda a: a.astype(np.float16),
    "complex": lambda a: a.astype(np.complex128) * (1 + 1j),
    "bool": lambda a: a > 0,
    "object": lambda a: a.astype(object),
    "strings": lambda a: a.astype(str),
    "list": lambda a: a.tolist(),
    "1-D": lambda a: a.ravel(),
    "3-D": lambda a: a[None],
    "transposed": lambda a: np.ascontiguousarray(a.T),
    "extra column": lambda a: np.hstack([a, a[:, :1]]) if a.ndim == 2 else a,
    "one row": lambda a: a[:1],
    "no rows": lambda a: a[:0],
    "no columns": lambda a: a[:, :0] if a.ndim == 2 else a[:0],
    "zeros": np.zeros_like,
    "None": lambda a: None,
    "string": lambda a: "A",
    "scalar": lambda a: 3.0,
    "dict": lambda a: {"A": a},
}

#: values for an integer argument (counts, ranks, seeds)
BAD_INTS = [0, -1, 1.5, "3", None, float("nan"), True, 2**70, np.float64(2.0), [3], 3 + 0j]

#: values for a float argument (noise levels, step sizes, regularization)
BAD_FLOATS = [0.0, -1.0, float("nan"), float("inf"), -float("inf"), "x", None, 1e308, True, 1j]


@st.composite
def arrays(draw, rows: int, cols: int, *, seed: int = 0):
    """A (rows, cols) float64 array, or one of :data:`ARRAY_DAMAGE` applied to it."""
    name = draw(st.sampled_from(sorted(ARRAY_DAMAGE)))
    return ARRAY_DAMAGE[name](_good_matrix(rows, cols, seed))


def ints(*good: int):
    """One of ``good`` or of :data:`BAD_INTS`."""
    return st.sampled_from([*good, *BAD_INTS])


def floats(*good: float):
    """One of ``good`` or of :data:`BAD_FLOATS`."""
    return st.sampled_from([*good, *BAD_FLOATS])


def names(*good: str):
    """One of ``good``, or an unknown name, an empty string or not a string."""
    return st.sampled_from([*good, "nosuch", "", None, 3, b"shaw"])
