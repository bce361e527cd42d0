"""Shared fixtures of the pytest-benchmark suites and the ratio tables printed at the end.

Run (not part of the default test run, whose ``testpaths`` is ``tests``)::

    python3 -m pytest bench/ --benchmark-only [--fastinv-summary bench/summary.md]

Every benchmark records ``extra_info["role"]``: ``"bound"`` (the bare BLAS/LAPACK calls
fastinv cannot beat), ``"fastinv"`` (the entry the ratios are taken against),
``"fastinv-variant"`` or ``"peer"`` (what a user would use instead). At the end of the session
one Markdown table per benchmark group is printed (and written to ``--fastinv-summary``): the
median and minimum time, ``t / bound`` and ``t / fastinv``, and the accuracy or memory
figures the tests stored in ``extra_info``. The machine (CPU, cores, library versions, BLAS,
OpenBLAS environment, load) and the date head the summary.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

#: arrays that are slow to build (Haar-random 4096 x 4096 factors) are cached here
CACHE = Path(os.environ.get("FASTINV_BENCH_CACHE", "/tmp/fastinv_bench_cache"))

#: extra_info keys shown as columns, with their headers and formats
_COLUMNS = {
    "passes": ("passes", "{:d}"),
    "max_rel_err": ("max rel. err of top-k σ (seed 0)", "{:.2e}"),
    "err_median_seeds": ("median of that over seeds 0–11", "{:.2e}"),
    "peak_extra_MiB": ("peak extra MiB", "{:.1f}"),
    "limit_MiB": ("limit 3n²·8 + chunk, MiB", "{:.1f}"),
    "peak_over_n2x8": ("peak / (n²·8)", "{:.2f}"),
    "note": ("note", "{}"),
}


def rsvd_module():
    """The randomized-SVD module (``fastinv.linalg.randomized``; ``fastinv.rsvd`` on old trees)."""
    from fastinv.workflows.bench import rsvd_module as _m

    return _m()


def pytest_addoption(parser):
    parser.addoption(
        "--fastinv-summary",
        default=None,
        help="write the fastinv ratio tables (Markdown) to this file too",
    )


@pytest.fixture(scope="session")
def machine():
    from fastinv.workflows.bench import machine_info

    return machine_info()


@pytest.fixture(scope="session", autouse=True)
def _warm_blas():
    """Start the BLAS thread pools and the page cache of the allocator before any timing."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024))
    for _ in range(3):
        a @ a
    yield


def haar(n: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-distributed orthogonal n x n matrix (QR of a Gaussian with the signs fixed)."""
    import scipy.linalg

    Q, R = scipy.linalg.qr(rng.standard_normal((n, n)), mode="economic", check_finite=False)
    Q *= np.sign(np.diag(R))
    return Q


def spectrum(kind: str, n: int) -> np.ndarray:
    """The test spectra: ``slow`` s_i = 1/i, ``fast`` s_i = exp(-i/20) (i = 1..n)."""
    i = np.arange(1, n + 1, dtype=np.float64)
    if kind == "slow":
        return 1.0 / i
    if kind == "fast":
        return np.exp(-i / 20.0)
    raise ValueError(kind)


def matrix_with_spectrum(kind: str, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``M = U diag(s) Vᵀ`` with Haar U, V, cached as .npy under CACHE; returns (M, s)."""
    s = spectrum(kind, n)
    path = CACHE / f"rsvd_{kind}_n{n}_seed{seed}.npy"
    if path.exists():
        M = np.load(path, mmap_mode=None)
        if M.shape == (n, n):
            return M, s
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    U = haar(n, rng)
    V = haar(n, rng)
    M = np.ascontiguousarray((U * s) @ V.T)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, M)
    os.replace(tmp, path)
    return M, s


def topk_rel_err(s_hat, s_true, k: int) -> float:
    """max_i |s_i - s*_i| / s*_i over the top k singular values."""
    s_hat = np.asarray(s_hat, dtype=np.float64)[:k]
    return float(np.max(np.abs(s_hat - s_true[:k]) / s_true[:k]))


# fixtures handing out the helpers above (test modules do not import conftest: with tests/
# on sys.path too, ``conftest`` could name tests/conftest.py)
@pytest.fixture(scope="session")
def rsvd_mod():
    return rsvd_module()


@pytest.fixture(scope="session")
def spectral_matrix():
    """``spectral_matrix(kind, n) -> (M, s)``, cached on disk and for the session."""
    memo = {}

    def get(kind: str, n: int):
        if (kind, n) not in memo:
            memo[kind, n] = matrix_with_spectrum(kind, n)
        return memo[kind, n]

    return get


@pytest.fixture(scope="session")
def topk_err():
    return topk_rel_err


# ------------------------------------------------------------------------------------------
# the summary


def _fmt_t(t: float) -> str:
    if t >= 10:
        return f"{t:.1f}"
    if t >= 0.1:
        return f"{t:.3f}"
    return f"{t * 1e3:.2f} ms"


def summary_tables(benchmarks) -> str:
    """One Markdown table per group (see the module docstring)."""
    groups: dict[str, list] = {}
    for b in benchmarks:
        if not b.stats or b.has_error:
            continue
        groups.setdefault(b.group or "(no group)", []).append(b)
    out = []
    for g, items in groups.items():
        bound = next((b for b in items if b.extra_info.get("role") == "bound"), None)
        ref = next((b for b in items if b.extra_info.get("role") == "fastinv"), None)
        cols = [c for c in _COLUMNS if any(c in b.extra_info for b in items)]
        head = ["benchmark", "role", "median (s)", "min (s)", "rounds"]
        if bound is not None:
            head.append("t / bound")
        if ref is not None:
            head.append("t / fastinv")
        head += [_COLUMNS[c][0] for c in cols]
        rows = [f"### {g}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for b in items:
            st = b.stats
            cells = [
                b.extra_info.get("label", b.name),
                b.extra_info.get("role", ""),
                _fmt_t(st.median),
                _fmt_t(st.min),
                str(st.rounds),
            ]
            if bound is not None:
                cells.append(f"{st.median / bound.stats.median:.2f}")
            if ref is not None:
                cells.append(f"{st.median / ref.stats.median:.2f}")
            for c in cols:
                v = b.extra_info.get(c)
                cells.append("" if v is None else _COLUMNS[c][1].format(v))
            rows.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(rows))
    return "\n\n".join(out) + "\n"


def pytest_sessionstart(session):
    from fastinv.workflows.bench import machine_info

    session.config._fastinv_machine = machine_info()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or not bs.benchmarks:
        return
    from fastinv.workflows.bench import machine_summary

    info = getattr(config, "_fastinv_machine", None) or {}
    try:
        load_end = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load_end = None
    text = (
        "## fastinv benchmark summary\n\n"
        + f"Machine (recorded at the start of the session): {machine_summary(info)}"
        + f" Load average at the end: {load_end}.\n\n"
        + summary_tables(bs.benchmarks)
    )
    terminalreporter.write_sep("=", "fastinv ratios")
    terminalreporter.write_line(text)
    path = config.getoption("--fastinv-summary")
    if path:
        from fastinv.io import write_text

        write_text(path, text)
