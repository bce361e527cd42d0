"""The figures of a run report and of the scaling benchmark, one function per figure.

Each ``*_figure`` function draws one matplotlib figure from the audit's arrays (or returns
None when the arrays hold nothing to draw); :func:`make_plots` writes them all as PNG files.
:func:`plot_scaling` writes the benchmark's ``scaling.png``. matplotlib is imported only when
a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fastinv.auditing.angles import ON_DATA_PREFIX
from fastinv.auditing.images import (
    IMAGE_PREFIX,
    MAP_PREFIX,
    RADIAL_PREFIX,
    frequency_map,
    radial_average,
)
from fastinv.auditing.references import LABELS
from fastinv.io import save_figure
from fastinv.report.figures import pyplot

__all__ = [
    "IMAGE_FIGURES",
    "angle_series",
    "filter_factors_figure",
    "filter_maps_figure",
    "image_panel_figure",
    "make_plots",
    "picard_figure",
    "plot_scaling",
    "principal_angles_figure",
    "radial_filter_figure",
    "singular_values_figure",
    "style_axes",
    "training_figure",
]


#: the figures of an audit on images, shown in the report's "Images" section
IMAGE_FIGURES = ("images", "filter_factor_maps", "filter_factors_radial")


def _label(key: str) -> str:
    return LABELS.get(key, key)


def style_axes(
    ax,
    *,
    xlabel: str,
    title: str,
    ylabel: str | None = None,
    title_size: float | None = None,
    legend: dict | None = None,
    grid: str = "both",
) -> None:
    """Label ``ax``, draw its legend (``legend``: keyword arguments) and a light grid."""
    ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_title(title, **({} if title_size is None else {"fontsize": title_size}))
    ax.legend(**(legend or {}))
    ax.grid(True, which=grid, alpha=0.3)


def _save(plt, fig, path: Path, *, dpi: int) -> Path:
    """Lay out, write and close ``fig``."""
    try:
        if fig.get_layout_engine() is None:  # figures drawn with a layout engine keep theirs
            fig.tight_layout()
        return save_figure(path, fig, dpi=dpi)
    finally:
        plt.close(fig)


def make_plots(
    arrays: dict, out_dir: Path, *, history: dict | None = None, inverse: str = "A⁻¹"
) -> dict[str, Path]:
    """Write the audit's plots as PNG files; returns {name: path}.

    Parameters
    ----------
    arrays : dict of str -> ndarray
        The audit's arrays (:attr:`fastinv.auditing.core.AuditResult.arrays`).
    out_dir : path
        Folder for ``<name>.png``.
    history : dict, optional
        The training history (``train_loss``, ``val_loss``, ``epoch``) for ``training.png``.
    inverse : str
        How the figures name the inverse C is compared with: "A⁻¹", or "A⁺" for a
        rectangular A (:func:`fastinv.auditing.references.inverse_wording`).

    Returns
    -------
    dict of str -> Path
        The figures written, by name, in the order drawn.
    """
    plt = pyplot()
    out_dir = Path(out_dir)
    figures = (
        ("singular_values", lambda: singular_values_figure(plt, arrays)),
        ("filter_factors", lambda: filter_factors_figure(plt, arrays)),
        ("picard", lambda: picard_figure(plt, arrays)),
        ("principal_angles", lambda: principal_angles_figure(plt, arrays)),
        ("training", lambda: training_figure(plt, history)),
        ("images", lambda: image_panel_figure(plt, arrays)),
        ("filter_factor_maps", lambda: filter_maps_figure(plt, arrays)),
        ("filter_factors_radial", lambda: radial_filter_figure(plt, arrays)),
    )
    paths: dict[str, Path] = {}
    for name, draw in figures:
        fig = draw()
        if fig is not None:
            _rename_inverse(fig, inverse)
            paths[name] = _save(plt, fig, out_dir / f"{name}.png", dpi=110)
    return paths


def _rename_inverse(fig, inverse: str) -> None:
    """Every text of ``fig`` (titles, labels, legends) with A⁻¹ written ``inverse``."""
    if inverse == "A⁻¹":
        return
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        text = t.get_text()
        if "A⁻¹" in text:
            t.set_text(text.replace("A⁻¹", inverse))


def singular_values_figure(plt, arrays: dict):
    """Singular values of C, A⁻¹ and the references, with the Jacobians' band."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"A_inv": ("k", "-", 2.2), "C": ("C0", "-", 1.6), "lmmse": ("C2", "--", 1.4)}
    for key in sorted(k for k in arrays if k.startswith("sv_")):
        name = key[3:]
        v = np.asarray(arrays[key])
        v = np.where(v > 0, v, np.nan)
        color, ls, lw = styles.get(name, ("C3", ":", 1.4))
        ax.semilogy(np.arange(1, len(v) + 1), v, ls, color=color, lw=lw, label=_label(name))
    if "jac_sv_median" in arrays:
        lo, med, hi = (arrays[f"jac_sv_{q}"] for q in ("min", "median", "max"))
        j = np.arange(1, len(med) + 1)
        ax.fill_between(j, np.maximum(lo, 1e-300), hi, color="C1", alpha=0.2, lw=0)
        ax.semilogy(j, med, color="C1", lw=1, label="Jacobians J(y): median, min–max band")
    style_axes(
        ax,
        xlabel="index i (descending)",
        ylabel="singular value",
        title="Singular values: the network's surrogate C against A⁻¹ and the references",
        legend={"fontsize": 8},
    )
    return fig


def filter_factors_figure(plt, arrays: dict):
    """Filter factors φ_i of C and the references in A's SVD basis."""
    s = arrays["sigma_A"]
    idx = np.arange(1, len(s) + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in sorted(k for k in arrays if k.startswith("phi_")):
        name = key[4:]
        if name == "A_inv":
            continue
        v = arrays[key]
        if name == "C":
            ax.plot(idx, v, "o", ms=3, color="C0", label=_label(name), zorder=5)
        elif name == "mean_jacobian":
            ax.plot(idx, v, "x", ms=3, color="C1", label=_label(name), zorder=4)
        else:
            ax.plot(idx, v, "-", lw=1.2, label=_label(name))
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="A⁻¹ (φ = 1)")
    ax.axhline(0.0, color="grey", lw=0.5)
    if len(s) > 100:  # the interesting transition sits in the first few dozen indices
        ax.set_xscale("log")
    lo = min(-0.1, float(np.nanmin(arrays["phi_C"])) - 0.05)
    hi = max(1.15, float(np.nanmax(arrays["phi_C"])) + 0.05)
    ax.set_ylim(max(lo, -1.0), min(hi, 2.0))
    style_axes(
        ax,
        xlabel="index i of A's singular triplet",
        ylabel="filter factor φ_i = (Vᵀ M U S)_ii",
        title="Filter factors in A's SVD basis",
        legend={"fontsize": 7, "ncol": 2},
        grid="major",
    )
    return fig


def picard_figure(plt, arrays: dict):
    """Picard plot: σ_i, the mean |u_iᵀ y| and their ratio."""
    s = arrays["sigma_A"]
    idx = np.arange(1, len(s) + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    coef = arrays["picard_coef"]
    ax.semilogy(idx, np.where(s > 0, s, np.nan), "k-", label="σ_i")
    ax.semilogy(idx, coef, "C0.", ms=3, label="mean |u_iᵀ y| over test inputs")
    with np.errstate(divide="ignore", invalid="ignore"):
        ax.semilogy(idx, np.where(s > 0, coef / s, np.nan), "C3x", ms=3, label="|u_iᵀ y| / σ_i")
    if len(s) > 100:
        ax.set_xscale("log")
    style_axes(
        ax,
        xlabel="index i",
        title="Picard plot: where the data stop carrying information",
        legend={"fontsize": 8},
    )
    return fig


def principal_angles_figure(plt, arrays: dict):
    """Largest principal angles per k: C's own top-k singular subspaces (left panel) and the
    top-k principal components of the outputs on the probe data, M Σ_y^½ (right panel);
    None without angles."""
    ks = arrays.get("angles_ks")
    if ks is None or not len(ks):
        return None
    plain = angle_series(arrays, "angles_", np.shape(ks), exclude=ON_DATA_PREFIX)
    on_data = angle_series(arrays, ON_DATA_PREFIX, np.shape(ks))
    panels = [(plain, "Top-k singular subspaces of C against the references")]
    if on_data:
        panels.append(
            (on_data, "Top-k principal components of the outputs\non the probe data (M Σ_y^½)")
        )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(7 * len(panels), 4.5), sharex=True, sharey=True, squeeze=False
    )
    refs = sorted({ref for series, _ in panels for ref, _, _ in series})
    colors = {ref: f"C{i % 10}" for i, ref in enumerate(refs)}
    for ax, (series, title) in zip(axes[0], panels, strict=True):
        for ref, side, v in series:
            ls = "--" if side == "right" else "-"
            mk = "s" if side == "right" else "o"
            # the on-data panel has left subspaces only: no side in its legend
            label = _label(ref) + (f", {side}" if side and ax is axes[0, 0] else "")
            ax.plot(ks, v, ls, marker=mk, ms=3, color=colors[ref], label=label)
        ax.set_xscale("log")
        ax.set_ylim(-2, 92)
        style_axes(
            ax,
            xlabel="k (dimension of the top-k subspace)",
            title=title,
            title_size=10,
            legend={"fontsize": 8},
        )
    axes[0, 0].set_ylabel("largest principal angle (degrees)")
    return fig


def training_figure(plt, history: dict | None):
    """Training and validation loss per epoch; None without a training history."""
    if not (history and history.get("train_loss")):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    ep = history.get("epoch") or list(range(1, len(history["train_loss"]) + 1))
    ax.semilogy(ep, history["train_loss"], label="train")
    val = history.get("val_loss") or []
    if any(v is not None for v in val):
        ax.semilogy(ep[: len(val)], val, label="validation")
    style_axes(ax, xlabel="epoch", ylabel="loss  ½·mean ‖x̂ − x‖²", title="Training")
    return fig


# --------------------------------------------------------------------------------------------
# images (see fastinv.auditing.images)

#: the columns of the image panel, in order, with their titles
_IMAGE_COLUMNS = (
    ("truth", "truth x"),
    ("measurement", "measurement y"),
    ("backprojection", "Aᵀ y"),
    ("network", "network x̂"),
    ("C", "C y + b"),
    ("lmmse", "LMMSE / Wiener"),
    ("tikhonov_oracle", "Tikhonov (oracle λ)"),
    ("tikhonov_gcv", "Tikhonov (GCV λ)"),
)


def _rel_err(est, truth) -> float:
    return float(np.linalg.norm(est - truth) / max(np.linalg.norm(truth), 1e-300))


def image_panel_figure(plt, arrays: dict):
    """Test images side by side: one row per image; columns truth, measurement, network,
    C y + b, LMMSE/Wiener and the best Tikhonov, on one color scale per row (the truth's
    range, else the row's), each titled with its relative error ‖x̂ − x‖/‖x‖; None without
    images."""
    cols = [(k, t) for k, t in _IMAGE_COLUMNS if f"{IMAGE_PREFIX}{k}" in arrays]
    if not cols:
        return None
    stacks = [np.asarray(arrays[f"{IMAGE_PREFIX}{k}"]) for k, _ in cols]
    truth = arrays.get(f"{IMAGE_PREFIX}truth")
    n_img = stacks[0].shape[0]
    fig, axes = plt.subplots(
        n_img,
        len(cols),
        figsize=(2.3 * len(cols) + 0.8, 2.45 * n_img + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for i in range(n_img):
        ref = truth[i] if truth is not None else np.stack([s[i] for s in stacks])
        vmin, vmax = float(np.min(ref)), float(np.max(ref))
        for j, ((key, title), stack) in enumerate(zip(cols, stacks, strict=True)):
            ax = axes[i, j]
            im = ax.imshow(stack[i], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            if truth is not None and key != "truth":
                title = f"{title}\nrel. error {_rel_err(stack[i], truth[i]):.3f}"
            ax.set_title(title, fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(f"test image {i + 1}", fontsize=11)
        cb = fig.colorbar(im, ax=list(axes[i]), fraction=0.02, pad=0.01)
        cb.ax.tick_params(labelsize=10)
    fig.suptitle("Test images and their reconstructions (one color scale per row)", fontsize=13)
    return fig


def _map_extent(shape) -> list[float]:
    """imshow extent of a centred frequency map, in cycles per pixel."""
    H, W = shape
    return [
        (-(W // 2) - 0.5) / W,
        ((W - 1) // 2 + 0.5) / W,
        (-(H // 2) - 0.5) / H,
        ((H - 1) // 2 + 0.5) / H,
    ]


def _phi_names(arrays: dict, prefix: str) -> list[str]:
    """The estimators with arrays ``<prefix><name>``: C first, then the references."""
    names = [k[len(prefix) :] for k in arrays if k.startswith(prefix)]
    names = [k for k in names if k != "radius"]
    return sorted(names, key=lambda k: (k != "C", k != "lmmse", k))


def filter_maps_figure(plt, arrays: dict):
    """Filter factors over frequency (2-D maps, zero frequency at the centre) of C and the
    references on one color scale, and φ_C − φ_LMMSE; None without maps."""
    names = _phi_names(arrays, MAP_PREFIX)
    if not names:
        return None
    maps = [np.asarray(arrays[f"{MAP_PREFIX}{k}"]) for k in names]
    diff = "C" in names and "lmmse" in names
    ncol = len(names) + int(diff)
    fig, axes = plt.subplots(
        1, ncol, figsize=(3.6 * ncol + 0.6, 3.7), squeeze=False, layout="constrained"
    )
    ext = _map_extent(maps[0].shape)
    lo = min(0.0, float(np.nanpercentile(maps[0], 1)))
    hi = max(1.0, float(np.nanpercentile(maps[0], 99)))
    lo, hi = max(lo, -1.0), min(hi, 2.0)
    for ax, name, M in zip(axes[0], names, maps, strict=False):
        im = ax.imshow(M, origin="lower", extent=ext, cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"φ of {_label(name)}", fontsize=11)
    fig.colorbar(im, ax=list(axes[0, : len(names)]), fraction=0.025, pad=0.02, label="φ")
    if diff:
        d = maps[names.index("C")] - maps[names.index("lmmse")]
        lim = max(float(np.nanmax(np.abs(d))), 1e-12)
        ax = axes[0, -1]
        im = ax.imshow(d, origin="lower", extent=ext, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title("φ_C − φ_LMMSE", fontsize=11)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes[0]:
        ax.set_xlabel("k_x (cycles / pixel)", fontsize=10)
        ax.tick_params(labelsize=9)
    axes[0, 0].set_ylabel("k_y (cycles / pixel)", fontsize=10)
    fig.suptitle(
        "Filter factors over frequency (1: inverted as A⁻¹ does, 0: suppressed)", fontsize=13
    )
    return fig


def radial_filter_figure(plt, arrays: dict):
    """Filter factors averaged over rings of equal |k|: C against the references, with A's
    singular values |λ(k)| averaged the same way on a log axis; None without maps."""
    names = _phi_names(arrays, RADIAL_PREFIX)
    radius = arrays.get(f"{RADIAL_PREFIX}radius")
    if not names or radius is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"C": "C0", "lmmse": "C2"}
    for i, name in enumerate(names):
        v = arrays[f"{RADIAL_PREFIX}{name}"]
        color = colors.get(name, f"C{3 + i}")
        if name == "C":
            ax.plot(radius, v, "o-", ms=4, lw=1.6, color=color, label=_label(name), zorder=5)
        else:
            ax.plot(radius, v, "-", lw=1.4, color=color, label=_label(name))
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="A⁻¹ (φ = 1)")
    ax.axhline(0.0, color="grey", lw=0.5)
    shape = np.shape(arrays[f"{MAP_PREFIX}{names[0]}"])
    if "freq_ky" in arrays and "sigma_A" in arrays:
        s_map = frequency_map(arrays["sigma_A"], arrays["freq_ky"], arrays["freq_kx"], shape)
        _, s_rad = radial_average(s_map)
        ax2 = ax.twinx()
        ax2.semilogy(radius, np.where(s_rad > 0, s_rad, np.nan), ":", color="grey", lw=1.5)
        ax2.set_ylabel("σ = |λ(k)| of A (dotted, log)", color="grey")
        ax2.tick_params(axis="y", colors="grey")
    style_axes(
        ax,
        xlabel="|k| (cycles / pixel)",
        ylabel="mean filter factor φ over the ring",
        title="Filter factors against spatial frequency (radial average)",
        legend={"fontsize": 8, "loc": "center right"},
        grid="major",
    )
    return fig


def angle_series(arrays: dict, prefix: str, shape, exclude: str | None = None):
    """[(reference, side, largest angle per k)] for the arrays "<prefix><ref>_<side>"."""
    out = []
    for key in sorted(arrays):
        if not key.startswith(prefix) or key == "angles_ks":
            continue
        if exclude is not None and key.startswith(exclude):
            continue
        v = np.asarray(arrays[key], dtype=float)
        if v.shape != shape:
            continue
        ref, _, side = key[len(prefix) :].rpartition("_")
        if side not in ("left", "right"):
            ref, side = key[len(prefix) :], ""
        out.append((ref, side, v))
    return out


def plot_scaling(
    path: Path,
    ns: Sequence[int],
    medians: dict[str, Sequence[float | None]],
    exponents: dict[str, dict | None],
    *,
    title: str,
) -> Path:
    """Median time of each stage against n on log-log axes, with the fitted power laws.

    Parameters
    ----------
    path : path
        The PNG file to write.
    ns : sequence of int
        Sizes.
    medians : dict of str -> sequence of float or None
        Median seconds per size of each stage (None: not run), in the order to draw.
    exponents : dict of str -> dict or None
        The fit ``{"p", "c", "ns"}`` of each stage (None: no fit).
    title : str
        The figure's title.

    Returns
    -------
    Path
        ``path``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    try:
        n_axis = np.asarray(ns, dtype=float)
        for i, (stage, times) in enumerate(medians.items()):
            _scaling_curve(ax, n_axis, stage, times, exponents.get(stage), color=f"C{i}")
        ax.set_xticks(n_axis)
        ax.set_xticks([], minor=True)
        ax.set_xticklabels([str(int(n)) for n in n_axis])
        style_axes(
            ax, xlabel="n", ylabel="median wall time (s)", title=title, legend={"fontsize": 8}
        )
    except BaseException:
        plt.close(fig)
        raise
    return _save(plt, fig, Path(path), dpi=120)


def _scaling_curve(ax, ns: np.ndarray, stage: str, times, fit: dict | None, *, color: str):
    """One stage's measured medians and, dashed, its fitted power law."""
    t = np.array([np.nan if v is None else v for v in times], dtype=float)
    label = stage if fit is None else f"{stage}  (p = {fit['p']:.2f})"
    ax.loglog(ns, t, "o-", color=color, label=label, lw=1.2, ms=4)
    if fit is not None:
        nf = np.array([min(fit["ns"]), max(fit["ns"])], dtype=float)
        ax.loglog(nf, fit["c"] * nf ** fit["p"], "--", color=color, lw=2, alpha=0.6)
