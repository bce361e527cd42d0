"""The statistics and the words of a sweep: degenerate columns, Spearman correlations, the
plain-words summary (one function per paragraph) and summary.md.

Every sentence is computed from the rows, the correlations and the references; none is canned
except the closing caveat that an association is not a cause.
"""

from __future__ import annotations

import numpy as np

from fastinv.errors import FastinvError
from fastinv.workflows.sweep_pool import ood_noise_level

__all__ = [
    "DEGENERATE_SPREAD",
    "MEASURES",
    "column",
    "degenerate_columns",
    "fmt",
    "make_summary",
    "ood_summary",
    "rank_correlations",
    "summary_markdown",
]

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
#: the measures of closeness to A⁻¹ (as opposed to the LMMSE)
_INVERSE_MEASURES = ("dist_inv_2", "dist_inv_fro", "resid_CA_I_2", "resid_CA_I_fro")


# --------------------------------------------------------------------------------------------
# columns and statistics


def column(rows: list[dict], name: str) -> np.ndarray:
    """Column ``name`` of the rows as floats (NaN where missing or None)."""
    return np.array([np.nan if r.get(name) is None else float(r[name]) for r in rows])


def fmt(x, d: int = 2) -> str:
    """A number for a sentence: ``d`` decimals, or ``d`` significant digits when tiny or large;
    "n/a" for None and non-finite values."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{d}g}" if abs(x) < 1e-2 or abs(x) >= 1e3 else f"{x:.{d}f}"


def degenerate_columns(rows: list[dict], names=None) -> dict[str, dict]:
    """Columns whose finite values agree to within rounding: {name: {"min", "max"}}.

    Example: with ‖A⁻¹‖₂ = 1e17, ‖C − A⁻¹‖₂/‖A⁻¹‖₂ = 1 ± ‖C‖₂/‖A⁻¹‖₂ for every C, so its
    ranks are decided by rounding errors; a Spearman ρ on it would be noise.
    """
    out = {}
    for name in names or [m for m, _ in MEASURES]:
        v = column(rows, name)
        v = v[np.isfinite(v)]
        if v.size < 2:
            continue
        scale = float(np.max(np.abs(v)))
        if scale == 0 or (v.max() - v.min()) <= DEGENERATE_SPREAD * scale:
            out[name] = {"min": float(v.min()), "max": float(v.max())}
    return out


def rank_correlations(rows: list[dict], samples: list[int], n_boot: int = 2000) -> list:
    """Spearman ρ of the network's test error with every non-degenerate measure and with its
    out-of-distribution errors.

    Parameters
    ----------
    rows : list of dict
        The sweep's rows.
    samples : list of int
        The training-set sizes of the sweep; when more than one, a partial ρ on the size is
        added.
    n_boot : int
        Bootstrap resamples (of whole runs: the checkpoints of one run are not independent).

    Returns
    -------
    list of fastinv.linalg.stats.Correlation
    """
    from fastinv.linalg.stats import correlate

    err = column(rows, "err_net")
    control = column(rows, "samples") if len(samples) > 1 else None
    # checkpoints of one run are not independent: the intervals resample whole runs
    runs = np.array([str(r.get("key")) for r in rows])
    skip = degenerate_columns(rows)
    out = []
    names = [m for m, _ in MEASURES if m not in skip]
    names += ["ood_prior_err_net", "ood_noise_err_net"]
    for yname in names:
        y = column(rows, yname)
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


# --------------------------------------------------------------------------------------------
# the summary


def make_summary(rows: list[dict], correlations: list, refs: dict, cfg: dict) -> list[str]:
    """Plain-words findings computed from the rows, the correlations and the references."""
    n_runs = len({r["key"] for r in rows})
    n_ep = len(cfg["epochs"])
    by = {c.y: c for c in correlations if c.x == "err_net"}
    degenerate = degenerate_columns(rows)
    what = (
        f"{len(rows)} evaluations ({n_runs} trained models × {n_ep} checkpoint epochs)"
        if n_ep > 1
        else f"{n_runs} models"
    )
    lines = _degenerate_paragraphs(degenerate)
    inv_name, lm_name = _headline_measures(degenerate)
    c_inv, c_lm = by.get(inv_name), by.get(lm_name)
    if c_inv is None and c_lm is None:
        lines += _too_few_paragraph(what)
    else:
        noisy = any(nu > 0 for nu in cfg["noise"])
        lines += _association_paragraph(what, c_inv, c_lm)
        lines += _comparison_paragraph(rows, noisy, c_inv, c_lm)
        lines += _far_from_inverse_paragraph(rows, refs)
        lines += _reversed_sign_paragraph(by)
        lines += _side_of_lmmse(rows, refs)
        lines += _best_measure_paragraph(by)
        lines += _partial_paragraph(c_inv, c_lm)
        lines += _dependence_paragraph(n_ep, n_runs)
    lines += _causation_paragraph()
    lines += _noise_paragraphs(refs)
    lines += _r2_paragraph(rows)
    lines += ood_summary(rows, refs, cfg)
    return lines


def _headline_measures(degenerate: dict) -> tuple[str, str]:
    """The A⁻¹-side and the LMMSE-side measure the summary leads with (the 2-norm distances,
    unless they are degenerate)."""
    inv_name = "dist_inv_2" if "dist_inv_2" not in degenerate else "resid_CA_I_fro"
    lm_name = "dist_lmmse_2" if "dist_lmmse_2" not in degenerate else "dist_lmmse_fro"
    return inv_name, lm_name


def _rho_text(c) -> str:
    return f"ρ = {fmt(c.rho)}, 95 % CI [{fmt(c.ci_low)}, {fmt(c.ci_high)}]"


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


def _degenerate_paragraphs(degenerate: dict) -> list[str]:
    """Which measures are equal for every model to within rounding, hence not correlated."""
    lines = []
    if "dist_inv_2" in degenerate:
        d = degenerate["dist_inv_2"]
        lines.append(
            f"The relative distance ‖C − A⁻¹‖₂/‖A⁻¹‖₂ lies between {d['min']:.15g} and "
            f"{d['max']:.15g} for every model: ‖A⁻¹‖₂ dwarfs any C, so this distance cannot "
            "rank the models (a ρ on it would rank rounding errors) and is not correlated; "
            "the A⁻¹ side below uses ‖CA − I‖_F/√n, how far C is from inverting A."
        )
    others = [n for n in degenerate if n not in ("dist_inv_2", "dist_lmmse_2")]
    if others:
        lines.append(
            "Also equal for every model to within rounding, hence not correlated: "
            + ", ".join(f"the {_LABEL[n]} ({degenerate[n]['max']:.6g})" for n in others)
            + "."
        )
    if "dist_lmmse_2" in degenerate:
        lines.append(
            "The relative 2-norm distance to the LMMSE is the same for every model to within "
            "rounding; the LMMSE side below uses the Frobenius distance."
        )
    return lines


def _too_few_paragraph(what: str) -> list[str]:
    return [
        f"Across {what} there are too few finite, distinct values for rank correlations "
        "(at least 3 models are needed); widen the sweep."
    ]


def _association_paragraph(what: str, c_inv, c_lm) -> list[str]:
    """How test error goes with the headline distances to A⁻¹ and to the LMMSE."""
    parts = []
    if c_inv is not None:
        parts.append(_assoc(c_inv, _LABEL[c_inv.y]))
    if c_lm is not None:
        s = _assoc(c_lm, _LABEL[c_lm.y])
        parts.append(s.replace("lower test error goes with", "it goes with", 1) if parts else s)
    return [f"Across {what}, " + "; ".join(parts) + "."]


def _comparison_paragraph(rows: list[dict], noisy: bool, c_inv, c_lm) -> list[str]:
    """Whether the two distances coincide (no noise) or which one tracks test error better."""
    coincide = all(r.get("dist_lmmse_2") == r.get("dist_inv_2") for r in rows)
    if not noisy and coincide:
        return ["Without noise (and A invertible) the LMMSE is A⁻¹, so the two distances coincide."]
    if c_inv is None or c_lm is None:
        return []
    a, b = abs(c_lm.rho), abs(c_inv.rho)
    if not (np.isfinite(a) and np.isfinite(b)):
        return []
    lm_label, inv_label = _LABEL[c_lm.y], _LABEL[c_inv.y]
    if abs(a - b) < 0.05:
        return [
            f"The {lm_label} and the {inv_label} track test error "
            f"about equally (|ρ| {fmt(a)} and {fmt(b)})."
        ]
    (bn, ba), (wn, wb) = sorted(((c_lm.y, a), (c_inv.y, b)), key=lambda p: -p[1])
    hi_c, lo_c = (c_lm, c_inv) if a > b else (c_inv, c_lm)
    overlap = not (hi_c.ci_low > lo_c.ci_high)
    return [
        f"The {_LABEL[bn]} tracks test error more closely than the {_LABEL[wn]} "
        f"(|ρ| {fmt(ba)} vs {fmt(wb)})"
        + (
            ", though the two intervals overlap."
            if overlap
            else ", and the two intervals do not overlap."
        )
    ]


def _far_from_inverse_paragraph(rows: list[dict], refs: dict) -> list[str]:
    """When no model's C is near A⁻¹ (relative distance above 0.5 everywhere)."""
    d_inv = column(rows, "dist_inv_2")
    if not (np.isfinite(d_inv).any() and np.nanmin(d_inv) > 0.5):
        return []
    lm_d = [e.get("lmmse_dist_inv_2") for e in refs.get("noise_levels", {}).values()]
    lm_d = [v for v in lm_d if v is not None]
    return [
        f"No model's C comes close to A⁻¹: ‖C − A⁻¹‖₂/‖A⁻¹‖₂ ≥ {fmt(np.nanmin(d_inv), 3)} "
        "for every row"
        + (
            f" (the LMMSE's own distance to A⁻¹ is {'/'.join(fmt(v, 3) for v in lm_d)})"
            if lm_d
            else ""
        )
        + "."
    ]


def _reversed_sign_paragraph(by: dict) -> list[str]:
    """Measures of closeness to A⁻¹ on which lower error goes with being farther away."""
    opposite = [
        by[mm] for mm in _INVERSE_MEASURES if mm in by and by[mm].excludes_zero and by[mm].rho < 0
    ]
    if not opposite:
        return []
    return [
        "On some measures of closeness to A⁻¹ the sign is reversed: lower test error goes "
        "with a LARGER "
        + " and a larger ".join(f"{_LABEL[c.y]} ({_rho_text(c)})" for c in opposite)
        + "; being nearer to A⁻¹ is not what the accurate models share."
    ]


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
        out.append(_side_of_lmmse_sentence(nu_key, ref, v))
    return out


def _side_of_lmmse_sentence(nu_key: str, ref: float, v: np.ndarray) -> str:
    above, below = int(np.sum(v > ref)), int(np.sum(v < ref))
    head = (
        f"For reference, at noise {nu_key} the LMMSE itself has ‖CA − I‖_F/√n = "
        f"{fmt(ref, 3)} (A⁻¹ has 0) and the models {fmt(v.min(), 3)} to {fmt(v.max(), 3)}"
    )
    if below == 0:
        return (
            head + ": every model is farther from inverting A than the LMMSE is, so on this "
            "measure moving toward A⁻¹ and moving toward the LMMSE are the same direction, "
            "and this family cannot tell the two apart on it."
        )
    if above == 0:
        return (
            head + ": every model is closer to inverting A than the LMMSE is, so moving "
            "further toward A⁻¹ moves away from the optimal linear estimator."
        )
    return (
        head + f": {below} rows are closer to inverting A than the LMMSE is and {above} "
        "farther, so the family straddles the optimal linear estimator on this measure."
    )


def _best_measure_paragraph(by: dict) -> list[str]:
    """The measure with the largest |ρ| (when more than two were compared)."""
    measures = [by[mm] for mm, _ in MEASURES if mm in by and np.isfinite(by[mm].rho)]
    if len(measures) <= 2:
        return []
    best = max(measures, key=lambda c: abs(c.rho))
    return [
        f"Of all {len(measures)} measures compared, the {_LABEL[best.y]} tracks test "
        f"error most closely ({_rho_text(best)})."
    ]


def _partial_paragraph(c_inv, c_lm) -> list[str]:
    """The partial ρ controlling for the training-set size (when it varies)."""
    pl = [c for c in (c_inv, c_lm) if c is not None and c.partial_rho is not None]
    if not pl:
        return []
    parts = []
    for c in pl:
        tail = ""
        if c.excludes_zero and np.isfinite(c.rho):
            tail = (
                ": much of that association runs through how much data a model saw"
                if abs(c.partial_rho) < 0.5 * abs(c.rho)
                else ": it does not come from the training-set size alone"
            )
        parts.append(f"{fmt(c.partial_rho)} for the {_LABEL[c.y]} (plain ρ {fmt(c.rho)}){tail}")
    return [
        "Controlling for the training-set size, the partial Spearman ρ is "
        + "; and ".join(parts)
        + "."
    ]


def _dependence_paragraph(n_ep: int, n_runs: int) -> list[str]:
    """Checkpoints of one run are not independent rows."""
    if n_ep <= 1:
        return []
    return [
        f"The rows include {n_ep} checkpoints of each of the {n_runs} runs; these are not "
        "independent, so the bootstrap intervals resample whole runs (all checkpoints "
        "of a run together; no interval with fewer than 3 runs), while the p-values "
        "treat rows as independent and are optimistic."
    ]


def _causation_paragraph() -> list[str]:
    return [
        "This is an association across a family trained under controlled settings; it does not "
        "show that spectral agreement causes accuracy (docs/science.md §1: when the noise is "
        "small, small error forces C toward A⁻¹, not the converse — a network can have "
        "C = A⁻¹ and a large error)."
    ]


def _noise_paragraphs(refs: dict) -> list[str]:
    """With noise the best linear estimator is the LMMSE, not A⁻¹: their errors, per level."""
    lines = []
    for nu_key, e in refs["noise_levels"].items():
        er = e["errors"]
        if float(nu_key) > 0 and er.get("lmmse") is not None:
            lines.append(
                f"At noise {nu_key} the best linear estimator is the LMMSE, not A⁻¹: on the "
                f"common test set the LMMSE reaches error {fmt(er['lmmse'], 3)} and A⁻¹ "
                f"{fmt(er['A_inv'], 3)} (oracle Tikhonov {fmt(er['tikhonov_oracle'], 3)}); "
                "a good network's C should approach the former."
            )
    return lines


def _r2_paragraph(rows: list[dict]) -> list[str]:
    """The range of the held-out R² of C."""
    r2 = column(rows, "r2")
    if not np.isfinite(r2).any():
        return []
    return [
        f"R² of C on held-out probes ranges from {fmt(np.nanmin(r2), 3)} to "
        f"{fmt(np.nanmax(r2), 3)}; where it is low, C describes the network poorly and its "
        "distances say less about it."
    ]


# --------------------------------------------------------------------------------------------
# out of distribution


def ood_summary(rows: list[dict], refs: dict, cfg: dict) -> list[str]:
    """How error, R² and the distances move out of distribution (computed sentences)."""
    levels = sorted({f"{ood_noise_level(nu, cfg['ood_noise']):g}" for nu in cfg["noise"]})
    conditions = (
        ("prior", f"probes from prior {cfg['ood_prior']} at the training noise"),
        ("noise", "probes from the training prior at noise " + ", ".join(levels)),
    )
    out = []
    for kind, desc in conditions:
        out += _ood_paragraph(rows, refs, kind, desc)
    return out


def _ood_paragraph(rows: list[dict], refs: dict, kind: str, desc: str) -> list[str]:
    """One out-of-distribution condition: error ratio, medians of the measures, the LMMSE."""
    err = column(rows, "err_net")
    e2 = column(rows, f"ood_{kind}_err_net")
    ok = np.isfinite(err) & np.isfinite(e2)
    if not ok.any():
        return []
    ratio = e2[ok] / err[ok]
    worse = int(np.sum(e2[ok] > err[ok]))
    parts = [
        f"Out of distribution ({desc}), the networks' median test error goes from "
        f"{fmt(np.median(err[ok]), 3)} to {fmt(np.median(e2[ok]), 3)} (median ratio "
        f"{fmt(np.median(ratio), 3)}; higher for {worse} of {ok.sum()} rows)"
    ]
    parts += _ood_medians(rows, kind)
    return ["; ".join(parts) + "." + _ood_lmmse_tail(refs, kind)]


def _ood_medians(rows: list[dict], kind: str) -> list[str]:
    """'median <measure> <in> → <out>' for each non-degenerate measure."""
    degenerate = degenerate_columns(rows, ["dist_inv_2", "dist_lmmse_2"])
    parts = []
    for col, name in (
        ("r2", "R²"),
        ("dist_inv_2", "distance of C to A⁻¹"),
        ("resid_CA_I_fro", "‖CA − I‖_F/√n"),
        ("dist_lmmse_2", "distance to that condition's LMMSE"),
    ):
        a, b = column(rows, col), column(rows, f"ood_{kind}_{col}")
        okc = np.isfinite(a) & np.isfinite(b)
        if okc.any() and col not in degenerate:
            parts.append(f"median {name} {fmt(np.median(a[okc]), 3)} → {fmt(np.median(b[okc]), 3)}")
    return parts


def _ood_lmmse_tail(refs: dict, kind: str) -> str:
    lm = [e[f"ood_{kind}"]["errors"].get("lmmse") for e in refs["noise_levels"].values()]
    lm = [v for v in lm if v is not None]
    if not lm:
        return ""
    return (
        f" For comparison, the LMMSE built for that condition reaches "
        f"{'/'.join(fmt(v, 3) for v in lm)}."
    )


# --------------------------------------------------------------------------------------------
# summary.md


def summary_markdown(result, plots: dict[str, str]) -> str:
    """summary.md: settings, the correlation table, the summary, references, plots.

    Parameters
    ----------
    result : fastinv.workflows.sweep.SweepResult
        The sweep (its config, rows, summary, correlations and references are used).
    plots : dict
        {name: file name} of the PNG plots, in the order shown.
    """
    lines = [
        *_md_header(result.config, result.rows),
        "",
        "## What the family supports",
        "",
        *[f"- {s}" for s in result.summary],
        "",
        *_md_correlations(result.correlations),
        "",
        *_md_references(result.references),
        "",
        *_md_plots(plots),
        "Rows: sweep.csv / sweep.json; per-model files: models/.",
    ]
    return "\n".join(lines) + "\n"


def _md_header(cfg: dict, rows: list[dict]) -> list[str]:
    return [
        f"# fastinv sweep: {cfg['operator']}, n = {cfg['n']}",
        "",
        f"Model {cfg['model']}, optimizer {cfg['optimizer']} (lr {cfg['lr']:g}, batch "
        f"{cfg['batch_size']}, {cfg['schedule']} schedule); prior {cfg['prior']}, "
        f"{cfg['noise_type']} noise. Axes: epochs {cfg['epochs']}, widths {cfg['widths']}, "
        f"depths {cfg['depths']}, samples {cfg['samples']}, noise {cfg['noise']}, seeds "
        f"{cfg['seeds']}: {len({r['key'] for r in rows})} models, {len(rows)} rows.",
    ]


def _md_correlations(correlations: list) -> list[str]:
    lines = [
        "## Rank correlations (Spearman, 95 % bootstrap CI over runs)",
        "",
        "| x | y | ρ | 95 % CI | p (rows as independent) | partial ρ (control) | rows | runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in correlations:
        part = "—" if c.partial_rho is None else f"{fmt(c.partial_rho, 3)} ({c.partial_on})"
        lines.append(
            f"| {c.x} | {c.y} | {fmt(c.rho, 3)} | [{fmt(c.ci_low, 3)}, "
            f"{fmt(c.ci_high, 3)}] | {fmt(c.p_value, 2)} | {part} | {c.n} | {c.n_groups} |"
        )
    return lines


def _md_references(references: dict) -> list[str]:
    lines = [
        "## References (common test set per noise level)",
        "",
        "| noise | A⁻¹ | Tikhonov (oracle λ) | λ | LMMSE | LMMSE ‖CA − I‖_F/√n "
        "| LMMSE covariance |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, e in references["noise_levels"].items():
        er = e["errors"]
        lines.append(
            f"| {k} | {fmt(er['A_inv'], 3)} | {fmt(er['tikhonov_oracle'], 3)} | "
            f"{fmt(e['tikhonov_oracle_lambda'], 3)} | {fmt(er['lmmse'], 3)} | "
            f"{fmt(e.get('lmmse_resid_CA_I_fro'), 3)} | "
            f"{e['lmmse'].get('note') or e['lmmse'].get('prior_cov')} |"
        )
    return lines


def _md_plots(plots: dict[str, str]) -> list[str]:
    lines = ["## Plots", ""]
    for name, p in plots.items():
        lines.append(f"![{name}]({p})")
        lines.append("")
    return lines
