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
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastinv._device import cuda_available
from fastinv._progress import Stopwatch
from fastinv._validation import check_choice, check_int, check_seed
from fastinv.errors import FastinvError
from fastinv.io import OutFolder
from fastinv.workflows.memory import check_bench_memory

__all__ = [
    "DEFAULT_NS",
    "DEFAULT_STAGES",
    "EXPECTED_EXPONENT",
    "STAGES",
    "ScalingResult",
    "fit_exponent",
    "machine_info",
    "machine_summary",
    "rsvd_module",
    "scaling",
]

STAGES = ("generate", "fit_linear", "rsvd", "svd_full", "audit")
DEFAULT_STAGES = ("generate", "fit_linear", "rsvd", "svd_full")
DEFAULT_NS = (256, 512, 1024, 2048, 4096)
#: growth exponents expected from the operation counts (N ∝ n, fixed rsvd rank)
EXPECTED_EXPONENT = {"generate": 2.0, "fit_linear": 3.0, "rsvd": 2.0, "svd_full": 3.0, "audit": 3.0}
#: stages that have no CUDA path and run on the CPU under device="cuda"
_CPU_ONLY = ("generate", "audit")


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
        for i, (n, N) in enumerate(zip(self.ns, self.samples, strict=True)):
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

    def report(self) -> str:
        """The whole of ``bench.md``."""
        c = self.config
        return (
            "# fastinv scaling benchmark\n\n"
            f"Median wall-clock seconds of {c['repeats']} runs after one warm-up per stage; "
            f"device `{self.device}`; N = {c['samples_per_n']}·n rows of data; rsvd rank "
            f"k = {c['k']} (capped at n/4), n_iter = {c['n_iter']}; the exponent p of "
            f"t ≈ c·n^p is the least-squares slope on log-log axes over the "
            f"{c['fit_points']} largest n.\n\n"
            + self.to_markdown()
            + "\nAt small n fixed costs (Python, thread start-up, cache-resident data) dominate, "
            "so the fitted p approaches the expected one only over the largest sizes: fit over "
            "n ≥ 1024 (`--max-n 4096`) for the asymptotic exponents.\n"
            + f"\nMachine: {machine_summary(self.machine)}\n\n"
            f"Total wall time of the run (warm-ups and data included): {self.wall_s:.1f} s.\n"
        )


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
        if self._sync is not None:
            self._sync()
        clock = Stopwatch()
        fn()
        if self._sync is not None:
            self._sync()
        return clock.seconds


class _Problem:
    """The data of one size n, built once and shared by the stages."""

    def __init__(self, n: int, N: int, *, seed: int, device: str, k: int, n_iter: int):
        self.n, self.N, self.seed, self.device = n, N, seed, device
        self.k = max(1, min(k, n // 4))
        self.n_iter = n_iter
        self.cuda = device != "cpu"
        rng = np.random.default_rng(seed)
        self.A = rng.standard_normal((n, n)) / math.sqrt(n)
        self._data = None
        self._torch = {}

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
        Any of ``STAGES`` ("generate", "fit_linear", "rsvd", "svd_full", "audit").
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
        Unknown stage, bad sizes or counts, ``device="cuda"`` without a CUDA device, or an
        ``out`` that holds files without ``force``, is a file or cannot be written.
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
        ("fit_points", fit_points, 2),
    ):
        check_int(val, name, lo=lo)
    seed = check_seed(seed)
    dev = _check_device(device)
    check_bench_memory(ns, stages, samples_per_n)  # planned: nothing is built yet
    config = {
        "ns": ns,
        "stages": stages,
        "repeats": int(repeats),
        "samples_per_n": int(samples_per_n),
        "device": dev,
        "k": int(k),
        "n_iter": int(n_iter),
        "fit_points": int(fit_points),
        "seed": int(seed),
        "warmup": bool(warmup),
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
        return _Problem(n, N, seed=seed, device=dev, k=config["k"], n_iter=config["n_iter"])

    if config["warmup"]:
        _warm_up(problem(min(ns[0], 64)), stages, say)
    timer = _Timer(dev == "cuda")
    times = _time_stages(ns, stages, problem, timer, config["repeats"], say)
    res = _result(times, config, machine)
    res.wall_s = clock.seconds
    return res


def _warm_up(prob: _Problem, stages: list[str], say: Callable[[str], None]) -> None:
    """One untimed run of every stage (Numba JIT, BLAS thread pools)."""
    for s in stages:
        prob.call(s)()
    say(f"warmed up every stage at n = {prob.n}")


def _time_stages(ns, stages, problem, timer: _Timer, repeats: int, say) -> dict:
    """``times[stage][i]``: the ``repeats`` times of ``stage`` at ``ns[i]``."""
    times: dict[str, list[list[float]]] = {s: [] for s in stages}
    for n in ns:
        prob = problem(n)
        for s in stages:
            fn = prob.call(s)
            ts = [timer(fn) for _ in range(repeats)]
            times[s].append(ts)
            say(f"n = {n:>6}  {s:<10} median {statistics.median(ts):.4g} s")
        del prob
    return times


def _result(times: dict, config: dict, machine: dict) -> ScalingResult:
    """The medians and fits of ``times``, with the run's configuration."""
    ns, stages, dev = config["ns"], config["stages"], config["device"]
    medians = {s: [statistics.median(r) for r in times[s]] for s in stages}
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
