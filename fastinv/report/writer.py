"""The run directory's report: report.md, a self-contained report.html, the plots (drawn by
:mod:`fastinv.report.plots`), arrays.npz, config.json and metrics.json."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from fastinv._progress import Stopwatch
from fastinv.auditing.references import LABELS, inverse_wording
from fastinv.io import OutFolder, save_npz, write_json, write_text
from fastinv.report.plots import IMAGE_FIGURES, make_plots

__all__ = [
    "ANGLE_GAP_FLAG",
    "CSS",
    "angles_section",
    "render_markdown",
    "write_audit_report",
    "write_report",
    "write_run_dir",
]


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def _table_section(heading: str, rows: list[tuple], header: tuple) -> list[str]:
    """A ``##`` heading and a table, as Markdown lines."""
    return [f"## {heading}", "", _table(rows, header), ""]


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


_ANGLES_INTRO = [
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
]

_ANGLES_FLAG_NOTE = (
    "† the top-k subspace of one of the two matrices is ill-determined: the relative "
    "gap (σ_k − σ_(k+1))/σ_1 of its spectrum is below {flag:g}, so a small "
    "perturbation (sampling noise in Σ_y, the fit's own error) can turn it by a large "
    "angle (Davis–Kahan/Wedin: sin θ ≤ ‖E‖/gap); read those angles as unreliable."
)


def angles_section(comp: dict) -> list[str]:
    """Markdown lines of the largest principal angles per k: C's own singular subspaces and
    its outputs on the data (empty without angles)."""
    plain = comp.get("principal_angles") or {}
    on_data = comp.get("principal_angles_on_data") or {}
    ks = list(plain.get("ks") or on_data.get("ks") or [])
    if not ks:
        return []
    flagged: list[int] = []
    rows = []
    for ref in _angle_refs(plain, on_data):
        for what, a in (
            ("left singular (C, B)", plain.get(f"{ref}_left")),
            ("right singular (C, B)", plain.get(f"{ref}_right")),
            ("outputs on the data (C Σ_y^½, B Σ_y^½)", on_data.get(f"{ref}_left")),
        ):
            if a is not None:
                rows.append((LABELS.get(ref, ref), what, *_angle_cells(a, ks, flagged)))
    table = _table(rows, ("reference", "subspaces", *(f"k = {k}" for k in ks)))
    note = [_ANGLES_FLAG_NOTE.format(flag=ANGLE_GAP_FLAG), ""] if flagged else []
    return [*_ANGLES_INTRO, table, "", *note]


def _angle_refs(plain: dict, on_data: dict) -> list[str]:
    """The references with angles, in first-seen order."""
    refs: list[str] = []
    for d in (plain, on_data):
        for key in d:
            if key.endswith(("_left", "_right")):
                ref = key.rpartition("_")[0]
                if ref not in refs:
                    refs.append(ref)
    return refs


def _angle_cells(a: dict, ks: list, flagged: list) -> list[str]:
    """The largest angle at each k, marked † (and k added to ``flagged``) where a gap is
    below :data:`ANGLE_GAP_FLAG`."""
    kk = a.get("k") or []
    vals = dict(zip(kk, a.get("max_deg") or [], strict=True))
    gaps: dict = {}
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
    return cells


def render_markdown(metrics: dict, verdict: list[str], plots: dict[str, Path], title: str) -> str:
    """The report as Markdown (plots referenced by file name).

    Parameters
    ----------
    metrics : dict
        The metrics of a run or an audit (missing sections are left out).
    verdict : list of str
        The verdict's sentences, one bullet each.
    plots : dict of str -> path
        The figures, by name, linked by file name.
    title : str
        The top heading.

    Returns
    -------
    str
        The Markdown text.
    """
    sections = (
        _header(metrics, title),
        ["## Verdict", ""] + [f"- {v}" for v in verdict] + [""],
        _audit_path_section(metrics.get("audit") or {}),
        _errors_section(metrics),
        _full_errors_section(metrics),
        _images_section(plots, _topk(metrics)),
        _surrogate_section(metrics.get("surrogate", {}), _topk(metrics)),
        _filters_section(metrics.get("filters", {})),
        angles_section(metrics.get("comparison") or {}),
        _jacobians_section(metrics),
        _notes_sections(metrics),
        _plots_section({k: p for k, p in plots.items() if k not in IMAGE_FIGURES}),
    )
    text = "\n".join(line for section in sections for line in section)
    return inverse_wording(text, metrics)


def _header(metrics: dict, title: str) -> list[str]:
    op = metrics.get("operator", {})
    lines = [f"# {title}", ""]
    if op:
        shape = op.get("shape")
        size = (
            f"A of shape {shape[0]} × {shape[1]} (audited against its pseudo-inverse A⁺)"
            if shape and shape[0] != shape[1]
            else f"n = {op.get('n')}"
        )
        lines += [
            f"Operator **{op.get('name')}**, {size}, cond(A) = {_g(op.get('cond'), 3)}. "
            + (metrics.get("data", {}).get("summary", "")),
            "",
        ]
    return lines


def _topk(metrics: dict) -> int | None:
    a = metrics.get("audit") or {}
    return a.get("k") if a.get("path") == "top-k" else None


def _audit_path_section(audit: dict) -> list[str]:
    """Which audit ran (dense or top-k) and why; for top-k, what G estimates."""
    if not audit:
        return []
    if audit.get("path") == "top-k":
        lines = [
            f"Top-k audit on A's k = {audit.get('k')} leading singular directions, "
            f"because {audit.get('why')}; A's directions by {audit.get('basis')}. "
            f"{audit.get('what', '')}.",
        ]
    else:
        lines = [f"Dense audit (C as an n x n matrix): {audit.get('why')}."]
    return ["## Audit path", "", *lines, ""]


def _error_rows(err: dict, refs: dict) -> list[tuple]:
    rows = []
    for k, v in sorted(err.items(), key=lambda kv: (kv[1] is None, kv[1])):
        info = refs.get(k, {})
        param = ", ".join(f"{a}={_g(b, 3)}" for a, b in info.items() if isinstance(b, (int, float)))
        rows.append((LABELS.get(k, k), _g(v), param))
    return rows


def _errors_section(metrics: dict) -> list[str]:
    err = metrics.get("errors") or {}
    if not err:
        return []
    k = _topk(metrics)
    title = (
        "Relative test error ‖X̂ − X‖_F / ‖X‖_F (same test set)"
        if k is None
        else f"Relative test error on A's {k} leading directions ‖V_kᵀ(X̂ − X)‖_F / ‖V_kᵀX‖_F"
    )
    rows = _error_rows(err, metrics.get("references", {}))
    return _table_section(title, rows, ("estimator", "test error", "parameters"))


def _full_errors_section(metrics: dict) -> list[str]:
    """For the top-k audit: the errors over all of x (C has none: it lives on k directions)."""
    full = metrics.get("errors_full") or {}
    if _topk(metrics) is None or not full:
        return []
    rows = _error_rows(full, metrics.get("references", {}))
    return _table_section(
        "Relative test error over all of x, ‖X̂ − X‖_F / ‖X‖_F",
        rows,
        ("estimator", "test error", "parameters"),
    )


def _stderr(sur: dict) -> str:
    return f"{_g(sur.get('phi_stderr_median'))} / {_g(sur.get('phi_stderr_max'))}"


def _surrogate_section(sur: dict, k: int | None = None) -> list[str]:
    if k is not None:
        rows = [
            ("R² (held-out probes)", _g(sur.get("r2_heldout"))),
            ("R² on the test set (G z + c vs the network's V_kᵀx̂)", _g(sur.get("r2_test"))),
            ("rank / fitted rows", f"{sur.get('rank')} / {sur.get('n_samples')}"),
            ("standard error of φ_C, median / max", _stderr(sur)),
            ("off-diagonal share of G S_k", _g(sur.get("offdiag_share"))),
        ]
        return _table_section(
            f"The affine surrogate on A's {k} leading directions (G)", rows, ("quantity", "value")
        )
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
    return _table_section("The affine surrogate C", rows, ("quantity", "value"))


def _filters_section(filt: dict) -> list[str]:
    if not filt:
        return []
    rows = [
        (LABELS.get(k, k), _g(v), _g(filt["offdiag_share"].get(k)))
        for k, v in sorted(filt["phi_rms_distance_to_C"].items(), key=lambda kv: kv[1])
    ]
    header = ("reference", "RMS difference φ_C − φ_ref", "ref. off-diagonal share")
    return _table_section("Filter factors", rows, header)


def _jacobians_section(metrics: dict) -> list[str]:
    lines = []
    jac = metrics.get("jacobians") or {}
    if jac:
        rows = [(k, _g(v)) for k, v in _flat(jac)]
        lines += _table_section("Jacobians of the network", rows, ("quantity", "value"))
    spec = metrics.get("spectra", {})
    if spec:
        lines += [f"Spectra computed by {spec.get('method')}.", ""]
    return lines


def _notes_sections(metrics: dict) -> list[str]:
    """The notes and the timings."""
    lines = []
    notes = metrics.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {x}" for x in notes] + [""]
    tim = metrics.get("timings", {})
    if tim:
        rows = [(k, _g(v, 3)) for k, v in _flat(tim)]
        lines += _table_section("Timings (seconds)", rows, ("stage", "s"))
    return lines


_IMAGES_TEXT = {
    "images": "Test images (rows) and their reconstructions (columns), one color scale per "
    "row, each titled with its relative error ‖x̂ − x‖/‖x‖.",
    "filter_factor_maps": "Filter factors φ_i placed at the frequency k of A's i-th singular "
    "vector (a cosine/sine pair shares ±k; zero frequency at the centre).",
    "filter_factors_radial": "The same filter factors averaged over rings of equal |k| "
    "(over all directions: where the maps are not round, the average hides which directions "
    "are kept).",
}


def _images_section(plots: dict[str, Path], k: int | None = None) -> list[str]:
    """The figures of an audit on images, with a line of text each (empty without them);
    ``k`` for a top-k audit, whose maps hold only A's k leading directions."""
    shown = [name for name in IMAGE_FIGURES if name in plots]
    if not shown:
        return []
    lines = ["## Images", ""]
    for name in shown:
        text = _IMAGES_TEXT[name]
        if k is not None and name != "images":
            text += f" Top-k audit: only A's {k} leading directions were audited (blank cells)."
        lines += [text, "", f"![{name}]({Path(plots[name]).name})", ""]
    return lines


def _plots_section(plots: dict[str, Path]) -> list[str]:
    if not plots:
        return []
    lines = ["## Plots", ""]
    for name, p in plots.items():
        lines += [f"![{name}]({Path(p).name})", ""]
    return lines


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
    plots = make_plots(arrays, out_dir, history=history, inverse=inverse_wording("A⁻¹", metrics))
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


def write_run_dir(
    out, config: dict, metrics: dict, res, *, history=None, log=None, title: str
) -> None:
    """Write config.json, arrays.npz, the report and plots, and metrics.json, and publish the
    folder whole (with manifest.json; see :class:`fastinv.io.OutFolder`).

    Parameters
    ----------
    out : OutFolder or path
        The run directory: an open :class:`~fastinv.io.OutFolder` (as ``prepare_out`` gives),
        or a path, replaced if it holds fastinv's files.
    config : dict
        Written to config.json with the fastinv version.
    metrics : dict
        Written to metrics.json; its ``timings`` gain ``report`` and ``total`` (seconds).
    res : AuditResult
        Supplies the verdict and the arrays.
    history : dict, optional
        The training history, for ``training.png``.
    log : callable, optional
        Called with one progress line.
    title : str
        The report's heading.
    """
    if not isinstance(out, OutFolder):
        with OutFolder(out, force=True, command="report") as folder:
            write_run_dir(folder, config, metrics, res, history=history, log=log, title=title)
        return
    clock = Stopwatch()
    if log:
        log(f"writing the report to {out.shown}")
    work = out.work
    write_json(work / "config.json", {**config, "fastinv_version": _version()})
    save_npz(work / "arrays.npz", **res.arrays)
    hist_plain = {k: v for k, v in (history or {}).items() if k != "checkpoints"}
    write_report(work, metrics, res.verdict, res.arrays, history=hist_plain, title=title)
    tim = metrics.setdefault("timings", {})
    tim["report"] = round(clock.seconds, 3)
    tim["total"] = round(sum(v for v in tim.values() if isinstance(v, float)), 3)
    write_json(work / "metrics.json", metrics)
    out.publish()


def _version() -> str:
    from fastinv import __version__

    return __version__


def write_audit_report(
    result,
    out,
    *,
    title: str = "fastinv audit",
    config: dict | None = None,
    force: bool = False,
) -> dict:
    """Write the report of an audit made in the library, as `fastinv analyze` does.

    The folder gets report.md, report.html, the plots, arrays.npz, config.json,
    metrics.json (the audit's metrics and verdict; the audit's own timings under
    ``timings.audit_detail``) and manifest.json; it is published whole (see
    :class:`fastinv.io.OutFolder`).

    Parameters
    ----------
    result : AuditResult
        What :func:`fastinv.audit` returned (left unchanged).
    out : path
        The folder (created).
    title : str
        The report's heading.
    config : dict, optional
        Whatever describes how the audit was made, written to config.json.
    force : bool
        Replace an ``out`` that already holds (fastinv's) files.

    Returns
    -------
    dict
        The metrics as written to metrics.json.

    Raises
    ------
    FastinvError
        ``out`` is a file or cannot be written, holds files and ``force`` is not given, or
        another process is writing it.
    """
    metrics = {
        **result.metrics,
        "verdict": list(result.verdict),
        "timings": {"audit_detail": result.metrics.get("timings", {})},
    }
    with OutFolder(out, force=force, command="audit") as folder:
        write_run_dir(folder, dict(config or {}), metrics, result, title=title)
    return metrics
