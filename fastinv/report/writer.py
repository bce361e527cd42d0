"""The run directory's report: PNG plots, report.md and a self-contained report.html."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from fastinv.auditing.core import LABELS, ON_DATA_PREFIX
from fastinv.io import save_figure, write_text


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _label(key: str) -> str:
    return LABELS.get(key, key)


def make_plots(arrays: dict, out_dir: Path, *, history: dict | None = None) -> dict[str, Path]:
    """Write the audit's plots as PNG files; returns {name: path}."""
    plt = _plt()
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    s = arrays["sigma_A"]
    idx = np.arange(1, len(s) + 1)

    def save(name, fig):
        fig.tight_layout()
        paths[name] = save_figure(out_dir / f"{name}.png", fig, dpi=110)
        plt.close(fig)

    # 1. singular values
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
    ax.set_xlabel("index i (descending)")
    ax.set_ylabel("singular value")
    ax.set_title("Singular values: the network's surrogate C against A⁻¹ and the references")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    save("singular_values", fig)

    # 2. filter factors
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
    ax.set_xlabel("index i of A's singular triplet")
    ax.set_ylabel("filter factor φ_i = (Vᵀ M U S)_ii")
    ax.set_title("Filter factors in A's SVD basis")
    lo = min(-0.1, float(np.nanmin(arrays["phi_C"])) - 0.05)
    hi = max(1.15, float(np.nanmax(arrays["phi_C"])) + 0.05)
    ax.set_ylim(max(lo, -1.0), min(hi, 2.0))
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    save("filter_factors", fig)

    # 3. Picard plot
    fig, ax = plt.subplots(figsize=(7, 4.5))
    coef = arrays["picard_coef"]
    ax.semilogy(idx, np.where(s > 0, s, np.nan), "k-", label="σ_i")
    ax.semilogy(idx, coef, "C0.", ms=3, label="mean |u_iᵀ y| over test inputs")
    with np.errstate(divide="ignore", invalid="ignore"):
        ax.semilogy(idx, np.where(s > 0, coef / s, np.nan), "C3x", ms=3, label="|u_iᵀ y| / σ_i")
    if len(s) > 100:
        ax.set_xscale("log")
    ax.set_xlabel("index i")
    ax.set_title("Picard plot: where the data stop carrying information")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    save("picard", fig)

    # 4. principal angles: C's own top-k singular subspaces (left panel) and the top-k
    # principal components of the outputs on the probe data, M Σ_y^½ (right panel)
    ks = arrays.get("angles_ks")
    if ks is not None and len(ks):
        plain = _angle_series(arrays, "angles_", np.shape(ks), exclude=ON_DATA_PREFIX)
        on_data = _angle_series(arrays, ON_DATA_PREFIX, np.shape(ks))
        panels = [(plain, "Top-k singular subspaces of C against the references")]
        if on_data:
            panels.append(
                (
                    on_data,
                    "Top-k principal components of the outputs\non the probe data (M Σ_y^½)",
                )
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
            ax.set_xlabel("k (dimension of the top-k subspace)")
            ax.set_ylim(-2, 92)
            ax.set_title(title, fontsize=10)
            ax.legend(fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
        axes[0, 0].set_ylabel("largest principal angle (degrees)")
        save("principal_angles", fig)

    # 5. training curve
    if history and history.get("train_loss"):
        fig, ax = plt.subplots(figsize=(7, 4))
        ep = history.get("epoch") or list(range(1, len(history["train_loss"]) + 1))
        ax.semilogy(ep, history["train_loss"], label="train")
        val = history.get("val_loss") or []
        if any(v is not None for v in val):
            ax.semilogy(ep[: len(val)], val, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss  ½·mean ‖x̂ − x‖²")
        ax.set_title("Training")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        save("training", fig)
    return paths


def _angle_series(arrays: dict, prefix: str, shape, exclude: str | None = None):
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


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def _g(x, d=4):
    if x is None:
        return "–"
    if isinstance(x, (bool, np.bool_, str)):
        return str(x)
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{x:.{d}g}"
    return str(x)


def _flat(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


#: principal angles at a k where a spectrum's relative gap (σ_k − σ_(k+1))/σ_1 is below
#: this are marked as ill-determined in the report
ANGLE_GAP_FLAG = 0.01


def _angles_section(comp: dict) -> list[str]:
    """Largest principal angles per k: C's own singular subspaces and its outputs on the data."""
    plain = comp.get("principal_angles") or {}
    on_data = comp.get("principal_angles_on_data") or {}
    ks = list(plain.get("ks") or on_data.get("ks") or [])
    if not ks:
        return []

    flagged = []

    def row(ref, what, a):
        kk = a.get("k") or []
        vals = dict(zip(kk, a.get("max_deg") or [], strict=True))
        gaps = {}
        for g in (a.get("gap_1"), a.get("gap_2")):
            for k, v in zip(kk, g or [None] * len(kk), strict=True):
                if v is not None:
                    gaps[k] = min(gaps.get(k, np.inf), v)
        cells = []
        for k in ks:
            txt = _g(vals.get(k), 3)
            if vals.get(k) is not None and gaps.get(k, np.inf) < ANGLE_GAP_FLAG:
                txt += " †"
                flagged.append(k)
            cells.append(txt)
        return (LABELS.get(ref, ref), what, *cells)

    refs = []
    for d in (plain, on_data):
        for key in d:
            if key.endswith(("_left", "_right")):
                ref = key.rpartition("_")[0]
                if ref not in refs:
                    refs.append(ref)
    rows = []
    for ref in refs:
        for what, a in (
            ("left singular (C, B)", plain.get(f"{ref}_left")),
            ("right singular (C, B)", plain.get(f"{ref}_right")),
            ("outputs on the data (C Σ_y^½, B Σ_y^½)", on_data.get(f"{ref}_left")),
        ):
            if a is not None:
                rows.append(row(ref, what, a))
    return [
        "## Principal angles (largest, degrees)",
        "",
        "Largest principal angle between the top-k subspaces of C and of each reference B "
        "(0°: the same subspace; 90°: some direction of one is orthogonal to the other). "
        "'left/right singular': the singular subspaces of C and B themselves (outputs/inputs). "
        "'outputs on the data': the left singular subspaces of C Σ_y^½ and B Σ_y^½, i.e. the "
        "top-k principal components of the outputs C y and B y over the probe distribution "
        "(Cov(M y) = M Σ_y Mᵀ).",
        "",
        "C is fitted from the probes, so it is determined only along the directions in which "
        "the probes vary. Its largest singular values can sit in directions where Σ_y is near "
        "zero; the singular-subspace angles can then be near 90° while the angles of the "
        "outputs on the data are small. '–': k beyond the numerical rank of either matrix.",
        "",
        _table(rows, ("reference", "subspaces", *(f"k = {k}" for k in ks))),
        "",
    ] + (
        [
            f"† the top-k subspace of one of the two matrices is ill-determined: the relative "
            f"gap (σ_k − σ_(k+1))/σ_1 of its spectrum is below {ANGLE_GAP_FLAG:g}, so a small "
            "perturbation (sampling noise in Σ_y, the fit's own error) can turn it by a large "
            "angle (Davis–Kahan/Wedin: sin θ ≤ ‖E‖/gap); read those angles as unreliable.",
            "",
        ]
        if flagged
        else []
    )


def render_markdown(metrics: dict, verdict: list[str], plots: dict[str, Path], title: str) -> str:
    """The report as Markdown (plots referenced by file name)."""
    op = metrics.get("operator", {})
    lines = [f"# {title}", ""]
    if op:
        lines += [
            f"Operator **{op.get('name')}**, n = {op.get('n')}, cond(A) = {_g(op.get('cond'), 3)}. "
            + (metrics.get("data", {}).get("summary", "")),
            "",
        ]
    lines += ["## Verdict", ""] + [f"- {v}" for v in verdict] + [""]
    err = metrics.get("errors") or {}
    if err:
        lines += ["## Relative test error ‖X̂ − X‖_F / ‖X‖_F (same test set)", ""]
        refs = metrics.get("references", {})
        rows = []
        for k, v in sorted(err.items(), key=lambda kv: (kv[1] is None, kv[1])):
            info = refs.get(k, {})
            param = ", ".join(
                f"{a}={_g(b, 3)}" for a, b in info.items() if isinstance(b, (int, float))
            )
            rows.append((LABELS.get(k, k), _g(v), param))
        lines += [_table(rows, ("estimator", "test error", "parameters")), ""]
    sur = metrics.get("surrogate", {})
    lines += ["## The affine surrogate C", ""]
    rows = [
        ("R² (held-out probes)", _g(sur.get("r2_heldout"))),
        ("R² on the test set (C vs network)", _g(sur.get("r2_test"))),
        ("rank / samples", f"{sur.get('rank')} / {sur.get('n_samples')}"),
        ("‖C − A⁻¹‖₂ / ‖A⁻¹‖₂", _g(sur.get("rel_dist_to_inverse"))),
        ("‖C − A⁻¹‖_F / ‖A⁻¹‖_F", _g(sur.get("rel_dist_to_inverse_fro"))),
        ("‖C − C_LMMSE‖₂ / ‖C_LMMSE‖₂", _g(sur.get("rel_dist_to_lmmse"))),
        (
            "‖(C − A⁻¹)Σ_y^½‖_F / ‖A⁻¹Σ_y^½‖_F (on the data)",
            _g(sur.get("rel_dist_to_inverse_on_data")),
        ),
        (
            "‖(C − C_LMMSE)Σ_y^½‖_F / ‖C_LMMSE Σ_y^½‖_F (on the data)",
            _g(sur.get("rel_dist_to_lmmse_on_data")),
        ),
        ("off-diagonal share of Vᵀ C U S", _g(sur.get("offdiag_share"))),
    ]
    lines += [_table(rows, ("quantity", "value")), ""]
    filt = metrics.get("filters", {})
    if filt:
        rows = [
            (LABELS.get(k, k), _g(v), _g(filt["offdiag_share"].get(k)))
            for k, v in sorted(filt["phi_rms_distance_to_C"].items(), key=lambda kv: kv[1])
        ]
        lines += [
            "## Filter factors",
            "",
            _table(rows, ("reference", "RMS difference φ_C − φ_ref", "ref. off-diagonal share")),
            "",
        ]
    lines += _angles_section(metrics.get("comparison") or {})
    jac = metrics.get("jacobians") or {}
    if jac:
        lines += ["## Jacobians of the network", ""]
        lines += [_table([(k, _g(v)) for k, v in _flat(jac)], ("quantity", "value")), ""]
    spec = metrics.get("spectra", {})
    if spec:
        lines += [f"Spectra computed by {spec.get('method')}.", ""]
    notes = metrics.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {x}" for x in notes] + [""]
    tim = metrics.get("timings", {})
    if tim:
        lines += [
            "## Timings (seconds)",
            "",
            _table([(k, _g(v, 3)) for k, v in _flat(tim)], ("stage", "s")),
            "",
        ]
    if plots:
        lines += ["## Plots", ""]
        for name, p in plots.items():
            lines += [f"![{name}]({Path(p).name})", ""]
    return "\n".join(lines)


def _md_to_html(md: str, plots: dict[str, Path]) -> str:
    """A small Markdown subset (headings, lists, tables, images) to HTML; images embedded."""
    out, in_list, table = [], False, []

    def flush_table():
        if not table:
            return
        rows = [r.strip().strip("|").split("|") for r in table if not set(r) <= set("|-: ")]
        out.append("<table>")
        for i, r in enumerate(rows):
            tag = "th" if i == 0 else "td"
            out.append(
                "<tr>" + "".join(f"<{tag}>{_inline(c.strip())}</{tag}>" for c in r) + "</tr>"
            )
        out.append("</table>")
        table.clear()

    by_file = {Path(p).name: p for p in plots.values()}
    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if in_list and not line.startswith("- "):
            out.append("</ul>")
            in_list = False
        if line.startswith("# "):
            out.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("## "):
            out.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(line[2:])}</li>")
        elif line.startswith("!["):
            name = line[line.index("(") + 1 : line.rindex(")")]
            p = by_file.get(name)
            if p is not None:
                data = base64.b64encode(Path(p).read_bytes()).decode()
                out.append(
                    f'<p><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></p>'
                )
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush_table()
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


def _inline(text: str) -> str:
    t = html.escape(text)
    parts = t.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
    "line-height:1.45;color:#222}table{border-collapse:collapse;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:0.2em 0.6em;text-align:left}th{background:#f3f3f3}"
    "img{max-width:100%}li{margin:0.3em 0}"
)


def write_report(
    out_dir,
    metrics: dict,
    verdict: list[str],
    arrays: dict,
    *,
    history=None,
    title: str = "fastinv report",
) -> dict[str, Path]:
    """Write plots, report.md and a self-contained report.html into ``out_dir``."""
    out_dir = Path(out_dir)
    plots = make_plots(arrays, out_dir, history=history)
    md = render_markdown(metrics, verdict, plots, title)
    paths = {"report.md": write_text(out_dir / "report.md", md)}
    body = _md_to_html(md, plots)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
    paths["report.html"] = write_text(out_dir / "report.html", page)
    paths.update({f"{k}.png": v for k, v in plots.items()})
    return paths
