"""The verdict: plain-words findings computed from an audit's metrics, each with its number.

One function per finding; each returns its sentence, or None when the metrics it rests on are
missing (no test targets, no Jacobians, ...).
"""

from __future__ import annotations

import numpy as np

from fastinv.auditing.references import LABELS, inverse_wording

__all__ = [
    "accuracy",
    "caveat",
    "closest_filter",
    "directions",
    "distances",
    "jacobian_spread",
    "linearity",
    "make_verdict",
    "noise_amplification",
]


def _fmt(x, digits=3):
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}"


def make_verdict(m: dict, s: np.ndarray) -> list[str]:
    """Plain-words findings, each with the number it rests on."""
    lines = (
        linearity(m),
        accuracy(m),
        directions(m, s),
        closest_filter(m),
        distances(m),
        noise_amplification(m),
        jacobian_spread(m),
        caveat(m),
    )
    return [inverse_wording(line, m) for line in lines if line is not None]


def _topk(m: dict) -> int | None:
    """k when the audit ran on A's k leading singular directions, else None."""
    a = m.get("audit") or {}
    return a.get("k") if a.get("path") == "top-k" else None


def _unidentified(m: dict) -> str | None:
    """Why the fit does not identify its matrix (fitted rows <= unknowns), else None."""
    a = m.get("audit") or {}
    n_fit, n = a.get("n_fit"), a.get("m", a.get("n"))  # the fit's inputs: m entries of y
    if n_fit is None or n is None:
        return None
    dim = _topk(m) or n
    if n_fit >= dim + 1:
        return None
    return (
        f"{n_fit} fitted probe rows for {dim} input directions ({dim + 1} needed): the fit is "
        "a minimum-norm guess"
    )


def linearity(m: dict) -> str | None:
    """How affine the network is: R² of its affine fit on held-out probes (and on which
    directions, for the top-k audit); no conclusion when the fit is not identified."""
    sur = m["surrogate"]
    r2 = sur.get("r2_heldout", sur.get("r2"))
    if r2 is None:
        return None
    why = _unidentified(m)
    if why is not None:
        return (
            f"Linearity: not determined — {why}, so R² = {_fmt(r2, 4)} and the errors of C "
            "reflect the rank of the fit, not the network."
        )
    k = _topk(m)
    if k is not None:
        return (
            f"Linearity: on A's {k} leading singular directions the network is "
            f"{_how_affine(r2)}: the best affine map G U_kᵀy + c explains R² = {_fmt(r2, 4)} "
            "of the variance of V_kᵀx̂ on held-out probes."
        )
    return (
        f"Linearity: on this input distribution the network is {_how_affine(r2)}: its best "
        f"affine fit C y + b explains R² = {_fmt(r2, 4)} of its output variance on held-out "
        "probes."
    )


def _how_affine(r2: float) -> str:
    if r2 > 0.99:
        return "very nearly affine"
    if r2 > 0.9:
        return "mostly affine"
    if r2 > 0.5:
        return "substantially nonlinear"
    return "far from affine"


def accuracy(m: dict) -> str | None:
    """Test errors of the network, C, the best linear inverse and A⁻¹, and what they say."""
    err = m["errors"]
    if err.get("network") is None:
        return None
    e_net, e_c = err["network"], err["surrogate"]
    lin = {k: v for k, v in err.items() if k not in ("network", "surrogate", "A_inv")}
    best_lin = min(lin, key=lin.get) if lin else None
    k = _topk(m)
    where = "" if k is None else f" on A's {k} leading singular directions (V_kᵀx)"
    msg = (
        f"Accuracy{where}: relative test error of the network {_fmt(e_net)}, of its affine "
        f"surrogate {_fmt(e_c)}"
    )
    if best_lin:
        msg += (
            f", of the best classical linear inverse ({LABELS.get(best_lin, best_lin)}) "
            f"{_fmt(lin[best_lin])}"
        )
    msg += f", of A⁻¹ itself {_fmt(err.get('A_inv'))}."
    msg += _accuracy_full(m)
    if _unidentified(m) is not None:
        return msg + " C is not identified by the probes: no conclusion on its share."
    if e_c <= 1.05 * e_net:
        msg += " The affine part accounts for essentially all of the network's accuracy."
    elif e_net < 0.95 * e_c:
        gain = 1 - e_net / e_c
        msg += (
            f" The network is {gain:.0%} more accurate than its affine part: its "
            "nonlinearity contributes."
        )
    if best_lin and e_net < 0.95 * lin[best_lin]:
        msg += " It beats every linear inverse here, which only a nonlinear estimator can."
    return msg


def _accuracy_full(m: dict) -> str:
    """For the top-k audit: the errors over all of x, where they were computed."""
    full = m.get("errors_full") or {}
    if _topk(m) is None or full.get("network") is None:
        return ""
    refs = {k: v for k, v in full.items() if k not in ("network", "A_inv")}
    text = f" Over all of x the network's error is {_fmt(full['network'])}"
    if refs:
        best = min(refs, key=refs.get)
        text += f", the best classical inverse's ({LABELS.get(best, best)}) {_fmt(refs[best])}"
    return text + "."


def directions(m: dict, s: np.ndarray) -> str | None:
    """Which of A's singular directions C inverts, suppresses or amplifies."""
    sur = m["surrogate"]
    phi = m["comparison"].get("phi_summary", {})
    k_inv, k_sup = phi.get("n_inverted"), phi.get("first_suppressed")
    if k_inv is None:
        return None
    if k_inv == 0:
        msg = (
            "Directions: C does not invert even A's leading singular direction (φ_1 outside "
            "0.9 … 1.1, where A⁻¹ has 1)"
        )
    else:
        msg = (
            f"Directions: C inverts A's leading {k_inv} singular directions (filter factor "
            f"0.9 ≤ φ ≤ 1.1, as A⁻¹ does)"
        )
    if k_sup is not None:
        frac = phi.get("suppressed_fraction_after")
        msg += (
            f" and suppresses direction {k_sup + 1} (|φ| ≤ 0.1, σ = "
            f"{_fmt(float(s[k_sup]))} against σ_1 = {_fmt(float(s[0]))})"
            + (f" and {frac:.0%} of those after it" if frac is not None else "")
        )
    if phi.get("n_amplified"):
        msg += f"; {phi['n_amplified']} directions are amplified beyond A⁻¹ (φ > 1.1)"
    what = "Vᵀ C U S" if _topk(m) is None else "G S_k on the k directions"
    msg += f"; off-diagonal share of {what} is {_fmt(sur['offdiag_share'])} " + (
        "(it acts as a spectral filter of A)."
        if sur["offdiag_share"] < 0.1
        else "(it mixes A's singular directions: it is not a spectral filter of A)."
    )
    return msg


def closest_filter(m: dict) -> str:
    """The classical filter whose factors are nearest C's, with its parameters."""
    filt = m["filters"]
    c = filt["closest_classical_filter"]
    info = m["references"].get(c, {})
    params = ", ".join(f"{k} = {_fmt(v)}" for k, v in info.items() if isinstance(v, (int, float)))
    return (
        f"Closest classical filter: {LABELS.get(c, c)} ({params}), RMS filter-factor difference "
        f"{_fmt(filt['phi_rms_distance_to_C'][c])}."
    )


def distances(m: dict) -> str | None:
    """C's operator distances from A⁻¹ and LMMSE, plain and where the inputs vary."""
    sur = m["surrogate"]
    d_inv, d_l = sur.get("rel_dist_to_inverse"), sur.get("rel_dist_to_lmmse")
    if d_inv is None:
        return None
    msg = f"Distances: ‖C − A⁻¹‖₂/‖A⁻¹‖₂ = {_fmt(d_inv)}"
    if d_l is not None:
        msg += f", ‖C − C_LMMSE‖₂/‖C_LMMSE‖₂ = {_fmt(d_l)}"
        if min(d_l, d_inv) >= 0.9:
            msg += (
                ": C is far from both (a relative distance of 1 is that of the zero map, so "
                "neither number says C resembles the reference)."
            )
        elif abs(d_l - d_inv) < 0.1 * max(d_l, d_inv):
            msg += ": C is about as far from one as from the other."
        elif d_l < d_inv:
            msg += (
                ": C is nearer the optimal linear estimator than A⁻¹ — it regularizes, it "
                "does not reproduce A⁻¹'s largest singular values."
            )
        else:
            msg += ": C is nearer A⁻¹ than the optimal linear estimator."
    else:
        msg += "."
    di, dl = sur.get("rel_dist_to_inverse_on_data"), sur.get("rel_dist_to_lmmse_on_data")
    if di is not None:
        msg += (
            f" Where the inputs actually vary (weighted by Σ_y^½, i.e. the RMS difference "
            f"of the outputs), C differs from A⁻¹ by {_fmt(di)}"
            + (f" and from LMMSE by {_fmt(dl)}" if dl is not None else "")
            + " relative to the reference's own output."
        )
    return msg


def _jacobians(m: dict) -> dict | None:
    """The Jacobian metrics when they hold σ_max(J) and 1/σ_min(A), else None."""
    jac = m.get("jacobians") or {}
    if jac.get("sigma_max_J_max") is not None:
        return jac
    return None


def noise_amplification(m: dict) -> str | None:
    """The network's largest Jacobian singular value against A⁻¹'s 1/σ_min(A)."""
    jac = _jacobians(m)
    if jac is None:
        return None
    inv = jac.get("inverse_sigma_min_A")
    gain = jac.get("tikhonov_max_gain")
    if inv is None and not gain:
        return None
    text = (
        f"Noise amplification: over {jac.get('n_probes_sigma_max', jac['n_probes'])} probes "
        f"the network's Jacobian has σ_max ≤ {_fmt(jac['sigma_max_J_max'])}"
    )
    if inv is not None:
        ratio = jac["sigma_max_J_max"] / inv
        text += f", against 1/σ_min(A) = {_fmt(inv)} for A⁻¹ (ratio {_fmt(ratio)})" + (
            " — it inherits A⁻¹'s noise amplification."
            if ratio > 0.5
            else " — far below A⁻¹'s amplification."
        )
    else:
        text += "."
    if gain:
        of = LABELS.get(jac.get("tikhonov_max_gain_of"), "Tikhonov")
        text += (
            f" The informative yardstick is the largest gain of {of}, 1/(2√λ) = "
            f"{_fmt(gain)}: the network's is {_fmt(jac['sigma_max_J_max'] / gain)} times that."
        )
    return text


def jacobian_spread(m: dict) -> str | None:
    """How much the Jacobian varies over the probes, and how far its mean is from C."""
    jac = _jacobians(m)
    if jac is None:
        return None
    c, y = ("C", "y") if _topk(m) is None else ("G (V_kᵀ J̄ U_k against G)", "z")
    return (
        f"Jacobian spread: ‖J(y) − J̄‖_F/‖J̄‖_F is {_fmt(jac['spread_rel_fro_mean'])} on "
        f"average over the probes. The mean Jacobian J̄ differs from {c} by "
        f"{_fmt(jac['mean_jacobian_vs_C_rel_fro_data_weighted'])} on the directions the "
        f"inputs explore (‖(J̄ − C)Σ_{y}^½‖_F/‖CΣ_{y}^½‖_F; "
        f"{_fmt(jac['mean_jacobian_vs_C_rel_fro'])} unweighted, where C's low-variance "
        "directions are poorly determined); Stein's lemma makes them equal for Gaussian "
        "inputs."
    )


def caveat(m: dict) -> str:
    """Why a spectral match does not explain accuracy (and, when C is far from A⁻¹, more);
    for a rectangular A, what A⁺ cannot say (the bound on ‖C − A⁻¹‖ needs x = A⁻¹y)."""
    a = m.get("audit") or {}
    if a.get("m") is not None and a["m"] != a.get("n"):
        return _caveat_rectangular(a["m"], a["n"])
    text = (
        "Caveat: a spectral match is a consequence of accuracy, not its cause. With noise-free "
        "data, ‖C − A⁻¹‖₂ ≤ ‖X̂ − X‖₂/σ_min(Y), so an accurate network forces C toward A⁻¹; but "
        "x̂ = A⁻¹y + g(y) with g even has C = A⁻¹ and any error. Nothing here shows the network "
        "works because C lies near A⁻¹."
    )
    d_inv = m["surrogate"].get("rel_dist_to_inverse")
    if d_inv is not None and d_inv > 0.5:
        text += (
            " Here C is far from A⁻¹, and whatever accuracy the network has comes with "
            "suppressing the directions where A⁻¹ amplifies noise."
        )
    return text


def _caveat_rectangular(rows: int, cols: int) -> str:
    text = (
        f"Caveat: a spectral match is a consequence of accuracy, not its cause, and here A is "
        f"{rows} × {cols}: "
    )
    if rows < cols:
        text += (
            f"x is not determined by y (A has a null space of dimension at least "
            f"{cols - rows}), so x̂ ≠ A⁺y even for a perfect network: the part of x̂ in that "
            "null space comes from what the network learned about the signals, and the "
            "filter factors describe only A's row space."
        )
    else:
        text += (
            f"y has at least {rows - cols} directions outside A's range, which A⁺ ignores "
            "and a network may use."
        )
    return text + " Nothing here shows the network works because C lies near A⁺."
