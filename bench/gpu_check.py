"""Check and time every CUDA path of fastinv in one run, and write the results.

Made for a machine with a lent GPU (H100/H200, no network), where device time is scarce: run
it once, from the repository root::

    python3 -m pip install --no-deps --no-build-isolation -e . &&
        python3 bench/gpu_check.py --out $OUT

(one shell command line: ``... -e . && python3 bench/gpu_check.py --out $OUT``). It takes
about 2 minutes plus the device tests (at most 4) at the default ``--n 8192``, and stops
starting new work after ``--budget`` seconds (480). Every part runs in its own try/except (an
error is recorded and the run goes on), has a time budget (steps after it is spent are
recorded as skipped), and ``results.json`` and ``RESULTS_GPU.md`` are rewritten in the output
folder after every part. The exit status is 0 even when parts failed (the failures are in the
report), and 2 when ``--device cuda`` finds no CUDA device.

Parts, in the order they run: environment (TF32 is switched off for all timings);
``fit_linear`` at n against its bare products (gram, cross product, Cholesky, solve) and
``torch.linalg.lstsq``; ``rsvd`` (k = 128, n_iter 2 and 7, hmt and block Krylov) against its
``2q + 2`` bare products and ``torch.svd_lowrank``; ``fastinv.workflows.bench.scaling`` on the
device; a tiny training run through ``fastinv.workflows.run.run_experiment`` on the
device; last,
the CUDA/device tests of the test suite in a subprocess (skipped with ``--quick``), so that
the timings are on disk first and a crashed CUDA context cannot spoil the tests.

Smoke test without a GPU: ``python3 bench/gpu_check.py --device cpu --n 256 --quick``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5  # fastinv time / bare-products bound
BUDGET_S = {
    "environment": 30,
    "tests": 240,
    "fit_linear": 90,
    "rsvd": 90,
    "scaling": 120,
    "train": 60,
    "operators": 60,
}
NO_CUDA = (
    "error: no CUDA device (torch.cuda.is_available() is False); run with --device cpu "
    "for a smoke test"
)


class OverBudget(Exception):
    pass


class Ctx:
    """What the parts share: arguments, torch, the device, the part's deadline."""

    def __init__(self, args, torch):
        self.args, self.torch = args, torch
        self.dev = torch.device(args.device)
        self.cuda = self.dev.type == "cuda"
        self.deadline = math.inf

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.dev)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def timeit(self, fn, reps: int = 3) -> dict:
        """Median of ``reps`` timed calls after one warm-up, synchronised around each."""
        self.sync()
        fn()
        ts = []
        for _ in range(reps):
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            ts.append(time.perf_counter() - t0)
        return {"median_s": statistics.median(ts), "times_s": ts}


def step(ctx: Ctx, rec: dict, key: str, fn):
    """rec["steps"][key] = fn() (or its error, or a skip once the part's budget is spent)."""
    steps = rec.setdefault("steps", {})
    if ctx.left() <= 0:
        steps[key] = {"skipped": "the part's time budget was spent"}
        return None
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the run goes on
        steps[key] = {
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc()[-3000:],
        }
        return None
    steps[key] = out if isinstance(out, dict) else {"value": out}
    return out


def med(rec: dict, key: str):
    return rec.get("steps", {}).get(key, {}).get("median_s")


def ratio(a, b):
    return a / b if a is not None and b else None


# ---------------------------------------------------------------------------- parts


def part_environment(ctx: Ctx, rec: dict) -> None:
    torch = ctx.torch
    import numpy
    import scipy

    rec["date_utc"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    rec["python"] = platform.python_version()
    rec["host"] = platform.node()
    rec["cpu_count"] = os.cpu_count()
    rec["torch"] = torch.__version__
    rec["torch_cuda"] = torch.version.cuda
    rec["numpy"] = numpy.__version__
    rec["scipy"] = scipy.__version__
    for mod in ("numba", "fastinv"):
        try:
            rec[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001
            rec[mod] = f"unavailable: {exc}"
    rec["device"] = str(ctx.dev)
    rec["allow_tf32_before"] = bool(torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rec["allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    if ctx.cuda:
        p = torch.cuda.get_device_properties(ctx.dev)
        free, total = torch.cuda.mem_get_info(ctx.dev)
        rec["device_name"] = p.name
        rec["capability"] = f"{p.major}.{p.minor}"
        rec["memory_total_GiB"] = round(total / 2**30, 2)
        rec["memory_free_GiB"] = round(free / 2**30, 2)
    else:
        rec["device_name"] = f"CPU ({platform.processor() or platform.machine()})"
        rec["torch_threads"] = torch.get_num_threads()


def part_tests(ctx: Ctx, rec: dict) -> None:
    if ctx.args.quick:
        rec["status"] = "skipped"
        rec["reason"] = "--quick"
        return
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "tests/", "-k", "cuda or gpu or device"]
    rec["command"] = shlex.join(cmd)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    timeout = max(10.0, ctx.left())
    rec["timeout_s"] = round(timeout)
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        out, rec["returncode"] = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as exc:
        out = (
            (exc.stdout or b"").decode(errors="replace")
            if isinstance(exc.stdout, bytes)
            else (exc.stdout or "")
        )
        rec["returncode"] = None
        rec["error"] = f"pytest timed out after {timeout:.0f} s"
    lines = out.splitlines()
    summ = [ln for ln in lines if re.search(r"\d+ (passed|failed|skipped|error|deselected)", ln)]
    rec["summary"] = summ[-1].strip("= ") if summ else None
    rec["failures"] = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    rec["tail"] = lines[-60:]
    if rec["returncode"] not in (0, None) and "error" not in rec:
        rec["error"] = f"pytest exited {rec['returncode']}: {rec['summary']}"


def part_fit_linear(ctx: Ctx, rec: dict) -> None:
    import fastinv

    torch, dev, f64 = ctx.torch, ctx.dev, ctx.torch.float64
    n = ctx.args.n
    N = 2 * n
    rec.update(n=n, N=N, dtype="float64", target=TARGET)
    g = torch.Generator(device=dev).manual_seed(0)
    Y = torch.randn(N, n, generator=g, device=dev, dtype=f64) + 0.5
    B = torch.randn(n, n, generator=g, device=dev, dtype=f64) / math.sqrt(n)
    X = Y @ B.T + 0.01 * torch.randn(N, n, generator=g, device=dev, dtype=f64)
    del B
    hold: dict = {}

    def run_fit():
        hold["fit"] = fastinv.fit_linear(Y, X)

    step(ctx, rec, "fastinv", lambda: ctx.timeit(run_fit))
    ym, xm = Y.mean(0), X.mean(0)
    Yc, Xc = Y - ym, X - xm

    def bound(Yc, Xc, key):
        def f():
            L = torch.linalg.cholesky(Yc.T @ Yc)
            hold[key] = torch.cholesky_solve(Yc.T @ Xc, L)

        return f

    step(ctx, rec, "bound_fp64", lambda: ctx.timeit(bound(Yc, Xc, "W")))

    def accuracy():
        fit, W = hold["fit"], hold["W"]
        C = torch.from_numpy(fit.C).to(dev)
        b = torch.from_numpy(fit.b).to(dev)
        b_ref = xm - W.T @ ym
        return {
            "C_rel_diff": float(torch.linalg.norm(C - W.T) / torch.linalg.norm(W)),
            "b_rel_diff": float(torch.linalg.norm(b - b_ref) / torch.linalg.norm(b_ref)),
            "fit_method": fit.method,
            "fit_cond": fit.cond,
            "fit_r2": fit.r2,
        }

    acc = step(ctx, rec, "accuracy", accuracy)
    rec["C_rel_diff"] = acc["C_rel_diff"] if acc else None
    hold.pop("fit", None)

    def fp32():
        Yc32, Xc32 = Yc.float(), Xc.float()
        try:
            return ctx.timeit(bound(Yc32, Xc32, "W32"))
        finally:
            del Yc32, Xc32
            hold.pop("W32", None)

    step(ctx, rec, "bound_fp32", fp32)
    driver = "gels"  # the only CUDA driver; full-rank QR on the CPU too

    def peer():
        def f():
            hold["P"] = torch.linalg.lstsq(Yc, Xc, driver=driver).solution

        out = ctx.timeit(f)
        out["driver"] = driver
        out["rel_diff_vs_bound"] = float(
            torch.linalg.norm(hold["P"] - hold["W"]) / torch.linalg.norm(hold["W"])
        )
        return out

    step(ctx, rec, "peer_lstsq", peer)
    t_fit, t_bound = med(rec, "fastinv"), med(rec, "bound_fp64")
    rec["fit_over_bound"] = ratio(t_fit, t_bound)
    rec["peer_over_fit"] = ratio(med(rec, "peer_lstsq"), t_fit)
    rec["fp32_over_fp64_bound"] = ratio(med(rec, "bound_fp32"), t_bound)
    r = rec["fit_over_bound"]
    rec["met"] = None if r is None else r <= TARGET


def part_rsvd(ctx: Ctx, rec: dict) -> None:
    import numpy as np

    import fastinv

    torch, dev, f64 = ctx.torch, ctx.dev, ctx.torch.float64
    n = ctx.args.n if ctx.cuda and not ctx.args.quick else min(ctx.args.n, 1024)
    k = min(128, n // 4)
    l = k + 10
    rec.update(
        n=n, k=k, n_oversamples=10, l=l, dtype="float64", target=TARGET, spectrum="s_i = 1/i"
    )
    g = torch.Generator(device=dev).manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(n, n, generator=g, device=dev, dtype=f64))
    V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, device=dev, dtype=f64))
    s = 1.0 / torch.arange(1, n + 1, device=dev, dtype=f64)
    M = (U * s) @ V.T
    del U, V
    s_top = s[:k].cpu().numpy()
    X0 = torch.randn(n, l, generator=g, device=dev, dtype=f64)

    def err(sv):
        sv = sv.detach().cpu().numpy()[:k] if hasattr(sv, "detach") else sv[:k]
        return float(np.max(np.abs(sv - s_top) / s_top))

    def thin_ops():
        B = X0.clone()
        return {
            "lu_factor_s": ctx.timeit(lambda: torch.linalg.lu_factor(B))["median_s"],
            "qr_s": ctx.timeit(lambda: torch.linalg.qr(B))["median_s"],
            "svd_s": ctx.timeit(lambda: torch.linalg.svd(B, full_matrices=False))["median_s"],
            "note": f"one factorisation of an ({n}, {l}) block, for context",
        }

    step(ctx, rec, "thin_ops", thin_ops)
    rows = rec.setdefault("rows", [])
    hold: dict = {}
    for q in (2, 7):

        def prods(q=q):
            Xb = X0
            for _ in range(q + 1):
                Xb = M.T @ (M @ Xb)

        b = step(ctx, rec, f"bound_q{q}", lambda: ctx.timeit(prods))

        def peer(q=q):
            def f():
                torch.manual_seed(0)
                hold["peer"] = torch.svd_lowrank(M, q=l, niter=q)

            out = ctx.timeit(f)
            out["max_rel_err"] = err(hold["peer"][1])
            return out

        p = step(ctx, rec, f"peer_svd_lowrank_q{q}", peer)
        for method, est in (("hmt", True), ("hmt", False), ("block_krylov", False)):

            def run(q=q, method=method, est=est):
                def f():
                    hold["r"] = fastinv.rsvd(
                        M, k, n_oversamples=10, n_iter=q, method=method, seed=0, estimate_error=est
                    )

                out = ctx.timeit(f)
                r = hold["r"]
                out.update(
                    max_rel_err=err(r.s),
                    n_passes=r.n_passes,
                    method_used=r.method,
                    n_iter_used=r.n_iter,
                    notes=r.notes,
                    device=r.device,
                )
                return out

            o = step(ctx, rec, f"rsvd_q{q}_{method}_est{int(est)}", run) or {}
            t = o.get("median_s")
            t_b = b["median_s"] if b else None
            rr = ratio(t, t_b)
            rows.append(
                {
                    "n_iter": q,
                    "method": method,
                    "estimate_error": est,
                    "t_s": t,
                    "bound_s": t_b,
                    "t_over_bound": rr,
                    "met": None if rr is None else rr <= TARGET,
                    "peer_s": p["median_s"] if p else None,
                    "peer_over_t": ratio(p["median_s"] if p else None, t),
                    "err": o.get("max_rel_err"),
                    "err_peer": p["max_rel_err"] if p else None,
                    "n_passes": o.get("n_passes"),
                    "n_iter_used": o.get("n_iter_used"),
                }
            )


def part_scaling(ctx: Ctx, rec: dict) -> None:
    from fastinv.workflows.bench import scaling

    base = [128, 256] if ctx.args.quick else [1024, 2048, 4096, 8192]
    ns = [m for m in base if m <= max(ctx.args.n, base[0])]
    lines: list[str] = []

    def log(msg):
        lines.append(msg)
        if ctx.left() <= 0:
            raise OverBudget(f"time budget spent after: {msg}")

    # svd_full (a dense O(n^3) SVD) only below the largest n: it is the costliest stage
    runs = [
        ("fit_linear+rsvd", ["fit_linear", "rsvd"], ns),
        ("svd_full", ["svd_full"], ns[:-1] if len(ns) > 1 else ns),
    ]
    rec.update(ns=ns, samples_per_n=2, repeats=3, log=lines, tables={})
    for name, stages, sizes in runs:

        def run(stages=stages, sizes=sizes, name=name):
            res = scaling(
                sizes,
                stages,
                repeats=3,
                samples_per_n=2,
                device=ctx.dev.type,
                out=Path(ctx.args.out) / f"scaling_{name.replace('+', '_')}",
                plot=False,
                log=log,
            )
            rec["tables"][name] = res.to_markdown()
            d = res.to_dict()
            d.pop("machine", None)
            return d

        step(ctx, rec, name, run)


def part_train(ctx: Ctx, rec: dict) -> None:
    from fastinv.workflows.run import RunConfig, run_experiment

    cfg = RunConfig(
        operator="shaw",
        n=64,
        samples=512,
        test_samples=256,
        probes=256,
        epochs=2,
        device=str(ctx.dev),
        n_jacobian=4,
    )
    rec["config"] = cfg.to_dict()
    tmp = Path(tempfile.mkdtemp(prefix="fastinv_gpu_check_"))
    try:
        t0 = time.perf_counter()
        metrics = run_experiment(cfg, tmp / "run")
        rec["wall_s"] = time.perf_counter() - t0
        mfile = tmp / "run" / "metrics.json"
        rec["metrics_json_exists"] = mfile.exists()
        if mfile.exists():
            shutil.copy(mfile, Path(ctx.args.out) / "train_metrics.json")
        rec["model"] = metrics.get("model")
        rec["timings"] = metrics.get("timings")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def part_operators(ctx: Ctx, rec: dict) -> None:
    """The image operators' torch path on the device against their NumPy path on the host
    (the tool a user would otherwise call): apply and adjoint of a batch of 256x256 images."""
    import numpy as np

    from fastinv.problem.operators import make_operator

    torch = ctx.torch
    side = 256 if not ctx.args.quick else 32
    b = 64
    rec.update(image=f"{side}x{side}", batch=b, rows=[])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((b, side * side))
    for boundary in ("periodic", "reflective", "zero"):
        psf = "disk" if boundary == "zero" else "gaussian"

        def one(boundary=boundary, psf=psf):
            op = make_operator("blur2d", side * side, psf=psf, boundary=boundary)
            Xt = torch.as_tensor(X, dtype=torch.float32, device=ctx.dev)
            host = ctx.timeit(lambda: op.apply(X))
            dev = ctx.timeit(lambda: op.apply(Xt))
            ref = op.apply(X)
            err = float(np.abs(op.apply(Xt).cpu().double().numpy() - ref).max() / np.abs(ref).max())
            return {
                "structure": op.structure,
                "numpy_apply_s": host["median_s"],
                "torch_apply_s": dev["median_s"],
                "rel_err_float32": err,
            }

        r = step(ctx, rec, f"blur2d_{boundary}", one)
        if r:
            rec["rows"].append({"boundary": boundary, **r})


PARTS = [
    ("environment", part_environment),
    ("fit_linear", part_fit_linear),
    ("rsvd", part_rsvd),
    ("scaling", part_scaling),
    ("train", part_train),
    ("operators", part_operators),
    ("tests", part_tests),
]


# ---------------------------------------------------------------------------- output


def clean(x):
    """JSON-ready: numpy scalars to Python, non-finite floats to strings."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            x = x.item()
        except (ValueError, TypeError):
            return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.{digits - 1}e}"
    return str(x)


def met(x) -> str:
    return "—" if x is None else ("met" if x else "**not met**")


def q_txt(r: dict) -> str:
    used = r.get("n_iter_used")
    return str(r["n_iter"]) + ("" if used in (None, r["n_iter"]) else f" (ran {used})")


def table(head: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return out + ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]


def step_errors(rec: dict) -> list[str]:
    return [
        f"- step `{k}`: {v.get('error') or v.get('skipped')}"
        for k, v in rec.get("steps", {}).items()
        if "error" in v or "skipped" in v
    ]


def _md_environment(rec: dict) -> list[str]:
    L: list[str] = []
    keys = [
        "date_utc",
        "device_name",
        "capability",
        "memory_total_GiB",
        "memory_free_GiB",
        "torch",
        "torch_cuda",
        "numpy",
        "scipy",
        "numba",
        "fastinv",
        "python",
        "allow_tf32_before",
        "allow_tf32",
        "cpu_count",
    ]
    L += table(["key", "value"], [[k, rec.get(k)] for k in keys if k in rec])
    return L


def _md_tests(rec: dict) -> list[str]:
    L: list[str] = []
    L += [f"Summary: `{rec.get('summary') or rec.get('reason')}`", ""]
    L += [f"- {f}" for f in rec.get("failures", [])]
    if rec.get("failures") or rec.get("error"):
        L += ["", "```", *rec.get("tail", [])[-25:], "```"]
    return L


def _md_fit_linear(rec: dict) -> list[str]:
    L: list[str] = []
    rows = [
        [
            "fastinv.fit_linear",
            med(rec, "fastinv"),
            rec.get("fit_over_bound"),
            f"≤ {TARGET}",
            met(rec.get("met")),
        ],
        [
            "bound fp64 (gram, cross, cholesky, cholesky_solve)",
            med(rec, "bound_fp64"),
            1.0,
            "",
            "",
        ],
        [
            "bound fp32 (same ops)",
            med(rec, "bound_fp32"),
            rec.get("fp32_over_fp64_bound"),
            "",
            "",
        ],
        [
            "peer torch.linalg.lstsq (gels)",
            med(rec, "peer_lstsq"),
            rec.get("peer_over_fit"),
            "(ratio: peer / fastinv)",
            "",
        ],
    ]
    L += [f"n = {rec.get('n')}, N = {rec.get('N')}, float64.", ""]
    L += table(["what", "time (s)", "ratio to bound", "target", "met"], rows)
    c = rec.get("C_rel_diff")
    L += [
        "",
        f"C rel. diff vs bound: {fmt(c)} (target < 1e-8: {met(None if c is None else c < 1e-8)}).",
    ]
    return L


def _md_rsvd(rec: dict) -> list[str]:
    L: list[str] = []
    L += [
        f"n = {rec.get('n')}, k = {rec.get('k')}, l = {rec.get('l')}, "
        f"{rec.get('spectrum')}, float64; err = max rel. error of the top-k σ.",
        "",
    ]
    L += table(
        [
            "q",
            "method",
            "err est",
            "t (s)",
            "bound (s)",
            "t/bound",
            "target",
            "met",
            "svd_lowrank (s)",
            "peer/t",
            "err",
            "err peer",
        ],
        [
            [
                q_txt(r),
                r["method"],
                r["estimate_error"],
                r["t_s"],
                r["bound_s"],
                r["t_over_bound"],
                f"≤ {TARGET}",
                met(r["met"]),
                r["peer_s"],
                r["peer_over_t"],
                r["err"],
                r["err_peer"],
            ]
            for r in rec.get("rows", [])
        ],
    )
    th = rec.get("steps", {}).get("thin_ops", {})
    if "qr_s" in th:
        L += [
            "",
            f"Thin factorisations of one ({rec['n']}, {rec['l']}) block: "
            f"lu_factor {fmt(th['lu_factor_s'])} s, qr {fmt(th['qr_s'])} s, "
            f"svd {fmt(th['svd_s'])} s.",
        ]
    return L


def _md_scaling(rec: dict) -> list[str]:
    L: list[str] = []
    for t_name, tab in rec.get("tables", {}).items():
        L += [f"`{t_name}` (N = 2n):", "", tab.rstrip(), ""]
    if step_errors(rec) and rec.get("log"):  # a run cut short: its progress lines
        L += ["```", *rec["log"], "```", ""]
    return L


def _md_train(rec: dict) -> list[str]:
    L: list[str] = []
    m = rec.get("model") or {}
    L += table(
        ["wall (s)", "metrics.json", "device", "epochs run", "test rel. error"],
        [
            [
                rec.get("wall_s"),
                rec.get("metrics_json_exists"),
                m.get("device"),
                m.get("epochs_run"),
                m.get("test_rel_error"),
            ]
        ],
    )
    return L


def _md_operators(rec: dict) -> list[str]:
    L = [
        f"blur2d on {rec.get('image')} images, a batch of {rec.get('batch')}: NumPy/SciPy on the "
        "host (float64, apply) against torch on the device (float32, apply).",
        "",
    ]
    rows = [
        [
            r["boundary"],
            r["structure"],
            r["numpy_apply_s"],
            r["torch_apply_s"],
            ratio(r["numpy_apply_s"], r["torch_apply_s"]),
            r["rel_err_float32"],
        ]
        for r in rec.get("rows", [])
    ]
    return L + table(
        ["boundary", "structure", "numpy apply (s)", "torch apply (s)", "ratio", "rel err"],
        rows,
    )


_MD_PARTS = {
    "environment": _md_environment,
    "tests": _md_tests,
    "fit_linear": _md_fit_linear,
    "rsvd": _md_rsvd,
    "scaling": _md_scaling,
    "train": _md_train,
    "operators": _md_operators,
}


def markdown(res: dict) -> str:
    env = res.get("environment", {})
    L = [
        "# fastinv GPU check",
        "",
        f"Machine: {env.get('device_name', '?')} ({env.get('memory_total_GiB', '?')} GiB), "
        f"torch {env.get('torch', '?')} (CUDA {env.get('torch_cuda')}), numpy "
        f"{env.get('numpy', '?')}, scipy {env.get('scipy', '?')}; device `{env.get('device')}`;"
        f" TF32 matmul {env.get('allow_tf32')}. Date: {env.get('date_utc', '?')}.",
        "",
        f"Command: `{res['meta']['command']}`. Times: median of 3 after one warm-up, seconds.",
        "",
    ]
    if env.get("device") == "cpu":
        L += ["**CPU smoke test**: timings and ratios say nothing about the GPU.", ""]
    for name, _ in PARTS:
        rec = res.get(name)
        if rec is None:
            continue
        L += [
            f"## {name}",
            "",
            f"Status: **{rec.get('status')}** ({fmt(rec.get('part_wall_s'))} s).",
        ]
        if rec.get("error"):
            L += ["", f"Error: `{str(rec['error']).splitlines()[-1][:300]}`"]
        if rec.get("reason"):
            L += ["", f"Skipped: {rec['reason']}."]
        L.append("")
        L += _MD_PARTS.get(name, lambda rec: [])(rec)
        L += step_errors(rec) and ["", *step_errors(rec)]
        L.append("")
    return "\n".join(L) + "\n"


def write(out: Path, res: dict) -> str:
    md = markdown(res)
    for fname, text in (
        ("results.json", json.dumps(clean(res), indent=2) + "\n"),
        ("RESULTS_GPU.md", md),
    ):
        tmp = out / (fname + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out / fname)
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        default=os.environ.get("OUT") or "./gpu_check_out",
        help="output folder (default: $OUT, else ./gpu_check_out)",
    )
    ap.add_argument("--n", type=int, default=8192, help="size of fit_linear and rsvd")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="skip the tests, small rsvd and scaling sizes (smoke test)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=480.0,
        help="seconds after which no new work starts (default 480)",
    )
    args = ap.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(args, torch)
    t_start = time.perf_counter()
    res: dict = {
        "meta": {
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "args": vars(args),
            "target_ratio": TARGET,
            "budgets_s": BUDGET_S,
        }
    }
    for name, fn in PARTS:
        rec: dict = {"status": "running"}
        res[name] = rec
        print(f"[gpu_check] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        ctx.deadline = min(t0 + BUDGET_S[name], t_start + args.budget)
        try:
            if ctx.left() <= 0 and name != "environment":
                rec["status"] = "skipped"
                rec["reason"] = f"the total budget of {args.budget:g} s was spent"
            else:
                fn(ctx, rec)
            if rec["status"] == "running":
                steps = rec.get("steps", {}).values()
                bad = any("error" in s or "skipped" in s for s in steps)
                rec["status"] = "error" if rec.get("error") else "partial" if bad else "ok"
        except Exception as exc:  # noqa: BLE001 - recorded, the next part runs
            rec["status"] = "error"
            rec["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            rec["traceback"] = traceback.format_exc()[-3000:]
        rec["part_wall_s"] = time.perf_counter() - t0
        if ctx.cuda:
            try:
                torch.cuda.empty_cache()
            except Exception as exc:  # noqa: BLE001 - e.g. a CUDA context lost to an error
                rec["empty_cache_error"] = str(exc)[:500]
        res["meta"]["wall_s"] = time.perf_counter() - t_start
        try:
            write(out, res)
        except Exception as exc:  # noqa: BLE001
            print(f"[gpu_check] could not write the results: {exc}", file=sys.stderr)
    print(write(out, res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
