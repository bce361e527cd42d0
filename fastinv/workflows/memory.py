"""Memory planned from the arguments alone, before the operator or any data is built.

Each command's peak is estimated from its arguments (the operator's size n comes from the
catalogue's ``n`` or from a matrix file's header, never from building A), and
:func:`fastinv.io.check_memory` refuses it with the estimate and a suggestion when it exceeds
80 % of the available memory. The estimates are upper bounds of the measured peaks:

- run: X, Y of the training, test and probe sets (float64), the audit's n x n matrices
  (about 32 of them alive at once, the operator and its SVD included, measured at n = 2048
  and 4096), one n x n matrix per Jacobian, and ~0.5 GiB of interpreter and libraries;
- analyze: the same without training pairs, plus twice the model file;
- sweep: per noise level three evaluation conditions (test pairs, probes and an LMMSE
  matrix each) and the shared references, held by the main process and by every worker,
  plus one model's training data and light audit per worker;
- bench: at the largest n, the data twice (the generate stage makes a fresh copy), A and its
  SVD, and the audit's matrices when that stage is asked for.

Nothing here imports :mod:`fastinv.workflows.run` (which imports this module).
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from fastinv.io import check_memory
from fastinv.problem.files import LOADABLE_SUFFIXES

__all__ = [
    "BASE_BYTES",
    "analyze_bytes",
    "bench_bytes",
    "check_analyze_memory",
    "check_bench_memory",
    "check_run_memory",
    "check_sweep_memory",
    "default_probe_sizes",
    "topk_probes",
    "experiment_bytes",
    "operator_bytes",
    "file_rows",
    "matrix_file_shape",
    "operator_size",
    "sweep_bytes",
]

#: interpreter, NumPy, SciPy and torch
BASE_BYTES = 2**29

#: n x n float64 matrices alive at the audit's peak (measured at n = 2048 and 4096)
_AUDIT_MATRICES = 32

# --------------------------------------------------------------------------------------------
# the operator's size without building it


def operator_size(operator, n=None, key: str | None = None) -> int | None:
    """n of ``operator`` without building it: ``n`` for a catalogue name, the matrix's size
    from a file's header (None when it cannot tell: the operator's own checks then speak)."""
    if _is_matrix_file(operator):
        shape = matrix_file_shape(operator, key)
        return None if shape is None else max(shape)
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1:
        return int(n)
    return None


def _is_matrix_file(operator) -> bool:
    if isinstance(operator, os.PathLike):
        return True
    return isinstance(operator, str) and operator.strip().lower().endswith(LOADABLE_SUFFIXES)


def matrix_file_shape(path, key: str | None = None) -> tuple[int, ...] | None:
    """The shape of the matrix a file holds, from its header (``.npy``, ``.npz``, ``.mat``)
    or its count of lines (``.csv``, ``.txt``: an upper bound of n); None when unreadable."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        return None
    try:
        if suffix == ".npy":
            with open(p, "rb") as fh:
                return _npy_shape(fh)
        if suffix == ".npz":
            return _npz_shape(p, key)
        if suffix == ".mat":
            return _mat_shape(p, key)
        rows = file_rows(p)
        return (rows, rows)
    except Exception:  # noqa: BLE001 - a bad file is reported by the reader, not here
        return None


def _npy_shape(fh) -> tuple[int, ...]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, _ = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, _ = np.lib.format.read_array_header_2_0(fh)
    return tuple(int(s) for s in shape)


def _npz_shape(p: Path, key: str | None) -> tuple[int, ...] | None:
    with zipfile.ZipFile(p) as z:
        names = [name[:-4] for name in z.namelist() if name.endswith(".npy")]
        if {"data", "indices", "indptr", "format", "shape"} <= set(names) and key is None:
            with z.open("shape.npy") as fh:
                return tuple(int(s) for s in np.load(fh, allow_pickle=False))
        chosen = key if key is not None else (names[0] if len(names) == 1 else None)
        if chosen not in names:
            return None
        with z.open(f"{chosen}.npy") as fh:
            return _npy_shape(fh)


def _mat_shape(p: Path, key: str | None) -> tuple[int, ...] | None:
    import scipy.io

    entries = {name: shape for name, shape, _ in scipy.io.whosmat(p)}
    chosen = key if key is not None else (next(iter(entries)) if len(entries) == 1 else None)
    return None if chosen not in entries else tuple(int(s) for s in entries[chosen])


def file_rows(path) -> int:
    """Lines of a text file (read in 1 MiB pieces, nothing kept): an upper bound of its rows."""
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        while piece := fh.read(1 << 20):
            count += piece.count(b"\n")
            last = piece[-1:]
    return count + (last != b"\n")


# --------------------------------------------------------------------------------------------
# the estimates


def topk_probes(rank: int | None = None) -> int:
    """Default probes for the top-k audit: enough fitted rows (80 %) for 8 per direction of
    k = ``rank`` (default the cap, 256), and at least 2000."""
    from fastinv.auditing.topk import RANK_CAP, ROWS_PER_DIRECTION

    k = rank or RANK_CAP
    return max(2000, math.ceil(ROWS_PER_DIRECTION * k / 0.8) + 1)


def default_probe_sizes(n: int, *, rank: int | None = None) -> tuple[int, int]:
    """(probes, test pairs) by default: max(2000, 4n) and max(1000, 2n) for the dense audit;
    :func:`topk_probes` and 1000 for the top-k audit (``rank`` given, or the dense audit
    will not fit)."""
    dense = (max(2000, 4 * n), max(1000, 2 * n))
    from fastinv.auditing.sections import dense_audit_fits

    if rank is None and dense_audit_fits(n, sum(dense)):
        return dense
    return topk_probes(rank), 1000


#: catalogue operators that are never stored as an n x n matrix
MATRIX_FREE_OPERATORS = ("blur2d", "inpaint")


def operator_bytes(operator, n: int) -> int:
    """Bytes the operator itself holds: 0 for a matrix-free catalogue entry (blur2d,
    inpaint), else a dense n x n float64 matrix and one temporary of its construction (a
    catalogue matrix or a file's)."""
    if isinstance(operator, str) and operator.strip().lower() in MATRIX_FREE_OPERATORS:
        return 0
    return 2 * 8 * n * n


def experiment_bytes(
    n: int, *, rows: int, n_jacobian: int, rank: int | None = None, operator=None
) -> int:
    """Bytes of an experiment at size n: ``rows`` (x, y) pairs in float64, the audit (dense:
    its n x n matrices and one per Jacobian; top-k when ``rank`` is given or the dense audit
    will not fit: :func:`fastinv.auditing.topk.topk_bytes` and the k x k Jacobians) and the
    interpreter."""
    data = 8 * n * 2 * rows
    from fastinv.auditing.sections import dense_audit_fits

    if rank is None and dense_audit_fits(n, rows):
        return int(data + 8 * n * n * (_AUDIT_MATRICES + n_jacobian) + BASE_BYTES)
    from fastinv.auditing.topk import RANK_CAP, topk_bytes

    k = rank or RANK_CAP
    jac = 8 * k * k * (n_jacobian + 2)
    held = operator_bytes(operator, n)
    return int(data + held + topk_bytes(n, k, rows, min(rows, 1000)) + jac + BASE_BYTES)


def analyze_bytes(
    n: int,
    *,
    probes: int,
    test: int,
    n_jacobian: int,
    model_bytes: int,
    rank: int | None = None,
    operator=None,
) -> int:
    """Bytes of `fastinv analyze`: probes and test pairs, the audit, twice the model file."""
    rows = probes + test
    need = experiment_bytes(n, rows=rows, n_jacobian=n_jacobian, rank=rank, operator=operator)
    return need + 2 * model_bytes


def sweep_bytes(
    n: int, *, noise_levels: int, probes: int, test: int, samples: int, workers: int
) -> int:
    """Bytes of `fastinv sweep`: the shared context (references and 3 conditions per noise
    level) in the main process and in each worker, and per worker one model's training data
    and light audit."""
    conditions = 3 * noise_levels
    context = 8 * n * n * (8 + conditions) + 8 * n * 2 * (probes + test) * conditions
    per_model = 8 * n * 2 * samples * 2 + 8 * n * n * 16 + BASE_BYTES
    return int(context + BASE_BYTES + workers * (context + per_model))


def bench_bytes(n: int, *, samples_per_n: int, audit: bool) -> int:
    """Bytes of `fastinv bench` at its largest n: the data twice, A, its SVD and LAPACK's
    work space, and the audit's matrices when that stage runs."""
    rows = samples_per_n * n
    matrices = 8 + (_AUDIT_MATRICES if audit else 0)
    return int(8 * n * 2 * rows * 2 + 8 * n * n * matrices + BASE_BYTES)


# --------------------------------------------------------------------------------------------
# the checks, one per command


def check_run_memory(
    n: int,
    *,
    samples: int,
    n_test: int,
    n_probe: int,
    n_jacobian: int,
    rank: int | None = None,
    operator=None,
) -> None:
    """Refuse a run whose estimate (:func:`experiment_bytes`) will not fit."""
    rows = samples + n_test + n_probe
    check_memory(
        experiment_bytes(n, rows=rows, n_jacobian=n_jacobian, rank=rank, operator=operator),
        f"an experiment with n = {n} and {samples} samples",
        suggestion="use fewer --samples, a smaller --n or --jacobian-probes 0",
    )


def check_analyze_memory(
    operator,
    n=None,
    *,
    model_spec=None,
    probes_path=None,
    test_probes_path=None,
    samples=None,
    n_jacobian: int = 16,
    rank: int | None = None,
) -> None:
    """Refuse `fastinv analyze` when its estimate (:func:`analyze_bytes`) will not fit; the
    operator's and the probes' sizes come from the arguments and the files' headers."""
    size = operator_size(operator, n)
    if size is None:
        return
    if probes_path is not None:
        shape = matrix_file_shape(probes_path)
        probes = shape[0] if shape else 0
        test_shape = matrix_file_shape(test_probes_path) if test_probes_path else None
        test = test_shape[0] if test_shape else 0  # else the probes double as the test set
    else:
        default_probes, test = default_probe_sizes(size, rank=rank)
        probes = samples or default_probes
    model_file = Path(str(model_spec)) if model_spec is not None else None
    model_bytes = model_file.stat().st_size if model_file and model_file.is_file() else 0
    need = analyze_bytes(
        size,
        probes=probes,
        test=test,
        n_jacobian=n_jacobian,
        model_bytes=model_bytes,
        rank=rank,
        operator=operator,
    )
    check_memory(
        need,
        f"analyzing a model at n = {size} with {probes} probes",
        suggestion="use fewer --samples or --probes rows, a smaller --n or --jacobian-probes 0",
    )


def check_sweep_memory(operator, n, operator_params, opts: dict) -> None:
    """Refuse `fastinv sweep` when its estimate (:func:`sweep_bytes`) will not fit.

    ``opts`` is :func:`fastinv.workflows.sweep.run_sweep`'s checked settings: ``axes``
    (lists ``widths``, ``depths``, ``samples``, ``noise``, ``seeds``), ``probes``,
    ``test_samples``, ``jobs`` and ``device`` (a torch.device).
    """
    size = operator_size(operator, n, (operator_params or {}).get("key"))
    if size is None:
        return
    axes = opts["axes"]
    models = math.prod(len(axes[k]) for k in ("widths", "depths", "samples", "noise", "seeds"))
    pool = getattr(opts["device"], "type", str(opts["device"])) == "cpu"
    workers = min(opts["jobs"], models) if pool else 0
    need = sweep_bytes(
        size,
        noise_levels=len(axes["noise"]),
        probes=opts["probes"] or max(2000, 4 * size),
        test=opts["test_samples"] or max(1000, 2 * size),
        samples=max(axes["samples"]),
        workers=max(workers, 1),
    )
    check_memory(
        need,
        f"a sweep at n = {size} with {len(axes['noise'])} noise level(s) and "
        f"{max(workers, 1)} worker(s)",
        suggestion="use a smaller --n, fewer --jobs, --noise levels or --samples, or fewer "
        "--probes / --test-samples",
    )


def check_bench_memory(ns, stages, samples_per_n: int) -> None:
    """Refuse `fastinv bench` when its largest size (:func:`bench_bytes`) will not fit."""
    n = max(ns)
    check_memory(
        bench_bytes(n, samples_per_n=samples_per_n, audit="audit" in stages),
        f"benchmarking at n = {n} with {samples_per_n * n} rows of data",
        suggestion="lower --max-n or --ns, or use a smaller --samples-per-n",
    )
