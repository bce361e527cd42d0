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
(docs/science.md §1: small error forces C toward A⁻¹ when the noise is small, not the converse; with
noise the best linear estimator is the LMMSE, not A⁻¹).

Files in ``out``: sweep_config.json (written first), models/<key>.json (one per trained model,
written atomically as soon as it finishes; ``resume=True`` skips models whose file exists),
sweep.json, sweep.csv, filter_factors.npz, summary.md, the PNG plots and manifest.json. The
folder is published whole (:class:`fastinv.io.OutFolder`): the sweep works in the hidden
``.NAME.partial`` beside ``out``, which an interrupted or killed sweep leaves behind (marked
incomplete) and ``resume=True`` continues; resuming a finished sweep works on a copy of its
model files and replaces it only when done.

This module checks the settings, builds the shared references and orchestrates the run; the
models are trained and evaluated in :mod:`fastinv.workflows.sweep_pool`, the statistics and
the words are :mod:`fastinv.workflows.sweep_summary`, the figures
:mod:`fastinv.report.sweep_plots`.

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
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastinv._progress import Reporter, Stopwatch
from fastinv._validation import check_choice, check_float, check_int
from fastinv.errors import FastinvError
from fastinv.io import OutFolder, save_npz, to_jsonable, write_json, write_text
from fastinv.linalg.stats import relative_error
from fastinv.workflows.memory import check_sweep_memory
from fastinv.workflows.sweep_cluster import check_cluster, cluster_device, run_on_cluster
from fastinv.workflows.sweep_pool import (
    SETTING_COLUMNS,
    Condition,
    derive_seed,
    model_key,
    model_settings,
    norm2,
    ood_noise_level,
    resid_fro,
    run_models,
)
from fastinv.workflows.sweep_summary import (
    DEGENERATE_SPREAD,
    MEASURES,
    degenerate_columns,
    make_summary,
    ood_summary,
    rank_correlations,
    summary_markdown,
)

__all__ = [
    "AXES",
    "DEGENERATE_SPREAD",
    "MEASURES",
    "RESUME_KEYS",
    "SETTING_COLUMNS",
    "SweepResult",
    "as_list",
    "default_ood_prior",
    "degenerate_columns",
    "float_list",
    "int_list",
    "make_plots",
    "make_summary",
    "model_key",
    "ood_noise_level",
    "ood_summary",
    "rows_to_csv",
    "run_sweep",
    "summary_markdown",
]

#: the axes of the family, in the order of the model keys
AXES = ("widths", "depths", "samples", "noise", "seeds")
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
#: the options of sweep_config.json after the operator's entries, in their order there
_CONFIG_OPTIONS = (
    "prior",
    "prior_params",
    "noise_type",
    "ood_prior",
    "ood_noise",
    "model",
    "activation",
    "lr",
    "batch_size",
    "optimizer",
    "schedule",
    "probes",
    "test_samples",
    "seed",
)
_NOISE_TYPES = ("relative", "absolute")


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
# the sweep: an orchestrator of named steps


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
    cluster: str | None = None,
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
    cluster : str, optional
        Run each model as a task of a Dask distributed cluster instead:
        ``"tcp://HOST:PORT"`` (a running scheduler) or ``"local:N"`` (N local worker
        processes, started and closed here); see :mod:`fastinv.workflows.sweep_cluster`.
        Needs the ``cluster`` extra; excludes ``jobs`` > 1.
    probes, test_samples : int, optional
        Probes for fitting C (default max(2000, 4n), 20 % held out for R²) and test pairs
        (default max(1000, 2n)) per condition.
    out : str or Path, optional
        Output folder; nothing is written when None.
    resume : bool
        Continue the sweep in ``out`` (the partial folder an interrupted sweep kept, else a
        finished sweep): models whose file exists are loaded, not retrained. An ``out`` that
        holds files but no sweep is refused.
    force : bool
        Replace an ``out`` folder that already holds (fastinv's) files, recomputing
        everything; the old folder is removed once the new one is in place.
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
        holds files without ``resume``/``force`` (or no sweep with ``resume``), is a file, cannot
        be written or is being written by another process, ``resume`` with other settings
        than the stored sweep, a cluster that is malformed, cannot be reached or lacks Dask, or
        models that failed for reasons of their own (named in one error once the others
        ended; the finished ones are kept for ``resume``).
    """
    given = dict(locals())  # the arguments as passed; _check_settings checks and completes them
    clock = Stopwatch()
    rep = Reporter(progress, prefix="fastinv sweep")
    opts = _check_settings(given)
    check_sweep_memory(operator, n, operator_params, opts)  # planned: nothing is built yet
    folder = _open_out_folder(out, resume=resume, force=force)
    if folder is None:
        return _sweep(operator, n, operator_params, opts, None, rep, clock)
    with folder:
        return _sweep(operator, n, operator_params, opts, folder, rep, clock)


def _sweep(operator, n, operator_params, opts: dict, folder, rep, clock) -> SweepResult:
    """The sweep once its settings are checked and its folder (if any) is open."""
    axes = opts["axes"]
    op = _make_operator(operator, n, operator_params, opts)
    cfg = _sweep_config(op, operator, opts)
    run_cfg = {**cfg, **axes, "device": str(opts["device"]), "jobs": opts["jobs"]}
    if folder is not None:
        _start_folder(folder, cfg, run_cfg)

    with rep.stage("references", f"operator {op.name}, n = {op.n}; building the references"):
        ctx, refs = _build_context(op, {**cfg, "device": str(opts["device"])}, axes["noise"], rep)

    grid = _plan_models(cfg, axes)
    store = _ModelStore(folder, len(grid), rep)
    if folder is not None and folder.resume:
        store.load(grid)
    todo = [st for st in grid if st["key"] not in store.results]
    with rep.stage("models"):
        if opts["cluster"] is None:
            pool = opts["device"].type == "cpu"
            run_models(todo, ctx, pool=pool, jobs=opts["jobs"], finished=store.add, log=rep)
        else:
            gpu = opts["device"].type == "cuda"
            run_on_cluster(todo, ctx, opts["cluster"], gpu=gpu, finished=store.add, log=rep)

    rows, phis = _collect_rows(grid, store.results)
    correlations = rank_correlations(rows, axes["samples"], opts["n_boot"])
    result = SweepResult(
        rows=rows,
        correlations=correlations,
        summary=make_summary(rows, correlations, refs, run_cfg),
        references=_plain_refs(refs),
        config=run_cfg,
        out=None if folder is None else str(folder.given),
        timings={
            "references": round(rep.timings["references"], 3),
            "models": round(rep.timings["models"], 3),
            "models_trained": len(todo),
        },
    )
    if folder is not None:
        _write_outputs(folder.work, result, phis, refs, op, rep)
    result.timings["total"] = round(clock.seconds, 3)
    if folder is not None:
        write_json(folder.work / "sweep.json", result.to_dict())
        folder.publish()
    return result


# --------------------------------------------------------------------------------------------
# step 1: check the settings


def as_list(v, what: str) -> list:
    """A list from a comma-separated string, a sequence or a single value.

    Raises
    ------
    FastinvError
        A string with an empty entry (``"1,,2"``).
    """
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


def int_list(v, what: str, *, lo: int) -> list[int]:
    """Sorted distinct integers >= ``lo`` (a sweep axis) from ``"5,20,60"``, a sequence or one
    value; integral floats are accepted, booleans are not.

    Raises
    ------
    FastinvError
        No values, a value that is not an integer, or one below ``lo``.
    """
    items = as_list(v, what)
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


def float_list(v, what: str) -> list[float]:
    """Sorted distinct finite numbers >= 0 (a sweep axis) from ``"0,0.01"``, a sequence or one
    value.

    Raises
    ------
    FastinvError
        No values, a value that is not a number, or a negative or non-finite one.
    """
    items = as_list(v, what)
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


def default_ood_prior(prior: str) -> str:
    """The prior used out of distribution when none is given: one that differs from ``prior``."""
    return "piecewise_constant" if prior != "piecewise_constant" else "smooth"


def _check_settings(given: dict) -> dict:
    """The arguments of :func:`run_sweep`, checked in the order their errors are reported and
    completed: ``axes`` (sorted lists), ``ood_prior``, ``ood_noise``, ``device`` (resolved),
    ``lr`` (float) and the integers as Python ints."""
    from fastinv._device import resolve_device

    opts = dict(given)
    opts["axes"] = _check_axes(given)
    opts["jobs"] = check_int(given["jobs"], "jobs", lo=1)
    opts["n_boot"] = check_int(given["n_boot"], "n_boot", lo=100)
    opts["seed"] = check_int(given["seed"], "seed", lo=0)
    for what in ("probes", "test_samples"):
        if given[what] is not None:
            opts[what] = check_int(given[what], what, lo=10)
    opts["ood_noise"] = _check_ood_noise(given["ood_noise"])
    check_choice(given["noise_type"], "noise_type", _NOISE_TYPES, normalize=False)
    opts["ood_prior"] = _check_ood_prior(given["prior"], given["ood_prior"])
    opts["cluster"] = check_cluster(given["cluster"], opts["jobs"])
    if opts["cluster"] is None:
        opts["device"] = resolve_device(given["device"])
    else:
        opts["device"] = cluster_device(given["device"], opts["cluster"])
    _check_training(given)
    opts["lr"] = check_float(given["lr"], "lr", lo=0, lo_open=True)
    opts["prior_params"] = dict(given["prior_params"] or {})
    return opts


def _check_axes(given: dict) -> dict:
    """The axes as sorted lists of distinct values, in the order of sweep_config.json."""
    checked = {
        "epochs": int_list(given["epochs"], "epochs", lo=1),
        "widths": int_list(given["widths"], "widths", lo=1),
        "depths": int_list(given["depths"], "depths", lo=0),
        "samples": int_list(given["samples"], "samples", lo=2),
        "seeds": int_list(given["seeds"], "seeds", lo=0),
        "noise": float_list(given["noise"], "noise"),
    }
    return {k: checked[k] for k in ("epochs", "widths", "depths", "samples", "noise", "seeds")}


def _check_ood_noise(ood_noise) -> float | None:
    if ood_noise is None:
        return None
    levels = float_list(ood_noise, "ood_noise")
    if len(levels) != 1:
        raise FastinvError("ood_noise takes one noise level, e.g. 0.02")
    return levels[0]


def _check_ood_prior(prior: str, ood_prior: str | None) -> str:
    ood_prior = ood_prior or default_ood_prior(prior)
    if ood_prior == prior:
        raise FastinvError(
            f"the out-of-distribution prior must differ from the training prior {prior!r}; "
            f"choose another --ood-prior, e.g. {default_ood_prior(prior)}"
        )
    return ood_prior


def _check_training(given: dict) -> None:
    from fastinv.nets.spec import ACTIVATIONS, MODELS, OPTIMIZERS, SCHEDULES

    for what, allowed in (
        ("model", tuple(m for m in MODELS if m != "cnn")),  # a sweep's models take rows
        ("activation", ACTIVATIONS),
        ("optimizer", OPTIMIZERS),
        ("schedule", SCHEDULES),
    ):
        check_choice(given[what], what, allowed, normalize=False)


def _make_operator(operator, n, operator_params, opts: dict):
    """The operator; the priors are made once here so that a bad prior fails early."""
    from fastinv.problem.operators import make_operator
    from fastinv.problem.priors import make_prior

    op = make_operator(operator, n, **(operator_params or {}))
    make_prior(opts["prior"], op.n, **opts["prior_params"])
    make_prior(opts["ood_prior"], op.n)
    return op


def _sha256(A: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(A, dtype=np.float64).tobytes()).hexdigest()[:16]


def _sweep_config(op, operator, opts: dict) -> dict:
    """The settings a stored sweep must share with ``resume=True``, and their fingerprint."""
    cfg = {
        "operator": str(operator),
        "n": int(op.n),
        "operator_params": dict(op.params or {}),
        "operator_sha256": _sha256(op.A),
        **{k: opts[k] for k in _CONFIG_OPTIONS},
    }
    cfg["fingerprint"] = hashlib.sha256(
        json.dumps({k: cfg[k] for k in RESUME_KEYS}, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return cfg


# --------------------------------------------------------------------------------------------
# step 2: the output folder (new, or a sweep to resume)


def _open_out_folder(out, *, resume: bool, force: bool) -> OutFolder | None:
    """The output folder, checked and locked before any computation (None without ``out``)."""
    if out is None:
        return None
    path = Path(out)
    if not (resume or force) and path.is_dir() and any(path.iterdir()):
        raise FastinvError(
            f"output folder {out} already holds files; pass --resume to continue "
            "the sweep stored there, --force to overwrite it, or choose another --out"
        )
    folder = OutFolder(out, force=force, resume=resume, command="sweep", resumable=True).open()
    stored = folder.path / "sweep_config.json"
    if resume and not folder.resumed and any(folder.path.glob("*")) and not stored.is_file():
        folder.close()
        raise FastinvError(
            f"--resume: output folder {out} holds no sweep (no sweep_config.json); choose "
            "another --out, or pass --force instead of --resume to replace it"
        )
    return folder


def _start_folder(folder: OutFolder, cfg: dict, run_cfg: dict) -> None:
    """Check a sweep to resume against ``cfg`` (a kept partial folder, or a finished sweep
    whose model files are copied to continue on), then write sweep_config.json."""
    from fastinv import __version__

    if folder.resumed:
        _check_resumable(folder.work, folder.shown, cfg)
    elif folder.resume and (folder.path / "sweep_config.json").is_file():
        _check_resumable(folder.path, folder.shown, cfg)
        (folder.work / "models").mkdir(exist_ok=True)
        for p in sorted((folder.path / "models").glob("*.json")):
            shutil.copy2(p, folder.work / "models" / p.name)
    write_json(folder.work / "sweep_config.json", {**run_cfg, "fastinv_version": __version__})


def _check_resumable(where: Path, shown: str, cfg: dict) -> None:
    """A sweep stored in ``where`` (if any) must have been run with the same settings."""
    stored_path = where / "sweep_config.json"
    if not stored_path.is_file():
        return
    try:
        stored = json.loads(stored_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FastinvError(f"cannot read {stored_path}: {e}") from None
    for k in RESUME_KEYS:
        if stored.get(k) != cfg.get(k):
            raise FastinvError(
                f"--resume: the sweep in {shown} was run with {k} = {stored.get(k)!r}, "
                f"not {cfg.get(k)!r}; give the same settings or a new --out folder"
            )


# --------------------------------------------------------------------------------------------
# step 3: the references, built once per sweep


def _build_context(op, cfg: dict, noise_levels: list[float], log) -> tuple[dict, dict]:
    """Everything the per-model evaluations share (plain arrays; picklable for workers), and
    the references per noise level."""
    U, s, Vt = op.svd
    A_inv, conds, refs = _reference_context(op, cfg, noise_levels, log)
    inv_svd, ks = _inverse_svd(s, U, Vt, op.n)
    return {
        "A": op.A,
        "U": U,
        "s": s,
        "Vt": Vt,
        "A_inv": A_inv,
        "A_inv_norm2": norm2(A_inv),
        "A_inv_fro": float(np.linalg.norm(A_inv)),
        "inv_svd": inv_svd,
        "ks": ks,
        "conds": conds,
        "phi_lmmse": {
            f"{nu:g}": refs["noise_levels"][f"{nu:g}"]["phi_lmmse"] for nu in noise_levels
        },
        "noise_levels": list(noise_levels),
        "cfg": cfg,
    }, refs


def _inverse_svd(s, U, Vt, n: int) -> tuple[tuple, list[int]]:
    """The SVD of A⁺ from A's (its top singular vectors are A's bottom ones), and the ranks k
    at which principal angles are measured."""
    r = int(np.sum(s > (s[0] * n * np.finfo(float).eps if s[0] > 0 else 0)))
    inv_svd = (Vt[:r][::-1].T.copy(), 1.0 / s[:r][::-1], U[:, :r][:, ::-1].T.copy())
    ks = sorted({k for k in (1, 5, 10, max(1, n // 4)) if k <= r})
    return inv_svd, ks


def _reference_context(op, cfg: dict, noise_levels: list[float], log) -> tuple:
    """The sweep's references: ``(A_inv, conditions, refs)``.

    A⁺ (the pseudo-inverse); per noise level i the evaluation conditions ``in:i``,
    ``prior:i`` and ``noise:i`` (test set, probes and the LMMSE there); and ``refs`` with,
    per noise level, the errors of A⁺, the LMMSE and the oracle Tikhonov filter on the common
    test sets. Kept apart so that a shared reference builder can take its place.
    """
    from fastinv.linalg import estimators
    from fastinv.problem.priors import make_prior

    U, s, Vt = op.svd
    n = op.n
    A_inv = estimators.pinv(op.A, svd=(U, s, Vt))
    priors = {
        cfg["prior"]: make_prior(cfg["prior"], n, **(cfg["prior_params"] or {})),
        cfg["ood_prior"]: make_prior(cfg["ood_prior"], n),
    }
    sizes = (cfg["test_samples"] or max(1000, 2 * n), cfg["probes"] or max(2000, 4 * n))
    conds: dict[str, Condition] = {}
    refs: dict = {"noise_levels": {}}
    for i, nu in enumerate(noise_levels):
        log(f"references for noise {nu:g}")
        for kind, prior_name, level in (
            ("in", cfg["prior"], nu),
            ("prior", cfg["ood_prior"], nu),
            ("noise", cfg["prior"], ood_noise_level(nu, cfg["ood_noise"])),
        ):
            conds[f"{kind}:{i}"] = _condition(op, A_inv, cfg, priors, prior_name, level, sizes)
        refs["noise_levels"][f"{nu:g}"] = _reference_entry(op, A_inv, nu, conds, i)
    return A_inv, conds, refs


def _condition(op, A_inv, cfg: dict, priors: dict, prior_name: str, nu: float, sizes):
    """One evaluation condition: test pairs and probes from ``prior_name`` at noise ``nu``
    (seeded by the sweep seed and whether the prior is the training one), and its LMMSE."""
    from fastinv.problem.data import generate

    n_test, n_probe = sizes
    seed = cfg["seed"]
    gen = dict(prior=priors[prior_name], noise=nu, noise_type=cfg["noise_type"])
    tag = 0 if prior_name == cfg["prior"] else 1
    Xt, Yt = generate(op, n_samples=n_test, seed=derive_seed(seed, 2, tag), **gen)
    Xp, Yp = generate(op, n_samples=n_probe, seed=derive_seed(seed, 3, tag), **gen)
    C, b, info = _lmmse_ref(
        op.A, A_inv, op.singular, priors[prior_name], nu, cfg["noise_type"], seed
    )
    return Condition(
        prior_name,
        nu,
        Yt,
        Xt,
        Yp,
        Xp,
        C,
        b,
        None if C is None else norm2(C),
        None if C is None else float(np.linalg.norm(C)),
        info,
    )


def _lmmse_ref(A, pinv_A, singular: bool, prior, noise: float, noise_type: str, seed: int):
    """(C, b, info) of the LMMSE for ``prior`` at ``noise``, or (None, None, info)."""
    from fastinv.auditing.references import lmmse_reference, prior_moments, sample_moments

    moments = prior_moments(prior)
    if moments is None:  # no analytic covariance: estimate it from the prior's samples
        m = max(20000, 20 * A.shape[0])
        mu, Sx = sample_moments(prior.sample(m, seed=derive_seed(seed, 7)))
        moments = (mu, Sx, f"estimated from {m} prior samples")
    noise_model = {"level": noise, "type": noise_type}
    ref = lmmse_reference(A, *moments, noise_model, exact_inverse=None if singular else pinv_A)
    return ref.C, ref.b, ref.info


def _lmmse_error(c: Condition) -> float | None:
    if c.lmmse is None:
        return None
    return relative_error(c.Y_test @ c.lmmse.T + c.lmmse_b, c.X_test)


def _reference_entry(op, A_inv, nu: float, conds: dict, i: int) -> dict:
    """The references of noise level ``i``: oracle Tikhonov λ, the LMMSE's distances to
    inverting A, the test errors of A⁺, Tikhonov and the LMMSE (also out of distribution),
    and their filter factors."""
    from fastinv.linalg import estimators, spectral

    A = op.A
    U, s, Vt = op.svd
    c = conds[f"in:{i}"]
    lam = float(estimators.oracle_lambda((U, s, Vt), c.Y_probe, c.X_probe).value)
    tik = estimators.tikhonov(A, lam, svd=(U, s, Vt))
    entry = {
        "noise": nu,
        "lmmse_resid_CA_I_fro": None if c.lmmse is None else resid_fro(c.lmmse, A),
        "lmmse_dist_inv_2": None if c.lmmse is None else norm2(c.lmmse - A_inv) / norm2(A_inv),
        "tikhonov_oracle_resid_CA_I_fro": resid_fro(tik, A),
        "tikhonov_oracle_lambda": lam,
        "lmmse": c.info,
        "errors": {
            "A_inv": relative_error(c.Y_test @ A_inv.T, c.X_test),
            "tikhonov_oracle": relative_error(c.Y_test @ tik.T, c.X_test),
            "lmmse": _lmmse_error(c),
        },
        "phi_tikhonov_oracle": estimators.filter_factors_tikhonov(s, lam),
        "phi_lmmse": None if c.lmmse is None else spectral.filter_factors(c.lmmse, U, s, Vt)[0],
    }
    for kind in ("prior", "noise"):
        o = conds[f"{kind}:{i}"]
        entry[f"ood_{kind}"] = {
            "prior": o.prior,
            "noise": o.noise,
            "lmmse": o.info,
            "errors": {
                "A_inv": relative_error(o.Y_test @ A_inv.T, o.X_test),
                "lmmse": _lmmse_error(o),
            },
        }
    return entry


# --------------------------------------------------------------------------------------------
# step 4: plan the models and run those not done yet


def _plan_models(cfg: dict, axes: dict) -> list[dict]:
    """The settings of every model of the family, in the order of the rows."""
    return [
        model_settings(cfg, w, d, N, nu, sd, axes["epochs"])
        for w in axes["widths"]
        for d in axes["depths"]
        for N in axes["samples"]
        for nu in axes["noise"]
        for sd in axes["seeds"]
    ]


class _ModelStore:
    """The finished models by key, as plain JSON values; with an output folder each is also
    written to models/<key>.json as soon as it finishes."""

    def __init__(self, folder: OutFolder | None, total: int, log):
        self.folder = folder
        self.out_path = None if folder is None else folder.work
        self.total = total
        self.log = log
        self.results: dict[str, dict] = {}

    def load(self, grid: list[dict]) -> None:
        """Take the models whose file exists (``resume``)."""
        for st in grid:
            p = self.out_path / "models" / f"{st['key']}.json"
            if p.is_file():
                self.results[st["key"]] = _load_model_file(p, st)
        if self.results:
            self.log(f"resuming: {len(self.results)} of {len(grid)} models already done")

    def add(self, res: dict) -> None:
        """Keep (and write) one finished model; log its last checkpoint's error."""
        key = res["settings"]["key"]
        self.results[key] = json.loads(json.dumps(to_jsonable(res)))  # as a reloaded file
        if self.out_path is not None:
            write_json(self.out_path / "models" / f"{key}.json", res)
            self.folder.keep_on_failure = True  # an interrupted sweep keeps what it has done
        r = res["rows"][-1]
        self.log(
            f"[{len(self.results)}/{self.total}] {key}: error {r['err_net']:.4g} at epoch "
            f"{r['epoch']} ({res['timing']['train']:.1f} s training)"
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


# --------------------------------------------------------------------------------------------
# step 5: collect the rows


def _collect_rows(grid: list[dict], results: dict) -> tuple[list[dict], np.ndarray]:
    """All rows and filter factors, model by model in the order of ``grid``."""
    rows: list[dict] = []
    phis: list = []
    for st in grid:
        res = results[st["key"]]
        rows.extend(res["rows"])
        phis.extend(res["phi"])
    return rows, np.asarray(phis, dtype=float)


# --------------------------------------------------------------------------------------------
# step 6: outputs


def _plain_refs(refs: dict) -> dict:
    out = {"noise_levels": {}}
    for k, e in refs["noise_levels"].items():
        out["noise_levels"][k] = {kk: v for kk, v in e.items() if not kk.startswith("phi_")}
    return to_jsonable(out)


def _write_outputs(out: Path, result: SweepResult, phis: np.ndarray, refs: dict, op, log):
    log(f"writing {result.out}/sweep.json, sweep.csv, summary.md and plots")
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


def make_plots(out: Path, rows, phis, refs, sigma, cfg, correlations) -> dict[str, str]:
    """The sweep's PNG plots: :func:`fastinv.report.sweep_plots.make_plots`, imported on use
    so that this module stays light."""
    from fastinv.report.sweep_plots import make_plots as draw

    return draw(out, rows, phis, refs, sigma, cfg, correlations)


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
