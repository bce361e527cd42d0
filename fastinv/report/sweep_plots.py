"""The figures of `fastinv sweep`, one function per figure: test error against the distances
of C to A⁻¹ and to the LMMSE, the filter factors of the best and the worst model, and the
out-of-distribution error against the in-distribution error."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastinv.io import save_figure
from fastinv.report.figures import pyplot
from fastinv.workflows.sweep_summary import column, degenerate_columns, fmt

__all__ = [
    "make_plots",
    "plot_error_distance",
    "plot_filter_factors",
    "plot_ood_error",
]

#: the distance panels: rows 2-norm / Frobenius, columns A⁻¹ / LMMSE
_PANELS = (
    (("dist_inv_2", "‖C − A⁻¹‖₂ / ‖A⁻¹‖₂"), ("dist_lmmse_2", "‖C − C_LMMSE‖₂ / ‖C_LMMSE‖₂")),
    (
        ("dist_inv_fro", "‖C − A⁻¹‖_F / ‖A⁻¹‖_F"),
        ("dist_lmmse_fro", "‖C − C_LMMSE‖_F / ‖C_LMMSE‖_F"),
    ),
)
#: what a degenerate distance to A⁻¹ is replaced with in its panel
_SUBSTITUTES = {
    "dist_inv_2": ("resid_CA_I_2", "‖CA − I‖₂"),
    "dist_inv_fro": ("resid_CA_I_fro", "‖CA − I‖_F / √n"),
}


def make_plots(out: Path, rows, phis, refs, sigma, cfg, correlations) -> dict[str, str]:
    """Write scatter_error_distance.png, filter_factors_best_worst.png and ood_error.png.

    Parameters
    ----------
    out : Path
        The sweep's output folder.
    rows : list of dict
        The sweep's rows.
    phis : ndarray
        Filter factors, one row per sweep row.
    refs : dict
        The references per noise level (with their filter factors).
    sigma : ndarray
        A's singular values.
    cfg : dict
        The sweep's configuration (its axes and OOD prior).
    correlations : list of fastinv.linalg.stats.Correlation
        Shown in the panel titles.

    Returns
    -------
    dict
        {name: file name} of the plots written (the filter-factor plot only when some
        row has a finite error).
    """
    plt = pyplot()
    paths: dict[str, str] = {}
    figures = (
        ("scatter_error_distance", lambda: plot_error_distance(rows, cfg, correlations)),
        ("filter_factors_best_worst", lambda: plot_filter_factors(rows, phis, refs, sigma)),
        ("ood_error", lambda: plot_ood_error(rows, cfg)),
    )
    for name, draw in figures:  # one figure open at a time
        fig = draw()
        if fig is None:
            continue
        fig.tight_layout()
        save_figure(Path(out) / f"{name}.png", fig, dpi=110)
        plt.close(fig)
        paths[name] = f"{name}.png"
    return paths


# --------------------------------------------------------------------------------------------
# axes helpers


def _color_axis(cfg: dict) -> str:
    """The setting with the most values (ties: the first of epoch, width, depth, samples,
    noise, seed): the points are coloured by it."""
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


def _scatter_by_level(ax, x, y, caxis: str, cvals: np.ndarray) -> None:
    """Scatter (x, y), one viridis colour per value of the colour setting."""
    cmap = pyplot().get_cmap("viridis")
    levels = sorted(set(cvals.tolist()))
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


# --------------------------------------------------------------------------------------------
# 1. error against the distances


def plot_error_distance(rows, cfg: dict, correlations):
    """Test error against the distance of C to A⁻¹ (left) and to the LMMSE (right), in the
    2-norm (top) and the Frobenius norm (bottom), with Spearman ρ in the titles."""
    plt = pyplot()
    err = column(rows, "err_net")
    caxis = _color_axis(cfg)
    cvals = np.array([r[caxis] for r in rows], dtype=float)
    degenerate = degenerate_columns(rows)
    by = {c.y: c for c in correlations if c.x == "err_net"}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), sharey=True)
    for i in range(2):
        for j in range(2):
            col, label = _PANELS[i][j]
            _distance_panel(axes[i, j], rows, err, col, label, degenerate, by, caxis, cvals)
        axes[i, 0].set_ylabel("test error of the network (relative)")
    axes[0, 1].legend(fontsize=8, loc="best")
    fig.suptitle("Test error against the distance of C to A⁻¹ (left) and to the LMMSE (right)")
    return fig


def _distance_panel(ax, rows, err, col, label, degenerate, by, caxis, cvals) -> None:
    """One panel: error against column ``col`` (or its substitute when degenerate)."""
    note = ""
    if col in degenerate and col in _SUBSTITUTES:
        note = f"({label} is {degenerate[col]['max']:.6g} for all: uninformative)"
        col, label = _SUBSTITUTES[col]
    x = column(rows, col)
    ok = np.isfinite(x) & np.isfinite(err)
    if ok.any():
        _scatter_by_level(ax, x, err, caxis, cvals)
        if col not in degenerate:
            _log_if_wide(ax, x[ok], "x")
        _log_if_wide(ax, err[ok], "y")
    else:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
    c = by.get(col)
    title = label + (f"\n{note}" if note else "")
    if c is not None:
        title += f"\nSpearman ρ = {fmt(c.rho)} [{fmt(c.ci_low)}, {fmt(c.ci_high)}]"
    elif col in degenerate:
        title += "\nequal for all models to rounding: no ρ"
    ax.set_title(title, fontsize=9.5)
    ax.set_xlabel(label)
    if ax.get_xscale() == "linear":
        ax.ticklabel_format(axis="x", useOffset=False)
    ax.grid(True, which="both", alpha=0.3)


# --------------------------------------------------------------------------------------------
# 2. filter factors of the best and the worst model


def plot_filter_factors(rows, phis, refs: dict, sigma):
    """Filter factors of the best and the worst row, with the oracle Tikhonov filter and the
    LMMSE of their noise levels; None when no row has a finite error or there are no
    filter factors."""
    err = column(rows, "err_net")
    ok = np.isfinite(err)
    if not (ok.any() and len(phis)):
        return None
    ib = int(np.nanargmin(np.where(ok, err, np.nan)))
    iw = int(np.nanargmax(np.where(ok, err, np.nan)))
    fig, ax = pyplot().subplots(figsize=(8, 4.8))
    idx = np.arange(1, len(sigma) + 1)
    for i, tag, color in ((ib, "best", "C0"), (iw, "worst", "C3")):
        r = rows[i]
        ax.plot(
            idx,
            phis[i],
            "-",
            color=color,
            lw=1.6,
            label=f"{tag}: {r['key']} @ epoch {r['epoch']} (error {fmt(r['err_net'], 3)})",
        )
    _reference_filters(ax, idx, refs, [f"{rows[i]['noise']:g}" for i in (ib, iw)])
    ax.axhline(1.0, color="gray", lw=0.8, label="A⁻¹ (φ = 1)")
    lo = min(-0.1, float(np.nanmin(phis[[ib, iw]])))
    hi = max(1.2, float(np.nanmax(phis[[ib, iw]])))
    ax.set_ylim(max(lo, -1.0), min(hi, 2.0))
    ax.set_xlabel("index i of A's singular value σ_i (descending)")
    ax.set_ylabel("filter factor φ_i = σ_i v_iᵀ C u_i")
    ax.set_title("Filter factors of the best and the worst model")
    ax.legend(fontsize=7.5, loc="best")
    ax.grid(True, alpha=0.3)
    return fig


def _reference_filters(ax, idx, refs: dict, noise_keys: list[str]) -> None:
    """The oracle Tikhonov and LMMSE filter factors, once per noise level."""
    shown = set()
    for nk in noise_keys:
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


# --------------------------------------------------------------------------------------------
# 3. OOD error against in-distribution error


def plot_ood_error(rows, cfg: dict):
    """Out-of-distribution error (other prior; other noise level) against in-distribution
    error, with the diagonal."""
    err = column(rows, "err_net")
    fig, ax = pyplot().subplots(figsize=(6, 5.4))
    allv = [err]
    for kind, marker, label in (
        ("prior", "o", f"prior {cfg['ood_prior']}"),
        ("noise", "^", "other noise level"),
    ):
        y = column(rows, f"ood_{kind}_err_net")
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
    return fig
