"""Tests that kill surviving mutants of fastinv/auditing/sections.py (issue 15).

The audit's sections are called directly on small cases whose answers are known exactly
(a diagonal A, hand-made filters), and checked against tests/naive.py or closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive import naive_pinv, naive_tikhonov

from fastinv.auditing import sections as S
from fastinv.auditing.references import References
from fastinv.errors import FastinvError
from fastinv.linalg.estimators import thin_svd


class _Fit:
    def __init__(self, C, b):
        self.C, self.b = C, b


def _rel(Xhat, X):
    return float(np.linalg.norm(Xhat - X) / np.linalg.norm(X))


# --------------------------------------------------------------------------------------------
# the network on the test set


def test_network_on_test_uses_the_intercept_and_the_r2_formula():
    rng = np.random.default_rng(0)
    C, b = rng.standard_normal((3, 3)), np.array([1.0, -2.0, 0.5])
    Y = rng.standard_normal((20, 3))
    Xnet = np.tanh(Y) * 2.0 + 1.0
    net = S.network_on_test(lambda y: np.tanh(y) * 2.0 + 1.0, Y, _Fit(C, b))
    np.testing.assert_array_equal(net.X_net, Xnet)
    np.testing.assert_allclose(net.X_c, Y @ C.T + b, rtol=1e-14)
    r2 = 1.0 - np.sum((Y @ C.T + b - Xnet) ** 2) / np.sum((Xnet - Xnet.mean(0)) ** 2)
    assert net.r2 == pytest.approx(r2, rel=1e-13)
    exact = S.network_on_test(lambda y: y @ C.T + b, Y, _Fit(C, b))
    assert exact.r2 == pytest.approx(1.0, abs=1e-15)


def test_network_on_test_refuses_bad_outputs():
    Y = np.ones((4, 3))
    fit = _Fit(np.eye(3), np.zeros(3))
    with pytest.raises(
        FastinvError,
        match=r"^model output has shape \(4, 2\) for input \(4, 3\); it must map each "
        r"measurement to a signal: \(4, 3\)$",
    ):
        S.network_on_test(lambda y: y[:, :2], Y, fit)
    with pytest.raises(FastinvError, match=r"^the model's outputs on the test set contains"):
        S.network_on_test(lambda y: y * np.nan, Y, fit)


# --------------------------------------------------------------------------------------------
# errors of every estimator on the same test set


def _diag_case():
    s = np.array([4.0, 2.0, 1.0, 0.5])
    A = np.diag(s)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 4))
    Y = X @ A.T + 0.05 * rng.standard_normal((30, 4))
    return A, s, X, Y


def test_errors_on_test_matrices_offsets_and_filters():
    A, s, X, Y = _diag_case()
    svd = thin_svd(A)
    U, sv, Vt = svd
    lam = 0.3
    phi = sv**2 / (sv**2 + lam)  # naive_tikhonov: (AᵀA + λI)⁻¹Aᵀ
    B = naive_tikhonov(A, lam)
    off = np.array([0.1, 0.0, -0.2, 0.3])
    refs = References(
        matrices={"A_inv": naive_pinv(A), "lmmse": B},
        offsets={"lmmse": off},
        filters={"tikhonov_gcv": phi, "A_inv": np.ones(4), "tsvd_oracle": np.r_[1, 1, 0, 0.0]},
    )
    Xnet = 0.9 * X
    net = S.NetworkOnTest(Xnet, Y @ B.T + off, 0.5)
    notes: list = []
    err = S.errors_on_test(net, Y, X, refs, svd, notes)
    assert notes == []
    assert err["network"] == pytest.approx(_rel(Xnet, X), rel=1e-13)
    assert err["surrogate"] == pytest.approx(_rel(Y @ B.T + off, X), rel=1e-13)
    assert err["A_inv"] == pytest.approx(_rel(Y @ naive_pinv(A).T, X), rel=1e-12)
    assert err["lmmse"] == pytest.approx(_rel(Y @ B.T + off, X), rel=1e-12)
    # the filters, evaluated in A's SVD basis, equal the dense filtered inverses
    assert err["tikhonov_gcv"] == pytest.approx(_rel(Y @ B.T, X), rel=1e-12)
    T = np.diag(np.r_[1 / s[:2], 0, 0])
    assert err["tsvd_oracle"] == pytest.approx(_rel(Y @ T.T, X), rel=1e-12)
    assert set(err) == {"network", "surrogate", "A_inv", "lmmse", "tikhonov_gcv", "tsvd_oracle"}


def test_errors_on_test_singular_a_and_no_targets():
    s = np.array([2.0, 1.0, 0.0])
    A = np.diag(s)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 3))
    Y = X @ A.T
    refs = References(filters={"tsvd_oracle": np.ones(3)})
    net = S.NetworkOnTest(X, X, 1.0)
    err = S.errors_on_test(net, Y, X, refs, thin_svd(A), [])
    # 1/σ of a zero σ is 0, not inf: the third component is simply not recovered
    assert err["tsvd_oracle"] == pytest.approx(
        np.linalg.norm(X[:, 2]) / np.linalg.norm(X), rel=1e-12
    )
    notes: list = []
    assert S.errors_on_test(net, Y, None, refs, thin_svd(A), notes) == {}
    assert notes == [
        "no test targets: test errors of the network, C and the references are not given"
    ]


# --------------------------------------------------------------------------------------------
# the spectral plan


def test_spectral_plan_full_and_randomized():
    p = S.spectral_plan(30, 50, None, 0)
    assert (p.use_full, p.topk, p.ks, p.method) == (True, 30, [1, 2, 5, 10, 20], "full SVD")
    p = S.spectral_plan(50, 50, None, 0)
    assert (p.use_full, p.topk) == (True, 50)
    assert p.ks == [1, 2, 5, 10, 20]
    p = S.spectral_plan(51, 50, None, 0)
    assert (p.use_full, p.topk, p.method) == (False, 51, "randomized top-51 SVD")
    p = S.spectral_plan(300, 50, None, 0)
    assert (p.topk, p.ks) == (256, [1, 2, 5, 10, 20, 50, 100, 200, 256])
    assert p.method == "randomized top-256 SVD"
    assert S.spectral_plan(1, 50, None, 0).ks == [1]
    assert S.spectral_plan(2, 50, None, 0).ks == [1]
    assert S.spectral_plan(6, 50, None, 0).ks == [1, 2, 5]
    assert S.spectral_plan(201, 500, None, 0).ks == [1, 2, 5, 10, 20, 50, 100, 200]
    assert S.spectral_plan(30, 50, [3, 4], 0).ks == [3, 4]
    M = np.diag([3.0, 2.0, 1.0])
    U, sv, Vt = S.spectral_plan(3, 2, None, 0).svd_fn(M, 2)[:3]
    np.testing.assert_allclose(sv, [3.0, 2.0], rtol=1e-10)


# --------------------------------------------------------------------------------------------
# filter factors side by side: the closest classical filter and the φ-distances


def test_spectral_comparison_closest_filter_and_distances():
    A, s, _, _ = _diag_case()
    svd = thin_svd(A)
    lam = 1.0
    B = naive_tikhonov(A, lam)
    phi_tik = s**2 / (s**2 + lam)
    C = 0.97 * B  # φ(C) = 0.97 φ_tik: Tikhonov is the closest filter
    phi_tsvd = np.r_[1.0, 1.0, 0.0, 0.0]
    refs = References(
        matrices={"A_inv": naive_pinv(A), "tikhonov_gcv": B},
        filters={"tikhonov_gcv": phi_tik, "tsvd_oracle": phi_tsvd},
        best_tikhonov="tikhonov_gcv",
    )
    plan = S.spectral_plan(4, 50, None, 0)
    R = np.eye(4)
    spec = S.spectral_comparison(C, svd, refs, C @ R, {"A_inv": naive_pinv(A)}, plan)
    phi_c = 0.97 * phi_tik
    np.testing.assert_allclose(spec.phi["C"], phi_c, rtol=1e-12)
    np.testing.assert_allclose(spec.phi["A_inv"], np.ones(4), rtol=1e-12)
    assert spec.closest == "tikhonov_gcv"

    def rms(a, b):
        return float(np.sqrt(np.mean((a - b) ** 2)))

    assert spec.phi_distance["tikhonov_gcv"] == pytest.approx(rms(phi_c, phi_tik), rel=1e-9)
    assert spec.phi_distance["tsvd_oracle"] == pytest.approx(rms(phi_c, phi_tsvd), rel=1e-12)
    assert spec.phi_distance["A_inv"] == pytest.approx(rms(phi_c, np.ones(4)), rel=1e-12)
    assert "C" not in spec.phi_distance
    assert spec.offdiag["C"] == pytest.approx(0.0, abs=1e-12)
    assert spec.offdiag["tsvd_oracle"] == 0.0
    np.testing.assert_allclose(spec.svals["C"], np.sort(0.97 * s / (s**2 + 1))[::-1], rtol=1e-12)
    np.testing.assert_allclose(spec.svals["A_inv"], np.sort(1 / s)[::-1], rtol=1e-12)
    assert set(spec.angles_on_data) == {"A_inv_left"}
    # C close to A⁻¹ is never called "closest classical filter" A_inv; TSVD wins instead
    C2 = naive_pinv(A) @ np.diag([1.0, 1.0, 0.05, 0.0])
    spec = S.spectral_comparison(C2, svd, refs, C2, {}, plan)
    assert spec.closest == "tsvd_oracle"


# --------------------------------------------------------------------------------------------
# the metrics the report prints


def _metrics(with_lmmse: bool):
    from fastinv.linalg.surrogate import fit_linear

    A, s, X, Y = _diag_case()
    svd = thin_svd(A)
    B = naive_tikhonov(A, 0.5)
    mats = {"A_inv": naive_pinv(A), "tikhonov_gcv": naive_tikhonov(A, 0.2)}
    if with_lmmse:
        mats["lmmse"] = B
    refs = References(matrices=mats, info={"A_inv": {"kind": "exact"}})
    Xnet = Y @ B.T + 0.01 * np.sin(Y)
    fit = fit_linear(Y, Xnet)
    net = S.network_on_test(lambda y: y @ B.T + 0.01 * np.sin(y), Y, fit)
    notes: list = ["a note"]
    errors = S.errors_on_test(net, Y, X, refs, svd, notes)
    plan = S.spectral_plan(4, 50, None, 0)
    spec = S.spectral_comparison(fit.C, svd, refs, fit.C, {"A_inv": naive_pinv(A)}, plan)
    on_data = {"A_inv": 0.25, "lmmse": 0.125} if with_lmmse else {"A_inv": 0.25}
    out = S.audit_metrics(
        fit=fit, net=net, errors=errors, on_data=on_data, refs=refs, spec=spec,
        jacobians={"n_probes": 3}, plan=plan, s=s, notes=notes,
        timings={"fit": 1.23456789, "svd": 0.00004},
    )  # fmt: skip
    return out, fit, net, errors, spec, A, B, s, refs


def test_audit_metrics_surrogate_numbers_from_their_definitions():
    out, fit, net, errors, spec, A, B, s, refs = _metrics(True)
    sur = out["surrogate"]
    for key, value in fit.to_dict().items():
        assert sur[key] == value
    assert sur["r2_test"] == net.r2
    assert errors["surrogate"] == pytest.approx(_rel(net.X_c, _diag_case()[2]), rel=1e-13)
    assert sur["test_rel_error"] == errors["surrogate"]

    def n2(M):
        return np.linalg.svd(M, compute_uv=False)[0]

    Ainv = naive_pinv(A)
    assert sur["rel_dist_to_inverse"] == pytest.approx(n2(fit.C - Ainv) / n2(Ainv), rel=1e-10)
    assert sur["rel_dist_to_inverse_fro"] == pytest.approx(_rel(fit.C, Ainv), rel=1e-10)
    assert sur["rel_dist_to_lmmse"] == pytest.approx(n2(fit.C - B) / n2(B), rel=1e-8)
    assert sur["rel_dist_to_lmmse_fro"] == pytest.approx(_rel(fit.C, B), rel=1e-8)
    assert sur["rel_dist_to_inverse_on_data"] == 0.25
    assert sur["rel_dist_to_lmmse_on_data"] == 0.125
    assert sur["offdiag_share"] == spec.offdiag["C"]


def test_audit_metrics_sections_and_spectra():
    out, fit, net, errors, spec, A, B, s, refs = _metrics(True)
    assert out["errors"] is errors
    assert out["references"] == {"A_inv": {"kind": "exact"}}
    assert out["jacobians"] == {"n_probes": 3}
    assert out["notes"] == ["a note"]
    assert out["timings"] == {"fit": 1.2346, "svd": 0.0}
    assert out["filters"] == {
        "offdiag_share": spec.offdiag,
        "phi_rms_distance_to_C": spec.phi_distance,
        "closest_classical_filter": spec.closest,
    }
    assert out["spectra"] == {
        "method": "full SVD",
        "sigma_max_A": 4.0,
        "sigma_min_A": 0.5,
        "sigma_max_C": pytest.approx(np.linalg.svd(fit.C, compute_uv=False)[0], rel=1e-12),
        "sigma_max_A_inv": pytest.approx(2.0, rel=1e-12),
    }
    cmp = out["comparison"]
    assert cmp["n"] == 4 and cmp["phi_summary"] == spec.comparison.phi_summary()
    on = cmp["principal_angles_on_data"]
    assert on["ks"] == [1, 2]
    assert on["what"] == (
        "left singular subspaces of M Σ_y^½ (principal components of the outputs M y over "
        "the probes)"
    )
    assert on["A_inv_left"]["k"] == [1, 2]
    assert "angles_deg" not in on["A_inv_left"]
    np.testing.assert_allclose(
        on["A_inv_left"]["max_deg"], spec.angles_on_data["A_inv_left"]["max_deg"]
    )


def test_audit_metrics_without_lmmse():
    out, *_ = _metrics(False)
    sur = out["surrogate"]
    assert sur["rel_dist_to_lmmse"] is None and sur["rel_dist_to_lmmse_fro"] is None
    assert sur["rel_dist_to_lmmse_on_data"] is None
    assert sur["rel_dist_to_inverse_on_data"] == 0.25
