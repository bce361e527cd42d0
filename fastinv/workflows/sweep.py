"""`fastinv sweep`: does spectral agreement with A⁻¹ go with accuracy across a family of models?

One trained network cannot say whether "C close to A⁻¹" is tied to accuracy; a controlled
family can. :func:`run_sweep` trains every combination of (width, depth, training-set size,
noise level, seed) once, to the largest requested epoch count, keeps a checkpoint at each
requested epoch, and evaluates every checkpoint with the same probes and the same test set
(per noise level, generated once from fixed seeds). Each evaluation is a light audit: the
references (A's SVD, A⁻¹, the LMMSE per noise level, the oracle Tikhonov filter) are built
once for the whole sweep, not per model.

Per (model, epoch) row: the settings; the relative test error of the network and of its affine
surrogate C; the held-out R² of C; the relative 2-norm and Frobenius distances of C to A⁻¹ and
to the LMMSE of that noise level; filter-factor summaries; principal angles between the top-k
left singular subspaces of C and A⁻¹; and the same evaluation out of distribution (probes from
another prior at the training noise, and from the training prior at another noise level).

Across the rows: Spearman's ρ (95 % bootstrap interval) of test error against each distance,
the partial ρ controlling for the training-set size, and a summary computed from those numbers
(SCIENCE.md §1: small error forces C toward A⁻¹ when the noise is small, not the converse; with
noise the best linear estimator is the LMMSE, not A⁻¹).

Files in ``out``: sweep_config.json (written first), models/<key>.json (one per trained model,
written atomically as soon as it finishes; ``resume=True`` skips models whose file exists),
sweep.json, sweep.csv, filter_factors.npz, summary.md and the PNG plots.

Notes
-----
Training uses a constant learning rate by default, so the checkpoint at epoch e is the model
one would get by training for e epochs. The rows of one run (its checkpoints) are not
independent observations, so the bootstrap interval resamples whole runs (a cluster
bootstrap: its width reflects the number of runs, not of rows); the p-values of
scipy.stats.spearmanr treat rows as independent and are optimistic, which the summary says.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastinv.errors import FastinvError

#: the axes of the family, in the order of the model keys
AXES = ("widths", "depths", "samples", "noise", "seeds")
#: columns of a row that hold the model's settings
SETTING_COLUMNS = ("key", "model", "width", "depth", "samples", "noise", "seed", "epoch")
#: the sweep settings that must agree between a stored sweep and ``resume=True``
RESUME_KEYS = (
    "operator",
    "n",
    "operator_params",
    "operator_sha256",
    "prior",
    "prior_params",
    "noise_type",
    "ood_prior",
    "ood_noise",
    "model",
    "lr",
    "batch_size",
    "optimizer",
    "schedule",
    "activation",
    "probes",
    "test_samples",
    "seed",
)
_FULL_SVD_MAX = 2048


# --------------------------------------------------------------------------------------------
# result


@dataclass
class SweepResult:
    """What a sweep found.

    Attributes
    ----------
    rows : list of dict
        One per (model, epoch): settings, errors, R², distances, filter and angle summaries,
        out-of-distribution columns (None where a number is not available).
    correlations : list of fastinv.linalg.stats.Correlation
        Spearman ρ with 95 % bootstrap intervals (and partial ρ on the training-set size).
    summary : list of str
        Plain-words reading computed from the numbers.
    references : dict
        Per noise level: test errors of A⁻¹, LMMSE and the oracle Tikhonov filter, λ, notes.
    config : dict
        The sweep settings (as in sweep_config.json).
    out : str or None
        The output folder.
    """

    rows: list[dict]
    correlations: list
    summary: list[str]
    references: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    out: str | None = None
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "n_models": len({r["key"] for r in self.rows}),
            "n_rows": len(self.rows),
            "rows": self.rows,
            "correlations": [c.to_dict() for c in self.correlations],
            "summary": self.summary,
            "references": self.references,
            "degenerate_columns": degenerate_columns(self.rows),
            "timings": self.timings,
        }


# --------------------------------------------------------------------------------------------
# input checks


def _as_list(v, what: str) -> list:
    if isinstance(v, str):
        if not v.strip():
            return []
        parts = [p.strip() for p in v.split(",")]
        if any(p == "" for p in parts):
            raise FastinvError(
                f"{what} must be a comma-separated list without empty entries, got {v!r}"
            )
        return parts
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    return [v]


def _int_list(v, what: str, *, lo: int) -> list[int]:
    items = _as_list(v, what)
    if not items:
        raise FastinvError(f"{what} is empty; give at least one value, e.g. {what} 1")
    out = []
    for x in items:
        if isinstance(x, str):
            try:
                x = int(x)
            except ValueError:
                raise FastinvError(f"{what} takes integers, got {x!r}") from None
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            if isinstance(x, (float, np.floating)) and float(x).is_integer():
                x = int(x)
            else:
                raise FastinvError(f"{what} takes integers, got {x!r}")
        if x < lo:
            raise FastinvError(f"every value of {what} must be >= {lo}, got {x}")
        out.append(int(x))
    return sorted(set(out))


def _float_list(v, what: str) -> list[float]:
    items = _as_list(v, what)
    if not items:
        raise FastinvError(f"{what} is empty; give at least one value, e.g. {what} 0.01")
    out = []
    for x in items:
        try:
            f = float(x)
        except (TypeError, ValueError):
            raise FastinvError(f"{what} takes numbers, got {x!r}") from None
        if isinstance(x, bool) or not math.isfinite(f) or f < 0:
            raise FastinvError(f"every value of {what} must be a finite number >= 0, got {x!r}")
        out.append(f)
    return sorted(set(out))


def _derive(*parts: int) -> int:
    """A 63-bit seed derived from integers (order matters)."""
    ss = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts] + [0x5EE9])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def model_key(width: int, depth: int, samples: int, noise: float, seed: int) -> str:
    """File-name-safe key of one model of the family."""
    return f"w{width}-d{depth}-N{samples}-nz{noise:g}-s{seed}"


def default_ood_prior(prior: str) -> str:
    """The prior used out of distribution when none is given: one that differs from ``prior``."""
    return "piecewise_constant" if prior != "piecewise_constant" else "smooth"


def ood_noise_level(noise: float, ood_noise: float | None) -> float:
    """OOD noise level for a model trained at ``noise``: ``ood_noise``, else 2 × noise (0.01
    for noise-free training)."""
    if ood_noise is not None:
        return float(ood_noise)
    return 2.0 * noise if noise > 0 else 0.01


# --------------------------------------------------------------------------------------------
# references, built once per sweep


def _rel_err(Xhat: np.ndarray, X: np.ndarray) -> float:
    return float(np.linalg.norm(Xhat - X) / np.linalg.norm(X))


def _norm2(M: np.ndarray) -> float:
    from fastinv.linalg import spectral

    return float(spectral.singular_values(M)[0])


def _resid_fro(C: np.ndarray, A: np.ndarray) -> float:
    """‖CA − I‖_F/√n: 0 for A⁻¹, about the share of suppressed directions for a filter."""
    R = C @ A
    R[np.diag_indices_from(R)] -= 1.0
    return float(np.linalg.norm(R)) / math.sqrt(R.shape[0])


def _lmmse_ref(A, pinv_A, singular: bool, prior, noise: float, noise_type: str, seed: int):
    """(C, b, info) of the LMMSE for ``prior`` at ``noise``, or (None, None, info)."""
    from fastinv.auditing.core import noise_covariance
    from fastinv.linalg import estimators

    n = A.shape[0]
    Sx = prior.cov()
    mu = prior.mean()
    if Sx is not None:
        source = "analytic (prior)"
    else:
        m = max(20000, 20 * n)
        Xs = prior.sample(m, seed=_derive(seed, 7))
        mu, Sx = Xs.mean(0), np.cov(Xs, rowvar=False).reshape(n, n)
        source = f"estimated from {m} prior samples"
    ncov = noise_covariance({"level": noise, "type": noise_type}, A, mu, Sx)
    info = {"prior_cov": source, "noise_var": None if ncov is None else float(ncov)}
    if ncov is None:
        info["note"] = "the noise covariance could not be derived"
        return None, None, info
    if ncov == 0 and not singular:
        info["note"] = "noise-free and A invertible: the LMMSE is A⁻¹"
        return pinv_A, np.zeros(n), info
    try:
        C, b = estimators.lmmse(A, mu, Sx, ncov)
    except FastinvError as e:
        info["note"] = f"not computed: {e}"
        return None, None, info
    return C, b, info


@dataclass
class _Cond:
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


def _build_context(op, cfg: dict, noise_levels: list[float], log) -> tuple[dict, dict]:
    """Everything the per-model evaluations share (plain arrays; picklable for workers)."""
    from fastinv.linalg import estimators, spectral
    from fastinv.problem.data import generate
    from fastinv.problem.priors import make_prior

    A = op.A
    n = op.n
    U, s, Vt = op.svd
    A_inv = estimators.pinv(A, svd=(U, s, Vt))
    r = int(np.sum(s > (s[0] * n * np.finfo(float).eps if s[0] > 0 else 0)))
    # SVD of A⁺ from A's: its top singular vectors are A's bottom ones
    inv_svd = (Vt[:r][::-1].T.copy(), 1.0 / s[:r][::-1], U[:, :r][:, ::-1].T.copy())
    ks = sorted({k for k in (1, 5, 10, max(1, n // 4)) if k <= r})
    seed = cfg["seed"]
    n_test = cfg["test_samples"] or max(1000, 2 * n)
    n_probe = cfg["probes"] or max(2000, 4 * n)
    priors = {
        cfg["prior"]: make_prior(cfg["prior"], n, **(cfg["prior_params"] or {})),
        cfg["ood_prior"]: make_prior(cfg["ood_prior"], n),
    }

    conds: dict[str, _Cond] = {}
    refs: dict = {"noise_levels": {}}

    def cond(name, prior_name, nu):
        if name in conds:
            return
        gen = dict(prior=priors[prior_name], noise=nu, noise_type=cfg["noise_type"])
        tag = 0 if prior_name == cfg["prior"] else 1
        Xt, Yt = generate(op, n_samples=n_test, seed=_derive(seed, 2, tag), **gen)
        Xp, Yp = generate(op, n_samples=n_probe, seed=_derive(seed, 3, tag), **gen)
        C, b, info = _lmmse_ref(
            A, A_inv, op.singular, priors[prior_name], nu, cfg["noise_type"], seed
        )
        conds[name] = _Cond(
            prior_name,
            nu,
            Yt,
            Xt,
            Yp,
            Xp,
            C,
            b,
            None if C is None else _norm2(C),
            None if C is None else float(np.linalg.norm(C)),
            info,
        )

    for i, nu in enumerate(noise_levels):
        log(f"references for noise {nu:g}")
        cond(f"in:{i}", cfg["prior"], nu)
        cond(f"prior:{i}", cfg["ood_prior"], nu)
        cond(f"noise:{i}", cfg["prior"], ood_noise_level(nu, cfg["ood_noise"]))
        c = conds[f"in:{i}"]
        orc = estimators.oracle_lambda((U, s, Vt), c.Y_probe, c.X_probe)
        lam = float(orc.value)
        phi_tik = estimators.filter_factors_tikhonov(s, lam)
        entry = {
            "noise": nu,
            "lmmse_resid_CA_I_fro": None if c.lmmse is None else _resid_fro(c.lmmse, A),
            "lmmse_dist_inv_2": (
                None if c.lmmse is None else _norm2(c.lmmse - A_inv) / _norm2(A_inv)
            ),
            "tikhonov_oracle_resid_CA_I_fro": _resid_fro(
                estimators.tikhonov(A, lam, svd=(U, s, Vt)), A
            ),
            "tikhonov_oracle_lambda": lam,
            "lmmse": c.info,
            "errors": {
                "A_inv": _rel_err(c.Y_test @ A_inv.T, c.X_test),
                "tikhonov_oracle": _rel_err(
                    c.Y_test @ estimators.tikhonov(A, lam, svd=(U, s, Vt)).T, c.X_test
                ),
                "lmmse": None
                if c.lmmse is None
                else _rel_err(c.Y_test @ c.lmmse.T + c.lmmse_b, c.X_test),
            },
            "phi_tikhonov_oracle": phi_tik,
            "phi_lmmse": None if c.lmmse is None else spectral.filter_factors(c.lmmse, U, s, Vt)[0],
        }
        for kind in ("prior", "noise"):
            o = conds[f"{kind}:{i}"]
            entry[f"ood_{kind}"] = {
                "prior": o.prior,
                "noise": o.noise,
                "lmmse": o.info,
                "errors": {
                    "A_inv": _rel_err(o.Y_test @ A_inv.T, o.X_test),
                    "lmmse": None
                    if o.lmmse is None
                    else _rel_err(o.Y_test @ o.lmmse.T + o.lmmse_b, o.X_test),
                },
            }
        refs["noise_levels"][f"{nu:g}"] = entry

    ctx = {
        "A": A,
        "U": U,
        "s": s,
        "Vt": Vt,
        "A_inv": A_inv,
        "A_inv_norm2": _norm2(A_inv),
        "A_inv_fro": float(np.linalg.norm(A_inv)),
        "inv_svd": inv_svd,
        "ks": ks,
        "conds": conds,
        "phi_lmmse": {
            f"{nu:g}": refs["noise_levels"][f"{nu:g}"]["phi_lmmse"] for nu in noise_levels
        },
        "noise_levels": list(noise_levels),
        "cfg": cfg,
    }
    return ctx, refs


# --------------------------------------------------------------------------------------------
# one model: train once, evaluate every checkpoint


def _dist(D: np.ndarray, nB2: float | None, nBF: float | None) -> tuple:
    if nB2 is None:
        return None, None
    return _norm2(D) / nB2, float(np.linalg.norm(D)) / nBF


def _evaluate(net, ctx: dict, noise_idx: int, seed: int) -> tuple[dict, np.ndarray]:
    """The row's numbers for one checkpoint (the module holds its weights)."""
    from fastinv.linalg import spectral
    from fastinv.linalg.surrogate import fit_surrogate
    from fastinv.nets.training import predict

    U, s, Vt = ctx["U"], ctx["s"], ctx["Vt"]
    row: dict = {}
    phi = None
    for kind in ("in", "prior", "noise"):
        c: _Cond = ctx["conds"][f"{kind}:{noise_idx}"]
        fit = fit_surrogate(net, c.Y_probe, holdout=0.2, seed=seed)
        Xnet = predict(net, c.Y_test)
        C, b = fit.C, fit.b
        d_inv = _dist(C - ctx["A_inv"], ctx["A_inv_norm2"], ctx["A_inv_fro"])
        d_lm = (None, None) if c.lmmse is None else _dist(C - c.lmmse, c.lmmse_norm2, c.lmmse_fro)
        vals = {
            "err_net": _rel_err(Xnet, c.X_test),
            "err_C": _rel_err(c.Y_test @ C.T + b, c.X_test),
            "r2": float(fit.r2_heldout if fit.r2_heldout is not None else fit.r2),
            "dist_inv_2": d_inv[0],
            "dist_inv_fro": d_inv[1],
            "dist_lmmse_2": d_lm[0],
            "dist_lmmse_fro": d_lm[1],
        }
        vals["resid_CA_I_fro"] = _resid_fro(C, ctx["A"])
        if kind == "in":
            row.update(vals)
            R = C @ ctx["A"]
            R[np.diag_indices_from(R)] -= 1.0
            row["resid_CA_I_2"] = _norm2(R)
            phi, off = spectral.filter_factors(C, U, s, Vt)
            low = np.flatnonzero(phi <= 0.1)
            row["phi_count_ge_0.9"] = int(np.sum(phi >= 0.9))
            row["phi_first_le_0.1"] = int(low[0]) if low.size else int(phi.size)
            row["offdiag_share"] = float(off)
            pl = ctx["phi_lmmse"][f"{ctx['noise_levels'][noise_idx]:g}"]
            row["phi_rms_to_lmmse"] = (
                None if pl is None else float(np.sqrt(np.mean((phi - pl) ** 2)))
            )
            ang = spectral.principal_angles(C, None, ctx["ks"], svd2=ctx["inv_svd"])
            for k, a in zip(ang["k"], ang["max_deg"], strict=True):
                row[f"angle_max_deg_k{k}"] = float(a)
        else:
            row[f"ood_{kind}_level" if kind == "noise" else "ood_prior_name"] = (
                c.noise if kind == "noise" else c.prior
            )
            for name in ("err_net", "err_C", "r2", "dist_inv_2", "dist_lmmse_2", "resid_CA_I_fro"):
                row[f"ood_{kind}_{name}"] = vals[name]
    return row, phi


def _settings(cfg: dict, width, depth, samples, noise, seed, epochs) -> dict:
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


def _run_model(settings: dict, ctx: dict) -> dict:
    """Train one model to max(epochs) with checkpoints; evaluate each checkpoint."""
    import copy

    from fastinv.nets import training
    from fastinv.problem.data import generate
    from fastinv.problem.priors import make_prior

    cfg = ctx["cfg"]
    t0 = time.perf_counter()
    noise_idx = ctx["noise_levels"].index(settings["noise"])
    prior = make_prior(cfg["prior"], ctx["A"].shape[0], **(cfg["prior_params"] or {}))
    # one counter-seeded stream per seed: N = 2000 is a prefix of N = 8000, and every
    # noise level perturbs the same signals in the same directions
    X, Y = generate(
        ctx["A"],
        n_samples=settings["samples"],
        prior=prior,
        noise=settings["noise"],
        noise_type=cfg["noise_type"],
        seed=_derive(cfg["seed"], 1, settings["seed"]),
    )
    epochs = settings["epochs"]
    net = training.train(
        Y,
        X,
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
        seed=_derive(cfg["seed"], 4, settings["seed"]),
        checkpoints=epochs,
    )
    t_train = time.perf_counter() - t0
    hist = net.fastinv_history
    ckpts = hist["checkpoints"]
    n_params = int(sum(p.numel() for p in net.parameters()))
    work = copy.deepcopy(net)
    rows, phis = [], []
    for e in epochs:
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
    return {
        "settings": settings,
        "rows": rows,
        "phi": phis,
        "timing": {
            "train": round(t_train, 3),
            "evaluate": round(time.perf_counter() - t0 - t_train, 3),
        },
    }


_WORKER_CTX: dict | None = None


def _init_worker(ctx: dict, threads: int) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx
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


def _worker_run(settings: dict) -> dict:
    return _run_model(settings, _WORKER_CTX)


# --------------------------------------------------------------------------------------------
# the sweep


def _sha256(A: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(A, dtype=np.float64).tobytes()).hexdigest()[:16]


def _check_resume_config(stored: dict, cfg: dict, path: Path) -> None:
    for k in RESUME_KEYS:
        if stored.get(k) != cfg.get(k):
            raise FastinvError(
                f"--resume: the sweep in {path.parent} was run with {k} = {stored.get(k)!r}, "
                f"not {cfg.get(k)!r}; give the same settings or a new --out folder"
            )


def _load_model_file(path: Path, settings: dict) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FastinvError(
            f"cannot read {path} ({e}); delete it so --resume recomputes that model"
        ) from None
    if data.get("settings") != settings:
        raise FastinvError(
            f"--resume: {path.name} was computed with other settings than this sweep asks for "
            "(epochs or sweep options changed); delete it or use a new --out folder"
        )
    return data


def run_sweep(
    operator,
    n: int | None = None,
    *,
    epochs,
    widths,
    depths,
    samples,
    noise,
    seeds,
    prior: str = "smooth",
    prior_params: dict | None = None,
    noise_type: str = "relative",
    ood_prior: str | None = None,
    ood_noise: float | None = None,
    model: str = "mlp",
    activation: str = "relu",
    lr: float = 1e-3,
    batch_size: int | None = 128,
    optimizer: str = "adam",
    schedule: str = "constant",
    operator_params: dict | None = None,
    device: str = "cpu",
    jobs: int = 1,
    probes: int | None = None,
    test_samples: int | None = None,
    out=None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    seed: int = 0,
    n_boot: int = 2000,
) -> SweepResult:
    """Train a controlled family of networks and test whether spectral agreement tracks error.

    Parameters
    ----------
    operator : str
        Catalogue name or matrix file (see :func:`fastinv.problem.operators.make_operator`).
    n : int, optional
        Size of a catalogue operator.
    epochs, widths, depths, samples, seeds : int, list of int or comma-separated str
        The axes. Every (width, depth, samples, noise, seed) is trained once to max(epochs)
        and evaluated at every value of ``epochs`` (positive integers).
    noise : float, list of float or comma-separated str
        Training noise levels (>= 0); each has its own common test set, probes and LMMSE.
    prior, prior_params, noise_type
        The training distribution (see :func:`fastinv.problem.data.generate`).
    ood_prior : str, optional
        Prior of the out-of-distribution probes (at the training noise); default
        :func:`default_ood_prior` (piecewise_constant, or smooth when training on that).
    ood_noise : float, optional
        Noise level of the out-of-distribution probes (training prior); default twice each
        model's training noise (0.01 for noise-free training).
    model, activation, lr, batch_size, optimizer, schedule
        Passed to :func:`fastinv.nets.training.train` (``schedule="constant"``: the checkpoint at
        epoch e equals a model trained for e epochs). ``batch_size`` None: full batch.
    operator_params : dict, optional
        Operator parameters (e.g. ``{"cond": 10}`` for ``random``).
    device : "cpu", "cuda" or "auto"
        On the CPU models run in a process pool of ``jobs`` workers (each with
        ``cores // jobs`` threads); on CUDA one after another.
    jobs : int
        Worker processes on the CPU (>= 1).
    probes, test_samples : int, optional
        Probes for fitting C (default max(2000, 4n), 20 % held out for R²) and test pairs
        (default max(1000, 2n)) per condition.
    out : str or Path, optional
        Output folder; nothing is written when None.
    resume : bool
        Continue the sweep in ``out``: models whose file exists are loaded, not retrained.
    force : bool
        Write into an ``out`` folder that already holds files (recomputing everything).
    progress : bool
        One line per finished model on stderr.
    seed : int
        Seeds the common test sets and probes, and (with each model's seed) its training data
        and initial weights.
    n_boot : int
        Bootstrap resamples for the confidence intervals (>= 100).

    Returns
    -------
    SweepResult

    Raises
    ------
    FastinvError
        Empty or malformed axes, non-positive epochs, ``jobs < 1``, an ``out`` folder that
        holds files without ``resume``/``force``, or ``resume`` with other settings than the
        stored sweep.
    """
    from fastinv._device import resolve_device
    from fastinv.io import check_out_dir, write_json
    from fastinv.problem.operators import make_operator
    from fastinv.problem.priors import make_prior

    log = (
        (lambda m: print(f"[fastinv sweep] {m}", file=sys.stderr, flush=True))
        if progress
        else (lambda m: None)
    )
    t_start = time.perf_counter()
    epochs = _int_list(epochs, "epochs", lo=1)
    widths = _int_list(widths, "widths", lo=1)
    depths = _int_list(depths, "depths", lo=0)
    samples = _int_list(samples, "samples", lo=2)
    seeds = _int_list(seeds, "seeds", lo=0)
    noise = _float_list(noise, "noise")
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise FastinvError(f"jobs must be an integer >= 1, got {jobs!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise FastinvError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise FastinvError(f"seed must be an integer >= 0, got {seed!r}")
    for what, v in (("probes", probes), ("test_samples", test_samples)):
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 10
        ):
            raise FastinvError(f"{what} must be an integer >= 10, got {v!r}")
    if ood_noise is not None:
        ood_noise = _float_list(ood_noise, "ood_noise")
        if len(ood_noise) != 1:
            raise FastinvError("ood_noise takes one noise level, e.g. 0.02")
        ood_noise = ood_noise[0]
    if noise_type not in ("relative", "absolute"):
        raise FastinvError(f"noise_type must be 'relative' or 'absolute', got {noise_type!r}")
    ood_prior = ood_prior or default_ood_prior(prior)
    if ood_prior == prior:
        raise FastinvError(
            f"the out-of-distribution prior must differ from the training prior {prior!r}; "
            f"choose another --ood-prior, e.g. {default_ood_prior(prior)}"
        )
    dev = resolve_device(device)
    from fastinv.nets.models import ACTIVATIONS, MODELS
    from fastinv.nets.training import OPTIMIZERS, SCHEDULES

    for what, v, allowed in (
        ("model", model, MODELS),
        ("activation", activation, ACTIVATIONS),
        ("optimizer", optimizer, OPTIMIZERS),
        ("schedule", schedule, SCHEDULES),
    ):
        if v not in allowed:
            raise FastinvError(f"unknown {what} {v!r}; choose one of {', '.join(allowed)}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise FastinvError(f"lr must be a positive number, got {lr!r}")

    op = make_operator(operator, n, **(operator_params or {}))
    n = op.n
    make_prior(prior, n, **(prior_params or {}))  # bad prior or params fail here, early
    make_prior(ood_prior, n)
    cfg = {
        "operator": str(operator),
        "n": int(n),
        "operator_params": dict(op.params or {}),
        "operator_sha256": _sha256(op.A),
        "prior": prior,
        "prior_params": dict(prior_params or {}),
        "noise_type": noise_type,
        "ood_prior": ood_prior,
        "ood_noise": ood_noise,
        "model": model,
        "activation": activation,
        "lr": float(lr),
        "batch_size": batch_size,
        "optimizer": optimizer,
        "schedule": schedule,
        "probes": probes,
        "test_samples": test_samples,
        "seed": int(seed),
    }
    cfg["fingerprint"] = hashlib.sha256(
        json.dumps({k: cfg[k] for k in RESUME_KEYS}, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    axes = {
        "epochs": epochs,
        "widths": widths,
        "depths": depths,
        "samples": samples,
        "noise": noise,
        "seeds": seeds,
    }
    run_cfg = {**cfg, **axes, "device": str(dev), "jobs": int(jobs)}

    out_path = None
    if out is not None:
        out_path = Path(out)
        stored_path = out_path / "sweep_config.json"
        if resume:
            if out_path.exists() and not out_path.is_dir():
                raise FastinvError(f"--out {out_path} is a file; give a folder name")
            if stored_path.is_file():
                try:
                    stored = json.loads(stored_path.read_text())
                except (OSError, json.JSONDecodeError) as e:
                    raise FastinvError(f"cannot read {stored_path}: {e}") from None
                _check_resume_config(stored, cfg, stored_path)
        else:
            try:
                check_out_dir(out_path, force=force)
            except FastinvError:
                raise FastinvError(
                    f"output folder {out_path} already holds files; pass --resume to continue "
                    "the sweep stored there, --force to overwrite it, or choose another --out"
                ) from None
        from fastinv import __version__

        write_json(stored_path, {**run_cfg, "fastinv_version": __version__})

    # ---- references, once ---------------------------------------------------------------------
    t = time.perf_counter()
    log(f"operator {op.name}, n = {n}; building the references")
    ctx_cfg = {**cfg, "device": str(dev)}
    ctx, refs = _build_context(op, ctx_cfg, noise, log)
    t_refs = time.perf_counter() - t

    # ---- the family -----------------------------------------------------------------------------
    grid = [
        _settings(cfg, w, d, N, nu, sd, epochs)
        for w in widths
        for d in depths
        for N in samples
        for nu in noise
        for sd in seeds
    ]
    results: dict[str, dict] = {}
    if out_path is not None and resume:
        for st in grid:
            p = out_path / "models" / f"{st['key']}.json"
            if p.is_file():
                results[st["key"]] = _load_model_file(p, st)
        if results:
            log(f"resuming: {len(results)} of {len(grid)} models already done")
    todo = [st for st in grid if st["key"] not in results]

    def finished(res: dict) -> None:
        key = res["settings"]["key"]
        results[key] = json.loads(json.dumps(_plain(res)))  # same values as a reloaded file
        if out_path is not None:
            write_json(out_path / "models" / f"{key}.json", res)
        r = res["rows"][-1]
        log(
            f"[{len(results)}/{len(grid)}] {key}: error {r['err_net']:.4g} at epoch "
            f"{r['epoch']} ({res['timing']['train']:.1f} s training)"
        )

    t = time.perf_counter()
    if todo:
        if dev.type == "cpu" and jobs > 1 and len(todo) > 1:
            _run_pool(todo, ctx, jobs, finished)
        else:
            for st in todo:
                finished(_run_model(st, ctx))
    t_models = time.perf_counter() - t

    # ---- assemble -------------------------------------------------------------------------------
    rows: list[dict] = []
    phis: list = []
    for st in grid:
        res = results[st["key"]]
        rows.extend(res["rows"])
        phis.extend(res["phi"])
    correlations = _correlations(rows, samples, n_boot)
    summary = make_summary(rows, correlations, refs, run_cfg)
    refs_plain = _plain_refs(refs)
    result = SweepResult(
        rows=rows,
        correlations=correlations,
        summary=summary,
        references=refs_plain,
        config=run_cfg,
        out=None if out_path is None else str(out_path),
        timings={
            "references": round(t_refs, 3),
            "models": round(t_models, 3),
            "models_trained": len(todo),
        },
    )
    if out_path is not None:
        _write_outputs(out_path, result, np.asarray(phis, dtype=float), refs, op, log)
    result.timings["total"] = round(time.perf_counter() - t_start, 3)
    if out_path is not None:
        write_json(out_path / "sweep.json", result.to_dict())
    return result


def _plain(obj):
    from fastinv.io import to_jsonable

    return to_jsonable(obj)


def _run_pool(todo: list[dict], ctx: dict, jobs: int, finished) -> None:
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
            finished(fut.result())
    except BaseException:
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)


# --------------------------------------------------------------------------------------------
# statistics and the summary


def _col(rows, name) -> np.ndarray:
    return np.array([np.nan if r.get(name) is None else float(r[name]) for r in rows])


#: (column, label) of the measures correlated with the network's test error
MEASURES = (
    ("dist_inv_2", "relative 2-norm distance of C to A⁻¹"),
    ("dist_lmmse_2", "relative 2-norm distance of C to the LMMSE"),
    ("dist_inv_fro", "relative Frobenius distance of C to A⁻¹"),
    ("dist_lmmse_fro", "relative Frobenius distance of C to the LMMSE"),
    ("resid_CA_I_2", "‖CA − I‖₂"),
    ("resid_CA_I_fro", "‖CA − I‖_F/√n"),
    ("phi_rms_to_lmmse", "RMS filter-factor distance to the LMMSE"),
)
_LABEL = dict(MEASURES)
#: a column whose values agree to this relative spread cannot rank models (rounding level)
DEGENERATE_SPREAD = 1e-8


def degenerate_columns(rows: list[dict], names=None) -> dict[str, dict]:
    """Columns whose finite values agree to within rounding: {name: {"min", "max"}}.

    Example: with ‖A⁻¹‖₂ = 1e17, ‖C − A⁻¹‖₂/‖A⁻¹‖₂ = 1 ± ‖C‖₂/‖A⁻¹‖₂ for every C, so its
    ranks are decided by rounding errors; a Spearman ρ on it would be noise.
    """
    out = {}
    for name in names or [m for m, _ in MEASURES]:
        v = _col(rows, name)
        v = v[np.isfinite(v)]
        if v.size < 2:
            continue
        scale = float(np.max(np.abs(v)))
        if scale == 0 or (v.max() - v.min()) <= DEGENERATE_SPREAD * scale:
            out[name] = {"min": float(v.min()), "max": float(v.max())}
    return out


def _correlations(rows: list[dict], samples: list[int], n_boot: int = 2000) -> list:
    """Spearman ρ of the network's test error with every non-degenerate measure and with its
    out-of-distribution errors (partial ρ on the training-set size when it varies)."""
    from fastinv.linalg.stats import correlate

    err = _col(rows, "err_net")
    control = _col(rows, "samples") if len(samples) > 1 else None
    # checkpoints of one run are not independent: the intervals resample whole runs
    runs = np.array([str(r.get("key")) for r in rows])
    skip = degenerate_columns(rows)
    out = []
    names = [m for m, _ in MEASURES if m not in skip]
    names += ["ood_prior_err_net", "ood_noise_err_net"]
    for yname in names:
        y = _col(rows, yname)
        if np.sum(np.isfinite(err) & np.isfinite(y)) < 3:
            continue
        try:
            c = correlate(
                err,
                y,
                names=("err_net", yname),
                control=control,
                control_name="samples" if control is not None else None,
                groups=runs,
                n_boot=n_boot,
            )
        except FastinvError:
            continue
        out.append(c)
    return out


def _f(x, d=2) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{d}g}" if abs(x) < 1e-2 or abs(x) >= 1e3 else f"{x:.{d}f}"


def _rho_text(c) -> str:
    return f"ρ = {_f(c.rho)}, 95 % CI [{_f(c.ci_low)}, {_f(c.ci_high)}]"


def _assoc(c, label: str) -> str:
    if not np.isfinite(c.rho):
        return f"the rank correlation with the {label} is undefined (a constant column)"
    if c.excludes_zero and c.rho > 0:
        return f"lower test error goes with a smaller {label} ({_rho_text(c)})"
    if c.excludes_zero and c.rho < 0:
        return f"lower test error goes with a LARGER {label} ({_rho_text(c)})"
    return (
        f"test error shows no clear rank association with the {label} ({_rho_text(c)}, "
        "the interval includes 0)"
    )


def make_summary(rows: list[dict], correlations: list, refs: dict, cfg: dict) -> list[str]:
    """Plain-words findings computed from the rows, the correlations and the references."""
    keys = sorted({r["key"] for r in rows})
    m, k = len(rows), len(keys)
    n_ep = len(cfg["epochs"])
    by = {c.y: c for c in correlations if c.x == "err_net"}
    degenerate = degenerate_columns(rows)
    noisy = any(nu > 0 for nu in cfg["noise"])
    lines: list[str] = []
    what = (
        f"{m} evaluations ({k} trained models × {n_ep} checkpoint epochs)"
        if n_ep > 1
        else f"{k} models"
    )
    # the A⁻¹-side and LMMSE-side headline measures
    inv_name = "dist_inv_2"
    if "dist_inv_2" in degenerate:
        d = degenerate["dist_inv_2"]
        lines.append(
            f"The relative distance ‖C − A⁻¹‖₂/‖A⁻¹‖₂ lies between {d['min']:.15g} and "
            f"{d['max']:.15g} for every model: ‖A⁻¹‖₂ dwarfs any C, so this distance cannot "
            "rank the models (a ρ on it would rank rounding errors) and is not correlated; "
            "the A⁻¹ side below uses ‖CA − I‖_F/√n, how far C is from inverting A."
        )
        inv_name = "resid_CA_I_fro"
    others = [n for n in degenerate if n not in ("dist_inv_2", "dist_lmmse_2")]
    if others:
        lines.append(
            "Also equal for every model to within rounding, hence not correlated: "
            + ", ".join(f"the {_LABEL[n]} ({degenerate[n]['max']:.6g})" for n in others)
            + "."
        )
    lm_name = "dist_lmmse_2" if "dist_lmmse_2" not in degenerate else "dist_lmmse_fro"
    if "dist_lmmse_2" in degenerate:
        lines.append(
            "The relative 2-norm distance to the LMMSE is the same for every model to within "
            "rounding; the LMMSE side below uses the Frobenius distance."
        )
    c_inv, c_lm = by.get(inv_name), by.get(lm_name)
    if c_inv is None and c_lm is None:
        lines.append(
            f"Across {what} there are too few finite, distinct values for rank correlations "
            "(at least 3 models are needed); widen the sweep."
        )
    else:
        parts = []
        if c_inv is not None:
            parts.append(_assoc(c_inv, _LABEL[inv_name]))
        if c_lm is not None:
            s = _assoc(c_lm, _LABEL[lm_name])
            parts.append(s.replace("lower test error goes with", "it goes with", 1) if parts else s)
        lines.append(f"Across {what}, " + "; ".join(parts) + ".")
        coincide = all(r.get("dist_lmmse_2") == r.get("dist_inv_2") for r in rows)
        if not noisy and coincide:
            lines.append(
                "Without noise (and A invertible) the LMMSE is A⁻¹, so the two distances coincide."
            )
        elif c_inv is not None and c_lm is not None:
            a, b = abs(c_lm.rho), abs(c_inv.rho)
            if np.isfinite(a) and np.isfinite(b):
                if abs(a - b) < 0.05:
                    lines.append(
                        f"The {_LABEL[lm_name]} and the {_LABEL[inv_name]} track test error "
                        f"about equally (|ρ| {_f(a)} and {_f(b)})."
                    )
                else:
                    (bn, ba), (wn, wb) = sorted(((lm_name, a), (inv_name, b)), key=lambda p: -p[1])
                    hi_c, lo_c = (c_lm, c_inv) if a > b else (c_inv, c_lm)
                    overlap = not (hi_c.ci_low > lo_c.ci_high)
                    lines.append(
                        f"The {_LABEL[bn]} tracks test error more closely than the {_LABEL[wn]} "
                        f"(|ρ| {_f(ba)} vs {_f(wb)})"
                        + (
                            ", though the two intervals overlap."
                            if overlap
                            else ", and the two intervals do not overlap."
                        )
                    )
        d_inv = _col(rows, "dist_inv_2")
        if np.isfinite(d_inv).any() and np.nanmin(d_inv) > 0.5:
            lm_d = [e.get("lmmse_dist_inv_2") for e in refs.get("noise_levels", {}).values()]
            lm_d = [v for v in lm_d if v is not None]
            lines.append(
                f"No model's C comes close to A⁻¹: ‖C − A⁻¹‖₂/‖A⁻¹‖₂ ≥ {_f(np.nanmin(d_inv), 3)} "
                "for every row"
                + (
                    f" (the LMMSE's own distance to A⁻¹ is {'/'.join(_f(v, 3) for v in lm_d)})"
                    if lm_d
                    else ""
                )
                + "."
            )
        opposite = [
            by[mm]
            for mm in ("dist_inv_2", "dist_inv_fro", "resid_CA_I_2", "resid_CA_I_fro")
            if mm in by and by[mm].excludes_zero and by[mm].rho < 0
        ]
        if opposite:
            lines.append(
                "On some measures of closeness to A⁻¹ the sign is reversed: lower test error goes "
                "with a LARGER "
                + " and a larger ".join(f"{_LABEL[c.y]} ({_rho_text(c)})" for c in opposite)
                + "; being nearer to A⁻¹ is not what the accurate models share."
            )
        lines.extend(_side_of_lmmse(rows, refs))
        measures = [by[mm] for mm, _ in MEASURES if mm in by and np.isfinite(by[mm].rho)]
        if len(measures) > 2:
            best = max(measures, key=lambda c: abs(c.rho))
            lines.append(
                f"Of all {len(measures)} measures compared, the {_LABEL[best.y]} tracks test "
                f"error most closely ({_rho_text(best)})."
            )
        pl = [c for c in (c_inv, c_lm) if c is not None and c.partial_rho is not None]
        if pl:
            parts = []
            for c in pl:
                tail = ""
                if c.excludes_zero and np.isfinite(c.rho):
                    tail = (
                        ": much of that association runs through how much data a model saw"
                        if abs(c.partial_rho) < 0.5 * abs(c.rho)
                        else ": it does not come from the training-set size alone"
                    )
                parts.append(
                    f"{_f(c.partial_rho)} for the {_LABEL[c.y]} (plain ρ {_f(c.rho)}){tail}"
                )
            lines.append(
                "Controlling for the training-set size, the partial Spearman ρ is "
                + "; and ".join(parts)
                + "."
            )
        if n_ep > 1:
            lines.append(
                f"The rows include {n_ep} checkpoints of each of the {k} runs; these are not "
                "independent, so the bootstrap intervals resample whole runs (all checkpoints "
                "of a run together; no interval with fewer than 3 runs), while the p-values "
                "treat rows as independent and are optimistic."
            )
    lines.append(
        "This is an association across a family trained under controlled settings; it does not "
        "show that spectral agreement causes accuracy (SCIENCE.md §1: when the noise is small, "
        "small error forces C toward A⁻¹, not the converse — a network can have C = A⁻¹ and a "
        "large error)."
    )
    # noise: the best linear estimator is the LMMSE, not A⁻¹
    for nu_key, e in refs["noise_levels"].items():
        er = e["errors"]
        if float(nu_key) > 0 and er.get("lmmse") is not None:
            lines.append(
                f"At noise {nu_key} the best linear estimator is the LMMSE, not A⁻¹: on the "
                f"common test set the LMMSE reaches error {_f(er['lmmse'], 3)} and A⁻¹ "
                f"{_f(er['A_inv'], 3)} (oracle Tikhonov {_f(er['tikhonov_oracle'], 3)}); "
                "a good network's C should approach the former."
            )
    r2 = _col(rows, "r2")
    if np.isfinite(r2).any():
        lines.append(
            f"R² of C on held-out probes ranges from {_f(np.nanmin(r2), 3)} to "
            f"{_f(np.nanmax(r2), 3)}; where it is low, C describes the network poorly and its "
            "distances say less about it."
        )
    lines.extend(ood_summary(rows, refs, cfg))
    return lines


def _side_of_lmmse(rows: list[dict], refs: dict) -> list[str]:
    """Where the models lie against the LMMSE on ‖CA − I‖_F/√n (0 = A⁻¹), per noise level."""
    out = []
    for nu_key, e in refs.get("noise_levels", {}).items():
        ref = e.get("lmmse_resid_CA_I_fro")
        if ref is None or float(nu_key) == 0:
            continue
        v = np.array(
            [
                r["resid_CA_I_fro"]
                for r in rows
                if f"{r['noise']:g}" == nu_key and r.get("resid_CA_I_fro") is not None
            ]
        )
        if v.size == 0:
            continue
        above, below = int(np.sum(v > ref)), int(np.sum(v < ref))
        head = (
            f"For reference, at noise {nu_key} the LMMSE itself has ‖CA − I‖_F/√n = "
            f"{_f(ref, 3)} (A⁻¹ has 0) and the models {_f(v.min(), 3)} to {_f(v.max(), 3)}"
        )
        if below == 0:
            out.append(
                head + ": every model is farther from inverting A than the LMMSE is, so on this "
                "measure moving toward A⁻¹ and moving toward the LMMSE are the same direction, "
                "and this family cannot tell the two apart on it."
            )
        elif above == 0:
            out.append(
                head + ": every model is closer to inverting A than the LMMSE is, so moving "
                "further toward A⁻¹ moves away from the optimal linear estimator."
            )
        else:
            out.append(
                head + f": {below} rows are closer to inverting A than the LMMSE is and {above} "
                "farther, so the family straddles the optimal linear estimator on this measure."
            )
    return out


def ood_summary(rows: list[dict], refs: dict, cfg: dict) -> list[str]:
    """How error, R² and the distances move out of distribution (computed sentences)."""
    out = []
    err = _col(rows, "err_net")
    for kind, desc in (
        ("prior", f"probes from prior {cfg['ood_prior']} at the training noise"),
        (
            "noise",
            "probes from the training prior at noise "
            + ", ".join(
                sorted({f"{ood_noise_level(nu, cfg['ood_noise']):g}" for nu in cfg["noise"]})
            ),
        ),
    ):
        e2 = _col(rows, f"ood_{kind}_err_net")
        ok = np.isfinite(err) & np.isfinite(e2)
        if not ok.any():
            continue
        ratio = e2[ok] / err[ok]
        worse = int(np.sum(e2[ok] > err[ok]))
        parts = [
            f"Out of distribution ({desc}), the networks' median test error goes from "
            f"{_f(np.median(err[ok]), 3)} to {_f(np.median(e2[ok]), 3)} (median ratio "
            f"{_f(np.median(ratio), 3)}; higher for {worse} of {ok.sum()} rows)"
        ]
        degenerate = degenerate_columns(rows, ["dist_inv_2", "dist_lmmse_2"])
        for col, name in (
            ("r2", "R²"),
            ("dist_inv_2", "distance of C to A⁻¹"),
            ("resid_CA_I_fro", "‖CA − I‖_F/√n"),
            ("dist_lmmse_2", "distance to that condition's LMMSE"),
        ):
            a, b = _col(rows, col), _col(rows, f"ood_{kind}_{col}")
            okc = np.isfinite(a) & np.isfinite(b)
            if okc.any() and col not in degenerate:
                parts.append(
                    f"median {name} {_f(np.median(a[okc]), 3)} → {_f(np.median(b[okc]), 3)}"
                )
        lm = [e[f"ood_{kind}"]["errors"].get("lmmse") for e in refs["noise_levels"].values()]
        lm = [v for v in lm if v is not None]
        tail = ""
        if lm:
            tail = (
                f" For comparison, the LMMSE built for that condition reaches "
                f"{'/'.join(_f(v, 3) for v in lm)}."
            )
        out.append("; ".join(parts) + "." + tail)
    return out


# --------------------------------------------------------------------------------------------
# outputs


def _plain_refs(refs: dict) -> dict:
    out = {"noise_levels": {}}
    for k, e in refs["noise_levels"].items():
        out["noise_levels"][k] = {kk: v for kk, v in e.items() if not kk.startswith("phi_")}
    return _plain(out)


def _write_outputs(out: Path, result: SweepResult, phis: np.ndarray, refs: dict, op, log):
    from fastinv.io import save_npz, write_text

    log(f"writing {out}/sweep.json, sweep.csv, summary.md and plots")
    rows = result.rows
    write_text(out / "sweep.csv", rows_to_csv(rows))
    arrays = {"phi": phis, "sigma_A": op.svd[1]}
    for k, e in refs["noise_levels"].items():
        arrays[f"phi_tikhonov_oracle_noise{k}"] = e["phi_tikhonov_oracle"]
        if e["phi_lmmse"] is not None:
            arrays[f"phi_lmmse_noise{k}"] = e["phi_lmmse"]
    save_npz(out / "filter_factors.npz", **arrays)
    plots = make_plots(out, rows, phis, refs, op.svd[1], result.config, result.correlations)
    write_text(out / "summary.md", summary_markdown(result, plots))


def rows_to_csv(rows: list[dict]) -> str:
    """The rows as CSV (columns in first-seen order; None as an empty field)."""
    cols: list[str] = []
    for r in rows:
        for c in r:
            if c not in cols:
                cols.append(c)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(
            [
                "" if r.get(c) is None else (repr(r[c]) if isinstance(r[c], float) else r[c])
                for c in cols
            ]
        )
    return buf.getvalue()


def _color_axis(rows: list[dict], cfg: dict) -> str:
    counts = {
        "epoch": len(cfg["epochs"]),
        "width": len(cfg["widths"]),
        "depth": len(cfg["depths"]),
        "samples": len(cfg["samples"]),
        "noise": len(cfg["noise"]),
        "seed": len(cfg["seeds"]),
    }
    return max(counts, key=lambda a: counts[a])  # ties: the first in this order


def _log_axis(ax, axis: str) -> None:
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(FormatStrFormatter("%g"))
    a.set_minor_formatter(NullFormatter())


def _log_if_wide(ax, vals, axis: str) -> None:
    v = np.asarray(vals, float)
    v = v[np.isfinite(v)]
    if v.size and v.min() > 0 and v.max() / v.min() > 10:
        _log_axis(ax, axis)


def make_plots(out: Path, rows, phis, refs, sigma, cfg, correlations) -> dict[str, str]:
    """scatter_error_distance.png, filter_factors_best_worst.png, ood_error.png."""
    from fastinv.io import save_figure
    from fastinv.report.writer import _plt

    plt = _plt()
    paths: dict[str, str] = {}
    err = _col(rows, "err_net")
    caxis = _color_axis(rows, cfg)
    cvals = np.array([r[caxis] for r in rows], dtype=float)
    levels = sorted(set(cvals.tolist()))

    def save(name, fig):
        fig.tight_layout()
        save_figure(out / f"{name}.png", fig, dpi=110)
        plt.close(fig)
        paths[name] = f"{name}.png"

    def scatter(ax, x, y):
        cmap = plt.get_cmap("viridis")
        for j, lv in enumerate(levels):
            sel = cvals == lv
            color = cmap(j / max(1, len(levels) - 1))
            ax.scatter(
                x[sel],
                y[sel],
                s=28,
                color=color,
                edgecolor="k",
                linewidth=0.4,
                label=f"{caxis} {lv:g}",
                alpha=0.9,
            )

    # 1. error against the distances: columns A⁻¹ / LMMSE, rows 2-norm / Frobenius
    degenerate = degenerate_columns(rows)
    panels = [
        [("dist_inv_2", "‖C − A⁻¹‖₂ / ‖A⁻¹‖₂"), ("dist_lmmse_2", "‖C − C_LMMSE‖₂ / ‖C_LMMSE‖₂")],
        [
            ("dist_inv_fro", "‖C − A⁻¹‖_F / ‖A⁻¹‖_F"),
            ("dist_lmmse_fro", "‖C − C_LMMSE‖_F / ‖C_LMMSE‖_F"),
        ],
    ]
    subst = {
        "dist_inv_2": ("resid_CA_I_2", "‖CA − I‖₂"),
        "dist_inv_fro": ("resid_CA_I_fro", "‖CA − I‖_F / √n"),
    }
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), sharey=True)
    by = {c.y: c for c in correlations if c.x == "err_net"}
    for i in range(2):
        for j in range(2):
            ax = axes[i, j]
            col, label = panels[i][j]
            note = ""
            if col in degenerate and col in subst:
                note = f"({label} is {degenerate[col]['max']:.6g} for all: uninformative)"
                col, label = subst[col]
            x = _col(rows, col)
            ok = np.isfinite(x) & np.isfinite(err)
            if ok.any():
                scatter(ax, x, err)
                if col not in degenerate:
                    _log_if_wide(ax, x[ok], "x")
                _log_if_wide(ax, err[ok], "y")
            else:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
            c = by.get(col)
            title = label + (f"\n{note}" if note else "")
            if c is not None:
                title += f"\nSpearman ρ = {_f(c.rho)} [{_f(c.ci_low)}, {_f(c.ci_high)}]"
            elif col in degenerate:
                title += "\nequal for all models to rounding: no ρ"
            ax.set_title(title, fontsize=9.5)
            ax.set_xlabel(label)
            if ax.get_xscale() == "linear":
                ax.ticklabel_format(axis="x", useOffset=False)
            ax.grid(True, which="both", alpha=0.3)
        axes[i, 0].set_ylabel("test error of the network (relative)")
    axes[0, 1].legend(fontsize=8, loc="best")
    fig.suptitle("Test error against the distance of C to A⁻¹ (left) and to the LMMSE (right)")
    save("scatter_error_distance", fig)

    # 2. filter factors of the best and the worst model
    ok = np.isfinite(err)
    if ok.any() and len(phis):
        ib = int(np.nanargmin(np.where(ok, err, np.nan)))
        iw = int(np.nanargmax(np.where(ok, err, np.nan)))
        fig, ax = plt.subplots(figsize=(8, 4.8))
        idx = np.arange(1, len(sigma) + 1)
        for i, tag, color in ((ib, "best", "C0"), (iw, "worst", "C3")):
            r = rows[i]
            ax.plot(
                idx,
                phis[i],
                "-",
                color=color,
                lw=1.6,
                label=f"{tag}: {r['key']} @ epoch {r['epoch']} (error {_f(r['err_net'], 3)})",
            )
        shown = set()
        for i in (ib, iw):
            nk = f"{rows[i]['noise']:g}"
            if nk in shown:
                continue
            shown.add(nk)
            e = refs["noise_levels"][nk]
            ax.plot(
                idx,
                e["phi_tikhonov_oracle"],
                "--",
                color="k",
                lw=1.1,
                label=f"Tikhonov, oracle λ = {e['tikhonov_oracle_lambda']:.2g} (noise {nk})",
            )
            if e["phi_lmmse"] is not None:
                ax.plot(idx, e["phi_lmmse"], ":", color="C2", lw=1.8, label=f"LMMSE (noise {nk})")
        ax.axhline(1.0, color="gray", lw=0.8, label="A⁻¹ (φ = 1)")
        lo = min(-0.1, float(np.nanmin(phis[[ib, iw]])))
        hi = max(1.2, float(np.nanmax(phis[[ib, iw]])))
        ax.set_ylim(max(lo, -1.0), min(hi, 2.0))
        ax.set_xlabel("index i of A's singular value σ_i (descending)")
        ax.set_ylabel("filter factor φ_i = σ_i v_iᵀ C u_i")
        ax.set_title("Filter factors of the best and the worst model")
        ax.legend(fontsize=7.5, loc="best")
        ax.grid(True, alpha=0.3)
        save("filter_factors_best_worst", fig)

    # 3. OOD error against in-distribution error
    fig, ax = plt.subplots(figsize=(6, 5.4))
    allv = [err]
    for kind, marker, label in (
        ("prior", "o", f"prior {cfg['ood_prior']}"),
        ("noise", "^", "other noise level"),
    ):
        y = _col(rows, f"ood_{kind}_err_net")
        okk = np.isfinite(y) & np.isfinite(err)
        if okk.any():
            ax.scatter(
                err[okk],
                y[okk],
                marker=marker,
                s=28,
                alpha=0.85,
                edgecolor="k",
                linewidth=0.4,
                label=f"OOD: {label}",
            )
            allv.append(y[okk])
    v = np.concatenate([a[np.isfinite(a)] for a in allv])
    if v.size:
        lo, hi = float(v.min()), float(v.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="no change (diagonal)")
        if lo > 0 and hi / lo > 10:
            _log_axis(ax, "x")
            _log_axis(ax, "y")
    ax.set_xlabel("in-distribution test error")
    ax.set_ylabel("out-of-distribution test error")
    ax.set_title("Out-of-distribution error against in-distribution error")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    save("ood_error", fig)
    return paths


def summary_markdown(result: SweepResult, plots: dict[str, str]) -> str:
    """summary.md: settings, the correlation table, the summary, references, plots."""
    cfg = result.config
    rows = result.rows
    lines = [
        f"# fastinv sweep: {cfg['operator']}, n = {cfg['n']}",
        "",
        f"Model {cfg['model']}, optimizer {cfg['optimizer']} (lr {cfg['lr']:g}, batch "
        f"{cfg['batch_size']}, {cfg['schedule']} schedule); prior {cfg['prior']}, "
        f"{cfg['noise_type']} noise. Axes: epochs {cfg['epochs']}, widths {cfg['widths']}, "
        f"depths {cfg['depths']}, samples {cfg['samples']}, noise {cfg['noise']}, seeds "
        f"{cfg['seeds']}: {len({r['key'] for r in rows})} models, {len(rows)} rows.",
        "",
        "## What the family supports",
        "",
        *[f"- {s}" for s in result.summary],
        "",
        "## Rank correlations (Spearman, 95 % bootstrap CI over runs)",
        "",
        "| x | y | ρ | 95 % CI | p (rows as independent) | partial ρ (control) | rows | runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in result.correlations:
        part = "—" if c.partial_rho is None else f"{_f(c.partial_rho, 3)} ({c.partial_on})"
        lines.append(
            f"| {c.x} | {c.y} | {_f(c.rho, 3)} | [{_f(c.ci_low, 3)}, "
            f"{_f(c.ci_high, 3)}] | {_f(c.p_value, 2)} | {part} | {c.n} | {c.n_groups} |"
        )
    lines += [
        "",
        "## References (common test set per noise level)",
        "",
        "| noise | A⁻¹ | Tikhonov (oracle λ) | λ | LMMSE | LMMSE ‖CA − I‖_F/√n "
        "| LMMSE covariance |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, e in result.references["noise_levels"].items():
        er = e["errors"]
        lines.append(
            f"| {k} | {_f(er['A_inv'], 3)} | {_f(er['tikhonov_oracle'], 3)} | "
            f"{_f(e['tikhonov_oracle_lambda'], 3)} | {_f(er['lmmse'], 3)} | "
            f"{_f(e.get('lmmse_resid_CA_I_fro'), 3)} | "
            f"{e['lmmse'].get('note') or e['lmmse'].get('prior_cov')} |"
        )
    lines += ["", "## Plots", ""]
    for name, p in plots.items():
        lines.append(f"![{name}]({p})")
        lines.append("")
    lines.append("Rows: sweep.csv / sweep.json; per-model files: models/.")
    return "\n".join(lines) + "\n"
