"""Verdict sentences in the corner cases: nothing inverted, far from every reference, the
top-k scope, a fit the probes do not identify, and the Tikhonov gain as the yardstick."""

from __future__ import annotations

import numpy as np

from fastinv.auditing import verdict


def _metrics(**over):
    m = {
        "surrogate": {"r2_heldout": 0.95, "offdiag_share": 0.01},
        "comparison": {"phi_summary": {"n_inverted": 3, "first_suppressed": None}},
        "errors": {"network": 0.2, "surrogate": 0.21, "tikhonov_gcv": 0.25},
        "filters": {
            "closest_classical_filter": "tikhonov_gcv",
            "phi_rms_distance_to_C": {"tikhonov_gcv": 0.1},
        },
        "references": {"tikhonov_gcv": {"lambda": 0.01}},
    }
    for key, value in over.items():
        m[key] = {**m.get(key, {}), **value}
    return m


def test_nothing_inverted_is_said_so():
    m = _metrics(comparison={"phi_summary": {"n_inverted": 0, "first_suppressed": 0}})
    text = verdict.directions(m, np.array([2.0, 1.0]))
    assert text.startswith("Directions: C does not invert even A's leading singular direction")
    assert "leading 0" not in text


def test_far_from_both_references():
    m = _metrics(surrogate={"rel_dist_to_inverse": 1.0, "rel_dist_to_lmmse": 4.03})
    text = verdict.distances(m)
    assert "C is far from both" in text and "nearer" not in text
    near = verdict.distances(
        _metrics(surrogate={"rel_dist_to_inverse": 0.8, "rel_dist_to_lmmse": 0.2})
    )
    assert "nearer the optimal linear estimator than A⁻¹" in near


def test_topk_scope_and_unidentified_fit():
    m = _metrics(audit={"path": "top-k", "k": 7, "n_fit": 100, "n": 4096})
    assert verdict.linearity(m).startswith("Linearity: on A's 7 leading singular directions")
    assert verdict.accuracy(m).startswith("Accuracy on A's 7 leading singular directions")
    few = _metrics(audit={"path": "dense", "k": None, "n_fit": 40, "n": 64})
    assert verdict.linearity(few).startswith(
        "Linearity: not determined — 40 fitted probe rows for 64 input directions (65 needed)"
    )
    assert verdict.accuracy(few).endswith("no conclusion on its share.")


def test_noise_amplification_against_the_tikhonov_gain():
    jac = {
        "n_probes": 4,
        "sigma_max_J_max": 5.0,
        "inverse_sigma_min_A": None,
        "tikhonov_max_gain": 0.5 / np.sqrt(0.01),
        "tikhonov_max_gain_of": "tikhonov_gcv",
    }
    text = verdict.noise_amplification(_metrics(jacobians=jac))
    assert "1/(2√λ) = 5" in text and "the network's is 1 times that" in text


def test_jacobian_spread_names_G_for_the_topk_audit():
    jac = {
        "n_probes": 4,
        "sigma_max_J_max": 2.0,
        "spread_rel_fro_mean": 0.375,
        "mean_jacobian_vs_C_rel_fro_data_weighted": 0.218,
        "mean_jacobian_vs_C_rel_fro": 0.5,
    }
    top = verdict.jacobian_spread(_metrics(jacobians=jac, audit={"path": "top-k", "k": 8}))
    assert "differs from G (V_kᵀ J̄ U_k against G) by 0.218" in top and "Σ_z^½" in top
    dense = verdict.jacobian_spread(_metrics(jacobians=jac))
    assert "differs from C by 0.218" in dense and "Σ_y^½" in dense
