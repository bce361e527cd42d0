"""Scaling benchmark: how each stage's time grows with n (``fastinv bench``).

:func:`scaling` times the stages of a fastinv experiment over a range of sizes ``n`` -- the
median of ``repeats`` runs after one untimed warm-up per stage (Numba JIT, BLAS thread pools) --
fits the growth exponent ``p`` of ``t ≈ c·n^p`` by least squares on log-log axes over the
largest sizes, and writes three files and a manifest into a folder published whole
(:class:`fastinv.io.OutFolder`):

``bench.md``
    a Markdown table: median seconds per stage and size, the fitted exponents, the expected
    ones, and the machine it ran on.
``scaling.png``
    the same times on log-log axes with the fitted power laws.
``scaling.json``
    the raw times of every repeat, the fits, the configuration and the machine.

Peak memory is measured in the same (timed) call and reported next to the times, with its own
fitted exponent: ``traced`` is the peak of tracemalloc over the call -- the NumPy (and Python)
memory allocated during the call above what was allocated before it, so inputs prepared
beforehand do not count; torch's CPU allocator is not traced -- and ``rss`` is the process's
peak resident set during the call (Linux: VmHWM after resetting it through
``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, the peak since the process started). RSS
includes the interpreter and the stage's prepared inputs; the exponents are fitted to
``traced``. tracemalloc's hooks cost little next to the large NumPy allocations of the sizes
that matter, but they slow Python-bound calls at tiny n (rsvd at n = 16: ~10 µs per
allocation), where fixed costs dominate the times anyway.

Stages (``N = samples_per_n · n`` rows of data, 4n by default, so N grows with n):

``generate``
    :func:`fastinv.generate`: N pairs from the smooth prior with 1 % relative noise through a
    dense Gaussian operator. The prior draws each signal from r ≈ 100 coefficients whatever n
    is, so ``A x = z (F Aᵀ)`` costs O(N n r) = O(n²) (plus O(r n²) once for F Aᵀ); a
    full-rank prior would cost O(N n²) = O(n³). CPU only (no CUDA path): it runs on the CPU
    also under ``device="cuda"``.
``fit_linear``
    :func:`fastinv.linalg.surrogate.fit_linear` on those N pairs (streamed moments + Cholesky).
    O(N n² + n³) = O(n³). Torch tensors on the device under ``device="cuda"``.
``rsvd``
    :func:`fastinv.rsvd` of the operator with a fixed rank ``k`` (64) and ``n_iter`` (4, i.e.
    10 passes), default error estimate. O(n² k) = O(n²) for fixed k.
``svd_full``
    the full LAPACK SVD (``scipy.linalg.svd``, gesdd) of the operator -- what a top-k
    SVD replaces; ``torch.linalg.svd`` under ``device="cuda"``. O(n³).
``audit``
    :func:`fastinv.audit` of a linear NumPy model (the least-squares inverse fitted from the
    data) with N probes and min(N, 1000) test pairs: full SVD of A, the reference inverses,
    the spectral comparisons. O(n³). CPU only; not in the default stages (it dominates).

The large-n stages (``IMAGE_STAGES``; not in the default stages) work on H x H images, n = H²
(a non-square n is refused), with the periodic Gaussian blur ``blur2d`` (σ = 2 pixels,
matrix-free through FFTs: no n x n matrix exists at any point), the ``grf`` prior, 1 % relative
noise, k = ``rank`` (256, capped at n) and a fixed N_k = :func:`fastinv.workflows.memory.
topk_probes` (k) pairs (2561 for k = 256) whatever n is, so memory grows as O(N_k n) = O(n).
CPU only (they run on the CPU under ``device="cuda"``):

``blur_generate``
    :func:`fastinv.generate` of N_k pairs through the FFT operator. O(N_k n log n).
``blur_topk``
    ``op.svd_topk(k)``: A's k leading singular triplets, exact from the FFT spectrum, with
    U_k and V_k as (n, k) arrays. O(n log n + k n log n) = O(n log n) for fixed k.
``topk_audit``
    :func:`fastinv.audit` with ``rank=k`` of a fixed linear spectral filter (Tikhonov,
    λ = 10⁻³, applied through ``op.spectral_basis``: :func:`tikhonov_filter_model`) on the
    N_k pairs as probes and 500 test pairs, ``n_jacobian=0``. O(N_k n log n).
``topk_audit_cnn``
    the same audit of an untrained ``make_model("cnn", image_shape=(H, H), width=8,
    depth=2)`` with ``n_jacobian=2`` (k Jacobian-vector products per probe). O(N_k n) for the
    network's convolutions plus O(k n) for the JVPs, O(N_k n log n) for the projections.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import resource
import statistics
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastinv._device import cuda_available
from fastinv._progress import Stopwatch
from fastinv._validation import check_choice, check_int, check_seed
from fastinv.errors import FastinvError
from fastinv.io import OutFolder, check_memory
from fastinv.workflows.memory import BASE_BYTES, check_bench_memory, topk_probes

__all__ = [
    "DEFAULT_NS",
    "DEFAULT_STAGES",
    "EXPECTED_EXPONENT",
    "EXPECTED_MEMORY_EXPONENT",
    "IMAGE_STAGES",
    "STAGES",
    "ScalingResult",
    "fit_exponent",
    "image_bench_bytes",
    "machine_info",
    "machine_summary",
    "rsvd_module",
    "scaling",
    "tikhonov_filter_model",
]

#: the large-n stages on H x H images (n = H², matrix-free blur)
IMAGE_STAGES = ("blur_generate", "blur_topk", "topk_audit", "topk_audit_cnn")
STAGES = ("generate", "fit_linear", "rsvd", "svd_full", "audit", *IMAGE_STAGES)
DEFAULT_STAGES = ("generate", "fit_linear", "rsvd", "svd_full")
DEFAULT_NS = (256, 512, 1024, 2048, 4096)
#: growth exponents expected from the operation counts (N ∝ n, fixed rsvd rank; N_k and k fixed
#: in the large-n stages, whose n log n reads as p ≈ 1.1 over n = 4096 … 65536)
EXPECTED_EXPONENT = {
    "generate": 2.0,
    "fit_linear": 3.0,
    "rsvd": 2.0,
    "svd_full": 3.0,
    "audit": 3.0,
    "blur_generate": 1.1,
    "blur_topk": 1.1,
    "topk_audit": 1.1,
    "topk_audit_cnn": 1.0,
}
#: growth exponents of the traced peak memory: the N x n data and n x n matrices of the dense
#: stages, rsvd's n x k blocks (A exists before the call), O(n) arrays in the large-n stages
EXPECTED_MEMORY_EXPONENT = {
    "generate": 2.0,
    "fit_linear": 2.0,
    "rsvd": 1.0,
    "svd_full": 2.0,
    "audit": 2.0,
    "blur_generate": 1.0,
    "blur_topk": 1.0,
    "topk_audit": 1.0,
    "topk_audit_cnn": 1.0,
}
#: stages that have no CUDA path and run on the CPU under device="cuda"
_CPU_ONLY = ("generate", "audit", *IMAGE_STAGES)
#: the large-n stages' blur width (pixels), Tikhonov λ of the filter model, test pairs
BLUR_SIGMA = 2.0
FILTER_LAMBDA = 1e-3
IMAGE_TEST_PAIRS = 500


# ------------------------------------------------------------------------------------------
# machine description


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(mod: str) -> str | None:
    import importlib

    try:
        return str(importlib.import_module(mod).__version__)
    except Exception:  # noqa: BLE001 - optional package, any import failure means "absent"
        return None


def _blas_info() -> list[dict]:
    """BLAS/OpenMP libraries loaded in this process (threadpoolctl), or numpy's config."""
    try:
        import threadpoolctl
    except ImportError:
        try:
            cfg = np.show_config(mode="dicts")
            blas = cfg.get("Build Dependencies", {}).get("blas", {})
            return [{"name": blas.get("name"), "version": blas.get("version")}]
        except Exception:  # noqa: BLE001 - older numpy: no dict mode
            return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture")
    return [{k: d.get(k) for k in keep if k in d} for d in threadpoolctl.threadpool_info()]


def machine_info() -> dict[str, Any]:
    """CPU model, cores, load, library versions, BLAS, the OpenBLAS environment and the date.

    Returns
    -------
    dict
        JSON-serialisable description of the machine and software a timing was made on.
    """
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = None
    torch_threads = None
    cuda = None
    if _version("torch") is not None:
        import torch

        torch_threads = torch.get_num_threads()
        if cuda_available():
            cuda = torch.cuda.get_device_name(0)
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "loadavg": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            m: _version(m) for m in ("numpy", "scipy", "numba", "torch", "sklearn", "fastinv")
        },
        "blas": _blas_info(),
        "torch_threads": torch_threads,
        "cuda_device": cuda,
        "env": {
            k: os.environ[k]
            for k in sorted(os.environ)
            if k.startswith(("OPENBLAS", "OMP_", "MKL_", "NUMBA_NUM", "GOTO"))
        },
    }


def machine_summary(info: dict[str, Any]) -> str:
    """One Markdown paragraph describing ``info`` (from :func:`machine_info`)."""
    v = info.get("versions", {})
    blas = "; ".join(
        f"{b.get('internal_api', b.get('name'))} {b.get('version')} ({b.get('prefix', '')}, "
        f"{b.get('architecture', '?')}, {b.get('num_threads', '?')} threads)"
        for b in info.get("blas", [])
        if b.get("user_api", "blas") == "blas"
    )
    env = ", ".join(f"{k}={val}" for k, val in info.get("env", {}).items()) or "none set"
    vers = ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
    return (
        f"{info.get('cpu')} ({info.get('cores_usable')} usable cores), Python "
        f"{info.get('python')}; {vers}; BLAS: {blas or 'unknown'}; torch threads "
        f"{info.get('torch_threads')}; CUDA device: {info.get('cuda_device') or 'none'}; "
        f"BLAS/OpenMP environment: {env}; load average (1, 5, 15 min) "
        f"{info.get('loadavg')} when recorded; "
        f"date {info.get('date')}."
    )


# ------------------------------------------------------------------------------------------
# the fit


def fit_exponent(ns: Sequence[float], times: Sequence[float | None], *, points: int = 3):
    """Least-squares fit of ``log t = log c + p log n`` over the largest sizes.

    Parameters
    ----------
    ns : sequence of float, length m
        Sizes.
    times : sequence of float or None, length m
        Times; None, non-finite or non-positive entries are left out.
    points : int
        Use the ``points`` largest sizes that have a time (at least 2).

    Returns
    -------
    dict or None
        ``{"p", "c", "ns": [sizes used], "r2"}`` (``r2`` of the log-log fit; 1.0 for two
        points), or None when fewer than two sizes have a time.
    """
    if points < 2:
        raise FastinvError(f"points must be at least 2 to fit an exponent, got {points}")
    pairs = sorted(
        (float(n), float(t))
        for n, t in zip(ns, times, strict=True)
        if t is not None and math.isfinite(t) and t > 0
    )[-points:]
    if len(pairs) < 2:
        return None
    x = np.log([p[0] for p in pairs])
    y = np.log([p[1] for p in pairs])
    G = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(G, y, rcond=None)
    resid = y - G @ coef
    ss = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss if ss > 0 else 1.0
    return {
        "p": float(coef[1]),
        "c": float(np.exp(coef[0])),
        "ns": [int(p[0]) for p in pairs],
        "r2": r2,
    }


# ------------------------------------------------------------------------------------------
# result


@dataclass
class ScalingResult:
    """Times of each stage over n, with the fitted growth exponents.

    Attributes
    ----------
    ns : list of int
        Sizes, ascending.
    samples : list of int
        Rows N of generated data at each size.
    stages : list of str
        Stages timed.
    times : dict of str to list of list of float
        ``times[stage][i]``: the ``repeats`` wall-clock times (s) at ``ns[i]``.
    medians : dict of str to list of float or None
        Median of each list (None where the stage was not run at that size).
    exponents : dict of str to dict or None
        :func:`fit_exponent` of each stage.
    device : str
        "cpu" or "cuda".
    stage_devices : dict of str to str
        Where each stage ran ("cpu" for the CPU-only stages under device="cuda").
    config : dict
        The arguments of :func:`scaling`.
    machine : dict
        :func:`machine_info` at the start of the run.
    files : dict of str to str
        Paths of the written files (empty without ``out``).
    wall_s : float
        Total wall-clock time of the run, warm-ups and data generation included.
    traced : dict of str to list of list of int
        ``traced[stage][i]``: tracemalloc's peak (bytes allocated during the call above what
        was allocated before it) of each repeat at ``ns[i]``.
    rss : dict of str to list of list of int
        ``rss[stage][i]``: the process's peak resident set (bytes) during each repeat
        (``config["rss"]`` says how it was read).
    memory_exponents : dict of str to dict or None
        :func:`fit_exponent` of the largest ``traced`` peak of each stage over n.
    """

    ns: list[int]
    samples: list[int]
    stages: list[str]
    times: dict[str, list[list[float]]]
    medians: dict[str, list[float | None]]
    exponents: dict[str, dict | None]
    device: str
    stage_devices: dict[str, str]
    config: dict[str, Any]
    machine: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    traced: dict[str, list[list[int]]] = field(default_factory=dict)
    rss: dict[str, list[list[int]]] = field(default_factory=dict)
    memory_exponents: dict[str, dict | None] = field(default_factory=dict)

    def peak(self, which: str, stage: str) -> list[int | None]:
        """The largest ``traced`` or ``rss`` peak over the repeats of ``stage`` at each n."""
        rows = getattr(self, which).get(stage, [])
        return [max(r) if r else None for r in rows]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (all times included)."""
        return {
            "ns": list(self.ns),
            "samples": list(self.samples),
            "stages": list(self.stages),
            "times_s": {k: [list(r) for r in v] for k, v in self.times.items()},
            "median_s": {k: list(v) for k, v in self.medians.items()},
            "exponents": self.exponents,
            "expected_exponents": {s: EXPECTED_EXPONENT[s] for s in self.stages},
            "device": self.device,
            "stage_devices": dict(self.stage_devices),
            "config": self.config,
            "machine": self.machine,
            "files": dict(self.files),
            "wall_s": self.wall_s,
            "traced_bytes": {k: [list(r) for r in v] for k, v in self.traced.items()},
            "rss_bytes": {k: [list(r) for r in v] for k, v in self.rss.items()},
            "peak_traced_bytes": {s: self.peak("traced", s) for s in self.traced},
            "peak_rss_bytes": {s: self.peak("rss", s) for s in self.rss},
            "memory_exponents": self.memory_exponents,
            "expected_memory_exponents": {s: EXPECTED_MEMORY_EXPONENT[s] for s in self.stages},
        }

    def to_markdown(self) -> str:
        """The table of ``bench.md``: median seconds, fitted and expected exponents."""
        head = ["n", "N"] + [
            f"{s} (s)" + (" [cpu]" if self.stage_devices.get(s) != self.device else "")
            for s in self.stages
        ]
        lines = [
            "| " + " | ".join(head) + " |",
            "|" + "|".join("---:" for _ in head) + "|",
        ]
        for i, (n, N) in enumerate(zip(self.ns, self._rows_column(), strict=True)):
            cells = [str(n), str(N)]
            for s in self.stages:
                t = self.medians[s][i]
                cells.append("—" if t is None else _fmt_s(t))
            lines.append("| " + " | ".join(cells) + " |")
        row_p = ["**p** fitted", ""]
        row_over = ["fitted over n", ""]
        row_e = ["p expected", ""]
        for s in self.stages:
            fit = self.exponents.get(s)
            row_p.append("—" if fit is None else f"**{fit['p']:.2f}**")
            row_over.append("—" if fit is None else ", ".join(str(n) for n in fit["ns"]))
            row_e.append(f"{EXPECTED_EXPONENT[s]:g}")
        for r in (row_p, row_over, row_e):
            lines.append("| " + " | ".join(r) + " |")
        return "\n".join(lines) + "\n"

    def _rows_column(self) -> list[int]:
        """The N column: samples_per_n · n, or N_k when only large-n stages ran."""
        if any(s not in IMAGE_STAGES for s in self.stages):
            return list(self.samples)
        return [topk_probes(min(self.config["rank"], n)) for n in self.ns]

    def memory_markdown(self) -> str:
        """The peak-memory table: traced / RSS peak in MiB per stage and n, and the exponent
        fitted to the traced peaks."""
        if not self.traced:
            return ""
        head = ["n"] + [f"{s} traced / rss (MiB)" for s in self.stages]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
        peaks = {s: (self.peak("traced", s), self.peak("rss", s)) for s in self.stages}
        for i, n in enumerate(self.ns):
            cells = [str(n)] + [f"{_fmt_mib(t[i])} / {_fmt_mib(r[i])}" for t, r in peaks.values()]
            lines.append("| " + " | ".join(cells) + " |")
        row_p, row_e = ["**p** fitted (traced)"], ["p expected"]
        for s in self.stages:
            fit = self.memory_exponents.get(s)
            row_p.append("—" if fit is None else f"**{fit['p']:.2f}**")
            row_e.append(f"{EXPECTED_MEMORY_EXPONENT[s]:g}")
        for r in (row_p, row_e):
            lines.append("| " + " | ".join(r) + " |")
        return "\n".join(lines) + "\n"

    def report(self) -> str:
        """The whole of ``bench.md``."""
        c = self.config
        return (
            "# fastinv scaling benchmark\n\n"
            f"Median wall-clock seconds of {c['repeats']} runs after one warm-up per stage; "
            f"device `{self.device}`; "
            + (
                f"N = {c['samples_per_n']}·n rows of data; rsvd rank k = {c['k']} (capped at "
                f"n/4), n_iter = {c['n_iter']}; "
                if any(s not in IMAGE_STAGES for s in self.stages)
                else ""
            )
            + "the exponent p of "
            f"t ≈ c·n^p is the least-squares slope on log-log axes over the "
            f"{c['fit_points']} largest n.\n\n"
            + self.to_markdown()
            + self._image_note()
            + self._memory_section()
            + "\nAt small n fixed costs (Python, thread start-up, cache-resident data) dominate, "
            "so the fitted p approaches the expected one only over the largest sizes: fit over "
            "n ≥ 1024 (`--max-n 4096`) for the asymptotic exponents.\n"
            + f"\nMachine: {machine_summary(self.machine)}\n\n"
            f"Total wall time of the run (warm-ups and data included): {self.wall_s:.1f} s.\n"
        )

    def _image_note(self) -> str:
        if not any(s in IMAGE_STAGES for s in self.stages):
            return ""
        c = self.config
        return (
            f"\nLarge-n stages ({', '.join(s for s in self.stages if s in IMAGE_STAGES)}): "
            f"H x H images (n = H²), periodic blur2d σ = {BLUR_SIGMA:g} px through FFTs, grf "
            f"prior, 1 % noise, k = {c['rank']} (capped at n), N_k = {c['image_probes']} "
            f"pairs at the largest n (topk_probes(k): fixed once k is), {IMAGE_TEST_PAIRS} "
            "test pairs; CPU only.\n"
        )

    def _memory_section(self) -> str:
        table = self.memory_markdown()
        if not table:
            return ""
        return (
            "\n## Peak memory\n\nMeasured in the timed calls, largest over the repeats. "
            "*traced*: tracemalloc's peak during the call, above what was allocated before it "
            "(NumPy and Python allocations; torch's CPU tensors are not traced). *rss*: the "
            f"process's peak resident set during the call ({self.config.get('rss')}), "
            "interpreter and prepared inputs included. The exponent is fitted to the traced "
            "peaks over the same sizes as the times.\n\n" + table
        )


def _fmt_mib(b: int | None) -> str:
    if b is None:
        return "—"
    mib = b / 2**20
    return f"{mib:.0f}" if mib >= 10 else f"{mib:.2f}"


def _fmt_s(t: float) -> str:
    if t >= 100:
        return f"{t:.0f}"
    if t >= 10:
        return f"{t:.1f}"
    if t >= 0.01:
        return f"{t:.3f}"
    return f"{t:.2e}"


# ------------------------------------------------------------------------------------------
# the stages


class _Timer:
    """Wall-clock timing of one call, synchronising CUDA when the call used it."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        if cuda:
            import torch

            self._sync = torch.cuda.synchronize
        else:
            self._sync = None

    def __call__(self, fn: Callable[[], Any]) -> float:
        return self.measure(fn)[0]

    def measure(self, fn: Callable[[], Any]) -> tuple[float, int, int]:
        """(seconds, traced peak bytes, peak RSS bytes) of one call of ``fn``."""
        if self._sync is not None:
            self._sync()
        probe = _MemoryProbe()
        clock = Stopwatch()
        fn()
        if self._sync is not None:
            self._sync()
        seconds = clock.seconds
        traced, rss = probe.stop()
        return seconds, traced, rss


def _reset_peak_rss() -> bool:
    """Reset the process's VmHWM to its current RSS (Linux ≥ 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss(hwm: bool) -> int:
    """VmHWM (bytes) when it was reset, else ru_maxrss (the peak since the process started)."""
    if hwm:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:  # pragma: no cover - /proc vanished
            pass
    scale = 1 if platform.system() == "Darwin" else 1024  # bytes on macOS, KiB on Linux
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def rss_method() -> str:
    """How the peak RSS of a call is read on this machine (for the report)."""
    if _reset_peak_rss():
        return "VmHWM, reset through /proc/self/clear_refs before each call"
    return "ru_maxrss: the process's peak since it started, not per call"


class _MemoryProbe:
    """tracemalloc's peak and the peak RSS from construction to :meth:`stop`."""

    def __init__(self) -> None:
        self.hwm = _reset_peak_rss()
        self.owner = not tracemalloc.is_tracing()
        if self.owner:
            tracemalloc.start()
        else:
            tracemalloc.reset_peak()
        self.base = tracemalloc.get_traced_memory()[0]

    def stop(self) -> tuple[int, int]:
        peak = tracemalloc.get_traced_memory()[1]
        if self.owner:
            tracemalloc.stop()
        return max(0, peak - self.base), _peak_rss(self.hwm)


def tikhonov_filter_model(op, lam: float = FILTER_LAMBDA) -> Callable[[np.ndarray], np.ndarray]:
    """The Tikhonov inverse ``x̂ = V diag(σ / (σ² + λ)) Uᵀ y`` of ``op`` through its spectral
    basis (FFTs for blur2d): a batch (b, n) of measurements to (b, n) reconstructions, never
    an n x n matrix.

    Raises
    ------
    FastinvError
        When ``op`` has no spectral basis (a dense or unstructured operator).
    """
    basis = op.spectral_basis
    if basis is None:
        raise FastinvError(
            f"the filter model needs an operator with a spectral basis (blur2d, ...), got {op!r}"
        )
    gain = basis.sigma / (basis.sigma**2 + lam)

    def model(Y: np.ndarray) -> np.ndarray:
        return basis.synth_right(basis.left(Y) * gain)

    return model


def image_bench_bytes(n: int, *, rank: int, cnn: bool = False) -> int:
    """Bytes of the large-n stages at size n: the N_k probe pairs and the test pairs (held,
    plus one more set of probes from ``blur_generate``), the top-k audit's own memory
    (:func:`fastinv.auditing.topk.topk_bytes`), the model's outputs on a chunk, and the
    interpreter; with ``cnn``, the network's activations on a chunk of 256 rows (width 8)."""
    from fastinv.auditing.topk import topk_bytes

    k = min(rank, n)
    N = topk_probes(k)
    data = 8 * n * 2 * (2 * N + IMAGE_TEST_PAIRS)
    acts = 4 * 256 * n * 8 * 4 if cnn else 0
    return int(data + topk_bytes(n, k, N, IMAGE_TEST_PAIRS) + acts + BASE_BYTES)


class _Images:
    """The blur2d problem on H x H images (n = H²) of the large-n stages."""

    def __init__(self, n: int, *, rank: int, seed: int) -> None:
        from fastinv.problem.operators import make_operator

        self.n, self.H, self.seed = n, math.isqrt(n), seed
        self.k = min(rank, n)
        self.N = topk_probes(self.k)
        self.op = make_operator("blur2d", n=n, sigma=BLUR_SIGMA, boundary="periodic")
        self._probes = None
        self._test = None

    def draw(self, n_samples: int, seed: int):
        from fastinv.problem.data import generate

        return generate(self.op, n_samples=n_samples, prior="grf", noise=0.01, seed=seed)

    def probes(self):
        """The N_k (X, Y) pairs (those of ``blur_generate`` when it ran first)."""
        if self._probes is None:
            self._probes = self.draw(self.N, self.seed)
        return self._probes

    def test(self):
        if self._test is None:
            self._test = self.draw(IMAGE_TEST_PAIRS, self.seed + 1)
        return self._test

    def generate_call(self):
        def run():
            pairs = self.draw(self.N, self.seed)
            if self._probes is None:  # the same pairs: reused by the audits
                self._probes = pairs

        return run

    def audit_call(self, model, n_jacobian: int):
        from fastinv.auditing.core import audit

        X, Y = self.probes()
        Xt, Yt = self.test()
        return lambda: audit(
            model, self.op, probes=Y, test=(Yt, Xt), rank=self.k, n_jacobian=n_jacobian,
            seed=self.seed,
        )  # fmt: skip

    def cnn(self):
        from fastinv.nets.models import make_model

        return make_model(
            "cnn", n=self.n, image_shape=(self.H, self.H), width=8, depth=2, seed=self.seed
        )


class _Problem:
    """The data of one size n, built once (on first use) and shared by the stages."""

    def __init__(
        self, n: int, N: int, *, seed: int, device: str, k: int, n_iter: int, rank: int = 256
    ):
        self.n, self.N, self.seed, self.device = n, N, seed, device
        self.k = max(1, min(k, n // 4))
        self.n_iter = n_iter
        self.rank = rank
        self.cuda = device != "cpu"
        self._A = None
        self._images = None
        self._data = None
        self._torch = {}

    @property
    def A(self) -> np.ndarray:
        """The dense Gaussian operator of the dense stages (built on first use)."""
        if self._A is None:
            rng = np.random.default_rng(self.seed)
            self._A = rng.standard_normal((self.n, self.n)) / math.sqrt(self.n)
        return self._A

    def images(self) -> _Images:
        if self._images is None:
            self._images = _Images(self.n, rank=self.rank, seed=self.seed)
        return self._images

    def _blur_generate(self):
        return self.images().generate_call()

    def _blur_topk(self):
        im = self.images()
        return lambda: im.op.svd_topk(im.k)

    def _topk_audit(self):
        im = self.images()
        return im.audit_call(tikhonov_filter_model(im.op), n_jacobian=0)

    def _topk_audit_cnn(self):
        im = self.images()
        return im.audit_call(im.cnn(), n_jacobian=2)

    def data(self):
        if self._data is None:
            from fastinv.problem.data import generate

            self._data = generate(self.A, n_samples=self.N, noise=0.01, seed=self.seed)
        return self._data

    def tensor(self, key: str, arr: np.ndarray):
        if key not in self._torch:
            import torch

            self._torch[key] = torch.from_numpy(arr).to(self.device)
        return self._torch[key]

    def call(self, stage: str) -> Callable[[], Any]:
        """A zero-argument callable that runs ``stage`` once (data prepared beforehand)."""
        if stage not in STAGES:  # pragma: no cover - validated in scaling()
            raise AssertionError(stage)
        return getattr(self, f"_{stage}")()

    def _generate(self):
        from fastinv.problem.data import generate
        from fastinv.problem.priors import make_prior

        prior = make_prior("smooth", self.n)
        return lambda: generate(
            self.A, n_samples=self.N, prior=prior, noise=0.01, seed=self.seed + 1
        )

    def _fit_linear(self):
        from fastinv.linalg.surrogate import fit_linear

        X, Y = self.data()
        if self.cuda:
            Yt, Xt = self.tensor("Y", Y), self.tensor("X", X)
            return lambda: fit_linear(Yt, Xt)
        return lambda: fit_linear(Y, X)

    def _rsvd(self):
        rs = rsvd_module().rsvd
        M = self.tensor("A", self.A) if self.cuda else self.A
        return lambda: rs(M, self.k, n_iter=self.n_iter, seed=self.seed)

    def _svd_full(self):
        if self.cuda:
            import torch

            M = self.tensor("A", self.A)
            return lambda: torch.linalg.svd(M, full_matrices=False)
        import scipy.linalg

        return lambda: scipy.linalg.svd(
            self.A, full_matrices=False, lapack_driver="gesdd", check_finite=False
        )

    def _audit(self):
        from fastinv.auditing.core import audit
        from fastinv.linalg.surrogate import fit_linear
        from fastinv.problem.operators import Operator
        from fastinv.problem.priors import make_prior

        X, Y = self.data()
        fit = fit_linear(Y, X)
        C, b = fit.C, fit.b
        m = min(self.N, 1000)
        prior = make_prior("smooth", self.n)

        def model(Yb):
            return Yb @ C.T + b

        def run():
            op = Operator(self.A, name="gaussian")  # fresh: its SVD is part of the audit
            return audit(
                model,
                op,
                probes=Y,
                test=(Y[:m], X[:m]),
                prior=prior,
                noise={"level": 0.01, "type": "relative"},
                seed=self.seed,
            )

        return run


def rsvd_module():
    """The randomized-SVD module (``fastinv.linalg.randomized``; ``fastinv.rsvd`` on old trees)."""
    import importlib

    try:
        return importlib.import_module("fastinv.linalg.randomized")
    except ModuleNotFoundError:
        return importlib.import_module("fastinv.rsvd")


def _check_device(device: str) -> str:
    """ "cpu" or "cuda" for ``device`` ("auto": cuda when available)."""
    device = check_choice(device, "device", ("cpu", "cuda", "auto"), normalize=False)
    if device == "cpu" or not cuda_available():
        if device == "cuda":
            raise FastinvError(
                "device='cuda' was asked for but no CUDA device is available; use 'cpu'"
            )
        return "cpu"
    return "cuda"


def _check_stages(stages: Sequence[str]) -> list[str]:
    stages = list(dict.fromkeys(stages))
    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise FastinvError(
            f"unknown stage(s) {', '.join(map(repr, bad)) or '(none given)'}; choose from "
            f"{', '.join(STAGES)}"
        )
    return stages


def _check_square(ns: list[int], stages: list[str]) -> None:
    """The large-n stages need n = H·H (square images)."""
    image = [s for s in stages if s in IMAGE_STAGES]
    bad = [n for n in ns if math.isqrt(n) ** 2 != n]
    if image and bad:
        near = ", ".join(str(math.isqrt(n) ** 2) for n in bad)
        raise FastinvError(
            f"sizes n of the stages {', '.join(image)} must be perfect squares (H x H images), "
            f"got {bad!r}; use e.g. {near}"
        )


def _check_stage_memory(ns: list[int], stages: list[str], samples_per_n: int, rank: int):
    """Refuse up front when the largest size of the dense or the large-n stages won't fit."""
    dense = [s for s in stages if s not in IMAGE_STAGES]
    if dense:
        check_bench_memory(ns, dense, samples_per_n)  # planned: nothing is built yet
    if any(s in IMAGE_STAGES for s in stages):
        n = max(ns)
        check_memory(
            image_bench_bytes(n, rank=rank, cnn="topk_audit_cnn" in stages),
            f"the large-n stages at n = {n} with k = {min(rank, n)}",
            suggestion="lower --max-n or --ns, or give a smaller --rank",
        )


def _check_sizes(ns: Sequence[int]) -> list[int]:
    try:
        ns = sorted({int(n) for n in ns})
    except (TypeError, ValueError):
        raise FastinvError(f"ns must be integers, got {ns!r}") from None
    if not ns or ns[0] < 8:
        raise FastinvError(f"sizes n must be at least 8, got {ns}")
    return ns


def scaling(
    ns: Sequence[int] = DEFAULT_NS,
    stages: Sequence[str] = DEFAULT_STAGES,
    *,
    repeats: int = 3,
    samples_per_n: int = 4,
    out: str | os.PathLike | None = None,
    device: str = "cpu",
    k: int = 64,
    n_iter: int = 4,
    rank: int = 256,
    fit_points: int = 3,
    seed: int = 0,
    warmup: bool = True,
    plot: bool = True,
    log: Callable[[str], None] | None = None,
    force: bool = False,
) -> ScalingResult:
    """Time each stage over the sizes ``ns`` and fit the growth exponents.

    Parameters
    ----------
    ns : sequence of int
        Sizes n (each at least 8; sorted and de-duplicated).
    stages : sequence of str
        Any of ``STAGES`` ("generate", "fit_linear", "rsvd", "svd_full", "audit" and the
        large-n ``IMAGE_STAGES`` "blur_generate", "blur_topk", "topk_audit",
        "topk_audit_cnn", which need every n to be a perfect square).
    repeats : int
        Timed runs per stage and size; the median is reported.
    samples_per_n : int
        N = samples_per_n · n rows of data for ``generate``, ``fit_linear`` and ``audit``.
    out : path, optional
        Folder for ``bench.md``, ``scaling.png``, ``scaling.json`` and ``manifest.json``,
        published whole when the timings are done (:class:`fastinv.io.OutFolder`; checked and
        locked before any timing). None: nothing is written.
    device : {"cpu", "cuda", "auto"}
        "cuda" runs ``fit_linear``, ``rsvd`` and ``svd_full`` through torch on the GPU
        (``generate`` and ``audit`` stay on the CPU); "auto" picks cuda when available.
    k : int
        Rank of the ``rsvd`` stage (capped at n // 4).
    n_iter : int
        Power iterations of the ``rsvd`` stage (2·n_iter + 2 passes).
    rank : int
        k of the large-n stages (capped at n); they use N_k =
        :func:`fastinv.workflows.memory.topk_probes` (k) pairs at every n.
    fit_points : int
        The exponent is fitted over this many of the largest sizes (at least 2).
    seed : int
        Seeds the operators and the data.
    warmup : bool
        One untimed run of every stage at the smallest size before any timing.
    plot : bool
        Write ``scaling.png`` (needs matplotlib) when ``out`` is given.
    log : callable, optional
        Called with one line of progress per timed stage and size.
    force : bool
        Replace an ``out`` folder that already holds (fastinv's) files.

    Returns
    -------
    ScalingResult

    Raises
    ------
    FastinvError
        Unknown stage, bad sizes or counts, a non-square n for a large-n stage, a run that
        will not fit in memory, ``device="cuda"`` without a CUDA device, or an ``out`` that
        holds files without ``force``, is a file or cannot be written.
    """
    clock = Stopwatch()
    say = log or (lambda msg: None)
    stages = _check_stages(stages)
    ns = _check_sizes(ns)
    for name, val, lo in (
        ("repeats", repeats, 1),
        ("samples_per_n", samples_per_n, 1),
        ("k", k, 1),
        ("n_iter", n_iter, 0),
        ("rank", rank, 1),
        ("fit_points", fit_points, 2),
    ):
        check_int(val, name, lo=lo)
    seed = check_seed(seed)
    _check_square(ns, stages)
    dev = _check_device(device)
    _check_stage_memory(ns, stages, samples_per_n, rank)
    config = {
        "ns": ns,
        "stages": stages,
        "repeats": int(repeats),
        "samples_per_n": int(samples_per_n),
        "device": dev,
        "k": int(k),
        "n_iter": int(n_iter),
        "rank": int(rank),
        "image_probes": topk_probes(min(rank, ns[-1])),
        "fit_points": int(fit_points),
        "seed": int(seed),
        "warmup": bool(warmup),
        "rss": rss_method(),
    }
    if out is None:
        return _run(config, say, clock)
    with OutFolder(out, force=force, command="bench") as folder:
        res = _run(config, say, clock)
        _write(res, folder, plot=plot)
    return res


def _run(config: dict, say: Callable[[str], None], clock: Stopwatch) -> ScalingResult:
    """Time the stages of ``config`` (the checked arguments of :func:`scaling`)."""
    machine = machine_info()
    ns, stages, dev, seed = config["ns"], config["stages"], config["device"], config["seed"]

    def problem(n: int) -> _Problem:
        N = config["samples_per_n"] * n
        return _Problem(
            n, N, seed=seed, device=dev, k=config["k"], n_iter=config["n_iter"],
            rank=config["rank"],
        )  # fmt: skip

    if config["warmup"]:
        _warm_up(problem(min(ns[0], 64)), stages, say)
    timer = _Timer(dev == "cuda")
    times, memory = _time_stages(ns, stages, problem, timer, config["repeats"], say)
    res = _result(times, config, machine, memory)
    res.wall_s = clock.seconds
    return res


def _warm_up(prob: _Problem, stages: list[str], say: Callable[[str], None]) -> None:
    """One untimed run of every stage (Numba JIT, BLAS thread pools)."""
    for s in stages:
        prob.call(s)()
    say(f"warmed up every stage at n = {prob.n}")


def _time_stages(ns, stages, problem, timer: _Timer, repeats: int, say) -> tuple[dict, dict]:
    """``times[stage][i]``: the ``repeats`` times of ``stage`` at ``ns[i]``; ``memory`` holds
    the traced and RSS peaks (bytes) of the same calls, ``memory["traced"][stage][i]``."""
    times: dict[str, list[list[float]]] = {s: [] for s in stages}
    memory: dict[str, dict[str, list[list[int]]]] = {
        "traced": {s: [] for s in stages},
        "rss": {s: [] for s in stages},
    }
    for n in ns:
        prob = problem(n)
        for s in stages:
            fn = prob.call(s)
            runs = [timer.measure(fn) for _ in range(repeats)]
            times[s].append([r[0] for r in runs])
            memory["traced"][s].append([r[1] for r in runs])
            memory["rss"][s].append([r[2] for r in runs])
            say(
                f"n = {n:>6}  {s:<14} median {statistics.median(times[s][-1]):.4g} s, peak "
                f"{max(r[1] for r in runs) / 2**20:.0f} MiB traced, "
                f"{max(r[2] for r in runs) / 2**20:.0f} MiB RSS"
            )
        del prob
    return times, memory


def _result(times: dict, config: dict, machine: dict, memory: dict) -> ScalingResult:
    """The medians and fits of ``times`` and of the traced memory peaks, with the run's
    configuration."""
    ns, stages, dev = config["ns"], config["stages"], config["device"]
    medians = {s: [statistics.median(r) for r in times[s]] for s in stages}
    traced_peaks = {s: [max(r) for r in memory["traced"][s]] for s in stages}
    return ScalingResult(
        ns=ns,
        samples=[config["samples_per_n"] * n for n in ns],
        stages=stages,
        times=times,
        medians=medians,
        exponents={s: fit_exponent(ns, medians[s], points=config["fit_points"]) for s in stages},
        device=dev,
        stage_devices={s: ("cpu" if s in _CPU_ONLY else dev) for s in stages},
        config=config,
        machine=machine,
        traced=memory["traced"],
        rss=memory["rss"],
        memory_exponents={
            s: fit_exponent(ns, traced_peaks[s], points=config["fit_points"]) for s in stages
        },
    )


def _write(res: ScalingResult, folder: OutFolder, *, plot: bool) -> None:
    """bench.md, scaling.json and scaling.png, published whole; ``res.files`` names the
    published files."""
    from fastinv.io import write_json, write_text

    out, work = folder.given, folder.work
    if plot:
        from fastinv.report.plots import plot_scaling

        plot_scaling(
            work / "scaling.png",
            res.ns,
            {s: res.medians[s] for s in res.stages},
            res.exponents,
            title=f"fastinv scaling ({res.device}; N = {res.config['samples_per_n']}n)",
        )
        res.files["scaling.png"] = str(out / "scaling.png")
    res.files["bench.md"] = str(out / "bench.md")
    res.files["scaling.json"] = str(out / "scaling.json")
    write_text(work / "bench.md", res.report())
    write_json(work / "scaling.json", res.to_dict())
    folder.publish()
