"""The models of a sweep: their keys and seeds, training one to its checkpoints, evaluating each
checkpoint, and running many (serially, or in a process pool on the CPU; on a Dask cluster
:mod:`fastinv.workflows.sweep_cluster` uses the same per-model function and tracker).

The shared evaluation context (``ctx``) is built once by :mod:`fastinv.workflows.sweep`; it
holds plain arrays and :class:`Condition` objects so that spawned workers can unpickle it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastinv._progress import Stopwatch
from fastinv.errors import FastinvError
from fastinv.linalg.stats import relative_error

__all__ = [
    "SETTING_COLUMNS",
    "Condition",
    "ModelTracker",
    "derive_seed",
    "limit_threads",
    "model_key",
    "model_settings",
    "norm2",
    "ood_noise_level",
    "resid_fro",
    "run_model",
    "run_models",
    "try_run_model",
]

#: columns of a row that hold the model's settings
SETTING_COLUMNS = ("key", "model", "width", "depth", "samples", "noise", "seed", "epoch")


# --------------------------------------------------------------------------------------------
# keys and seeds


def derive_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (order matters)."""
    ss = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts] + [0x5EE9])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def model_key(width: int, depth: int, samples: int, noise: float, seed: int) -> str:
    """File-name-safe key of one model of the family."""
    return f"w{width}-d{depth}-N{samples}-nz{noise:g}-s{seed}"


def ood_noise_level(noise: float, ood_noise: float | None) -> float:
    """OOD noise level for a model trained at ``noise``: ``ood_noise``, else 2 × noise (0.01
    for noise-free training)."""
    if ood_noise is not None:
        return float(ood_noise)
    return 2.0 * noise if noise > 0 else 0.01


def model_settings(cfg: dict, width, depth, samples, noise, seed, epochs) -> dict:
    """One model's settings (as stored in its models/<key>.json)."""
    return {
        "key": model_key(width, depth, samples, noise, seed),
        "model": cfg["model"],
        "width": width,
        "depth": depth,
        "samples": samples,
        "noise": noise,
        "seed": seed,
        "epochs": list(epochs),
        "fingerprint": cfg["fingerprint"],
    }


# --------------------------------------------------------------------------------------------
# measures


def norm2(M: np.ndarray) -> float:
    """The spectral norm ‖M‖₂."""
    from fastinv.linalg import spectral

    return float(spectral.singular_values(M)[0])


def resid_fro(C: np.ndarray, A: np.ndarray) -> float:
    """‖CA − I‖_F/√n: 0 for A⁻¹, about the share of suppressed directions for a filter."""
    R = C @ A
    R[np.diag_indices_from(R)] -= 1.0
    return float(np.linalg.norm(R)) / math.sqrt(R.shape[0])


def _dist(D: np.ndarray, nB2: float | None, nBF: float | None) -> tuple:
    if nB2 is None:
        return None, None
    return norm2(D) / nB2, float(np.linalg.norm(D)) / nBF


@dataclass
class Condition:
    """One evaluation condition: a test set, probes (with targets) and the LMMSE there."""

    prior: str
    noise: float
    Y_test: np.ndarray
    X_test: np.ndarray
    Y_probe: np.ndarray
    X_probe: np.ndarray
    lmmse: np.ndarray | None
    lmmse_b: np.ndarray | None
    lmmse_norm2: float | None
    lmmse_fro: float | None
    info: dict


# --------------------------------------------------------------------------------------------
# one checkpoint


def _condition_values(net, c: Condition, ctx: dict, seed: int) -> tuple[dict, np.ndarray]:
    """Errors, R² and distances of one checkpoint under one condition, and its C."""
    from fastinv.linalg.surrogate import fit_surrogate
    from fastinv.nets.training import predict

    fit = fit_surrogate(net, c.Y_probe, holdout=0.2, seed=seed)
    Xnet = predict(net, c.Y_test)
    C, b = fit.C, fit.b
    d_inv = _dist(C - ctx["A_inv"], ctx["A_inv_norm2"], ctx["A_inv_fro"])
    d_lm = (None, None) if c.lmmse is None else _dist(C - c.lmmse, c.lmmse_norm2, c.lmmse_fro)
    vals = {
        "err_net": relative_error(Xnet, c.X_test),
        "err_C": relative_error(c.Y_test @ C.T + b, c.X_test),
        "r2": float(fit.r2_heldout if fit.r2_heldout is not None else fit.r2),
        "dist_inv_2": d_inv[0],
        "dist_inv_fro": d_inv[1],
        "dist_lmmse_2": d_lm[0],
        "dist_lmmse_fro": d_lm[1],
    }
    vals["resid_CA_I_fro"] = resid_fro(C, ctx["A"])
    return vals, C


def _spectral_values(C: np.ndarray, ctx: dict, noise_idx: int) -> tuple[dict, np.ndarray]:
    """‖CA − I‖₂, filter-factor summaries and principal angles of C (in distribution)."""
    from fastinv.linalg import spectral

    row: dict = {}
    R = C @ ctx["A"]
    R[np.diag_indices_from(R)] -= 1.0
    row["resid_CA_I_2"] = norm2(R)
    phi, off = spectral.filter_factors(C, ctx["U"], ctx["s"], ctx["Vt"])
    low = np.flatnonzero(phi <= 0.1)
    row["phi_count_ge_0.9"] = int(np.sum(phi >= 0.9))
    row["phi_first_le_0.1"] = int(low[0]) if low.size else int(phi.size)
    row["offdiag_share"] = float(off)
    pl = ctx["phi_lmmse"][f"{ctx['noise_levels'][noise_idx]:g}"]
    row["phi_rms_to_lmmse"] = None if pl is None else float(np.sqrt(np.mean((phi - pl) ** 2)))
    ang = spectral.principal_angles(C, None, ctx["ks"], svd2=ctx["inv_svd"])
    for k, a in zip(ang["k"], ang["max_deg"], strict=True):
        row[f"angle_max_deg_k{k}"] = float(a)
    return row, phi


def _ood_values(kind: str, c: Condition, vals: dict) -> dict:
    """The out-of-distribution columns of one condition (``kind`` "prior" or "noise")."""
    row = {
        f"ood_{kind}_level" if kind == "noise" else "ood_prior_name": (
            c.noise if kind == "noise" else c.prior
        )
    }
    for name in ("err_net", "err_C", "r2", "dist_inv_2", "dist_lmmse_2", "resid_CA_I_fro"):
        row[f"ood_{kind}_{name}"] = vals[name]
    return row


def _evaluate(net, ctx: dict, noise_idx: int, seed: int) -> tuple[dict, np.ndarray]:
    """The row's numbers for one checkpoint (the module holds its weights) and its filter
    factors."""
    row: dict = {}
    phi = None
    for kind in ("in", "prior", "noise"):
        c: Condition = ctx["conds"][f"{kind}:{noise_idx}"]
        vals, C = _condition_values(net, c, ctx, seed)
        if kind == "in":
            row.update(vals)
            spectral_row, phi = _spectral_values(C, ctx, noise_idx)
            row.update(spectral_row)
        else:
            row.update(_ood_values(kind, c, vals))
    return row, phi


# --------------------------------------------------------------------------------------------
# one model: train once, evaluate every checkpoint


def _train(settings: dict, ctx: dict):
    """The model trained to max(epochs), with a checkpoint at each requested epoch."""
    from fastinv.nets import training
    from fastinv.nets.spec import TrainSpec
    from fastinv.problem.data import generate
    from fastinv.problem.priors import make_prior

    cfg = ctx["cfg"]
    prior = make_prior(cfg["prior"], ctx["A"].shape[0], **(cfg["prior_params"] or {}))
    # one counter-seeded stream per seed: N = 2000 is a prefix of N = 8000, and every
    # noise level perturbs the same signals in the same directions
    X, Y = generate(
        ctx["A"],
        n_samples=settings["samples"],
        prior=prior,
        noise=settings["noise"],
        noise_type=cfg["noise_type"],
        seed=derive_seed(cfg["seed"], 1, settings["seed"]),
    )
    epochs = settings["epochs"]
    spec = TrainSpec(
        model=cfg["model"],
        width=settings["width"],
        depth=settings["depth"],
        activation=cfg["activation"],
        optimizer=cfg["optimizer"],
        lr=cfg["lr"],
        epochs=max(epochs),
        batch_size=cfg["batch_size"],
        schedule=cfg["schedule"],
        val_fraction=0.0,
        device=cfg["device"],
        seed=derive_seed(cfg["seed"], 4, settings["seed"]),
        checkpoints=epochs,
    )
    return training.train(Y, X, spec=spec)


def _evaluate_checkpoints(net, settings: dict, ctx: dict) -> tuple[list[dict], list]:
    """One row (and the filter factors) per checkpoint of the trained ``net``."""
    import copy

    cfg = ctx["cfg"]
    noise_idx = ctx["noise_levels"].index(settings["noise"])
    hist = net.fastinv_history
    ckpts = hist["checkpoints"]
    n_params = int(sum(p.numel() for p in net.parameters()))
    work = copy.deepcopy(net)
    rows, phis = [], []
    for e in settings["epochs"]:
        work.load_state_dict(ckpts[e])
        work.eval()
        vals, phi = _evaluate(work, ctx, noise_idx, cfg["seed"])
        row = {c: settings[c] for c in SETTING_COLUMNS if c in settings}
        row["epoch"] = int(e)
        row["parameters"] = n_params
        row["train_loss"] = float(hist["train_loss"][e - 1])
        row.update(vals)
        rows.append(row)
        phis.append(phi.tolist())
    return rows, phis


def run_model(settings: dict, ctx: dict) -> dict:
    """Train one model to max(epochs) with checkpoints; evaluate each checkpoint.

    Returns
    -------
    dict
        ``settings``, ``rows`` (one per checkpoint), ``phi`` (filter factors per row) and
        ``timing`` (seconds of training and of evaluation).
    """
    clock = Stopwatch()
    net = _train(settings, ctx)
    t_train = clock.seconds
    rows, phis = _evaluate_checkpoints(net, settings, ctx)
    return {
        "settings": settings,
        "rows": rows,
        "phi": phis,
        "timing": {
            "train": round(t_train, 3),
            "evaluate": round(clock.seconds - t_train, 3),
        },
    }


# --------------------------------------------------------------------------------------------
# many models: what the serial loop, the process pool and the cluster share


def try_run_model(settings: dict, ctx: dict) -> dict:
    """:func:`run_model`, or ``{"settings": settings, "error": message}`` when the model fails
    for a reason of its own (a :class:`FastinvError`, e.g. a learning rate that diverges);
    any other exception is a bug and propagates."""
    try:
        return run_model(settings, ctx)
    except FastinvError as e:
        return {"settings": settings, "error": str(e)}


class ModelTracker:
    """Hands each finished model to ``finished``, keeps the failed ones with their errors, and
    logs one progress line per model: done / running / failed and the ETA.

    Parameters
    ----------
    total : int
        Models to run.
    finished : callable
        Called with each successful result (``run_model``'s dict), in the order they come.
    log : callable, optional
        Takes one progress line (a :class:`fastinv._progress.Reporter`).
    """

    def __init__(self, total: int, finished: Callable, log: Callable | None = None):
        self.total = total
        self.finished = finished
        self.log = log
        self.done = 0
        self.failures: list[tuple[str, str]] = []
        self.clock = Stopwatch()

    @property
    def remaining(self) -> int:
        return self.total - self.done - len(self.failures)

    def take(self, res: dict, running: int) -> None:
        """One model's outcome (a result or ``{"settings", "error"}``); ``running`` is how many
        models are running now (at most the remaining ones)."""
        if "error" in res:
            self.failures.append((res["settings"]["key"], res["error"]))
            self._line(f"{res['settings']['key']} failed: {res['error']}", running)
        else:
            self.done += 1
            self.finished(res)
            self._line(None, running)

    def _line(self, first: str | None, running: int) -> None:
        if self.log is None:
            return
        if first is not None:
            self.log(first)
        ended = self.done + len(self.failures)
        left = self.remaining
        eta = self.clock.seconds / ended * left if ended else math.nan
        when = f"ETA {eta:.0f} s" if left else f"all ended in {self.clock.seconds:.1f} s"
        self.log(
            f"models: {self.done} done, {min(running, left)} running, "
            f"{len(self.failures)} failed of {self.total}; {when}"
        )

    def check(self) -> None:
        """Raise one :class:`FastinvError` naming every failed model and its error, once all
        the others have ended (their results are kept: ``--resume`` skips them)."""
        if not self.failures:
            return
        listed = "; ".join(f"{k}: {msg}" for k, msg in self.failures)
        raise FastinvError(
            f"{len(self.failures)} of {self.total} models failed ({listed}); the "
            f"{self.done} others finished and are kept: change the settings of the failed "
            "ones and rerun with --resume"
        )


def limit_threads(threads: int) -> None:
    """Limit torch, Numba and the BLAS of this process to ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # noqa: BLE001 - numba threading layer unavailable: leave as is
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
    except Exception:  # noqa: BLE001 - optional
        pass


def run_models(
    todo: list[dict],
    ctx: dict,
    *,
    pool: bool,
    jobs: int,
    finished: Callable,
    log: Callable | None = None,
) -> None:
    """Run every model of ``todo``, handing each result to ``finished`` as it comes.

    With ``pool`` (and more than one model and job) in ``jobs`` spawned worker processes of
    ``cores // jobs`` threads each; else one after another in this process. A model that
    fails with a :class:`FastinvError` does not stop the others: once they have all ended,
    one :class:`FastinvError` names the failed ones (:meth:`ModelTracker.check`).
    """
    tracker = ModelTracker(len(todo), finished, log)
    if pool and jobs > 1 and len(todo) > 1:
        _run_pool(todo, ctx, jobs, tracker)
    else:
        for st in todo:
            tracker.take(try_run_model(st, ctx), running=1)
    tracker.check()


_WORKER_CTX: dict | None = None


def _init_worker(ctx: dict, threads: int) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx
    limit_threads(threads)


def _worker_run(settings: dict) -> dict:
    return try_run_model(settings, _WORKER_CTX)


def _run_pool(todo: list[dict], ctx: dict, jobs: int, tracker: ModelTracker) -> None:
    import concurrent.futures as cf
    import multiprocessing as mp

    cores = os.cpu_count() or 1
    workers = min(jobs, len(todo))
    threads = max(1, cores // jobs)
    ex = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=_init_worker,
        initargs=(ctx, threads),
    )
    try:
        futs = [ex.submit(_worker_run, st) for st in todo]
        for fut in cf.as_completed(futs):
            tracker.take(fut.result(), running=workers)
    except BaseException:
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
