"""Tests that kill surviving mutants of fastinv/auditing/sections.py (issue 15).

The audit's sections are called directly on small cases whose answers are known exactly
(a diagonal A, hand-made filters), and checked against tests/naive.py or closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive import naive_output_pc_angles, naive_pinv, naive_tikhonov

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


# --------------------------------------------------------------------------------------------
# second pass (issue 15): the remaining sections, mutated with tests/test_mutants_sections.py


def test_errors_on_test_zero_sigma_with_noise_in_the_null_direction():
    # A = diag(2, 1, 0): a filter with φ = 1 on the zero σ must still give 0 there (A⁺), and
    # 1/σ is never formed for σ = 0 (no division by zero, even with floating errors raised)
    s = np.array([2.0, 1.0, 0.0])
    A = np.diag(s)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 3))
    Y = X @ A.T + 0.3 * rng.standard_normal((12, 3))  # noise also along the null direction
    refs = References(filters={"tsvd_oracle": np.ones(3), "tikhonov_gcv": np.r_[0.5, 0.25, 0.75]})
    net = S.NetworkOnTest(X, X, 1.0)
    with np.errstate(divide="raise", invalid="raise"):
        err = S.errors_on_test(net, Y, X, refs, thin_svd(A), [])
    assert err["tsvd_oracle"] == pytest.approx(_rel(Y @ naive_pinv(A).T, X), rel=1e-12)
    F = np.diag([0.5 / 2.0, 0.25 / 1.0, 0.0])  # V diag(φ/σ) Uᵀ, 0 where σ = 0
    assert err["tikhonov_gcv"] == pytest.approx(_rel(Y @ F.T, X), rel=1e-12)


def _recording_svd(calls):
    def svd_fn(M, k):
        calls.append((np.array(M), k))
        U, sv, Vt = np.linalg.svd(M)
        return U[:, :k], sv[:k], Vt[:k]

    return svd_fn


def test_spectral_comparison_passes_the_plan_on_and_never_picks_a_inv():
    A, s, _, _ = _diag_case()  # A = diag(4, 2, 1, 0.5)
    svd = thin_svd(A)
    lam = 0.3
    B = naive_tikhonov(A, lam)  # diag(s / (s² + λ))
    phi_tik = s**2 / (s**2 + lam)
    phi_tsvd = np.r_[1.0, 1.0, 0.0, 0.0]
    # no "A_inv" matrix: compare adds A⁺ itself
    refs = References(
        matrices={"tikhonov_gcv": B}, filters={"tikhonov_gcv": phi_tik, "tsvd_oracle": phi_tsvd}
    )
    calls: list = []
    plan = S.SpectralPlan(use_full=False, topk=3, ks=[1, 3], svd_fn=_recording_svd(calls))
    C = naive_pinv(A)  # φ(C) = 1: A⁻¹ is at φ-distance 0 but is never the closest filter
    R = np.diag([9.0, 3.0, 1.0, 0.7])  # Σ_y^½
    CR, BR = C @ R, {"tikhonov_gcv": B @ R}
    spec = S.spectral_comparison(C, svd, refs, CR, BR, plan)

    def rms(a, b):
        return float(np.sqrt(np.mean((a - b) ** 2)))

    assert spec.phi_distance["A_inv"] == pytest.approx(0.0, abs=1e-12)
    assert rms(np.ones(4), phi_tik) < rms(np.ones(4), phi_tsvd)
    assert spec.closest == "tikhonov_gcv"
    # the plan's ks, topk and svd_fn reach spectral.compare ...
    assert spec.comparison.ks == [1, 3]
    assert spec.comparison.info["svd"] == "svd_fn (top-k)"
    assert spec.comparison.info["topk"] == 3
    assert set(spec.svals) == {"C", "A_inv", "tikhonov_gcv"}
    np.testing.assert_allclose(spec.svals["C"], [2.0, 1.0, 0.5], rtol=1e-12)
    np.testing.assert_allclose(spec.svals["A_inv"], [2.0, 1.0, 0.5], rtol=1e-12)
    np.testing.assert_allclose(spec.svals["tikhonov_gcv"], np.sort(s / (s**2 + lam))[::-1][:3])
    assert any(M.shape == C.shape and np.array_equal(M, C) and k == 3 for M, k in calls)
    # ... and the on-data angles: C R_y factorised by svd_fn to the plan's top-k
    assert [k for M, k in calls if np.array_equal(M, CR)] == [3]
    # C R_y = diag(2.25, 1.5, 1, 1.4), B R_y = diag(2.20, 1.40, 0.77, 0.64): the leading
    # output direction is e_1 for both; the top-3 ones differ by e_3 against e_4 (90°)
    on = spec.angles_on_data["tikhonov_gcv_left"]
    assert on["k"] == [1, 3]
    np.testing.assert_allclose(on["max_deg"], [0.0, 90.0], atol=1e-6)
    for k, got in zip(on["k"], on["max_deg"], strict=True):
        ref = np.degrees(np.max(naive_output_pc_angles(C, B, R @ R.T, k)))
        assert got == pytest.approx(ref, abs=1e-6)


def test_spectral_plan_full_above_256_and_its_svd_fn():
    from fastinv.linalg.randomized import svd_topk

    p = S.spectral_plan(300, 500, None, 0)
    assert (p.use_full, p.topk, p.method) == (True, 300, "full SVD")
    assert p.ks == [1, 2, 5, 10, 20, 50, 100, 200]
    # svd_fn is svd_topk with the plan's full-SVD threshold and seed: a 120 x 120 matrix
    # above the threshold 10 takes the randomized path with seed 7, bit for bit
    M = np.random.default_rng(4).standard_normal((120, 120))
    U, sv, Vt, info = S.spectral_plan(120, 10, None, 7).svd_fn(M, 2)
    U0, s0, Vt0, info0 = svd_topk(M, 2, full_threshold=10, seed=7)
    assert info["method"] == info0["method"] == "rsvd"
    np.testing.assert_array_equal(sv, s0)
    np.testing.assert_array_equal(U, U0)
    np.testing.assert_array_equal(Vt, Vt0)
    s8 = svd_topk(M, 2, full_threshold=10, seed=8)[1]
    assert not np.array_equal(sv, s8)  # the seed matters on this matrix


def test_check_inputs_returns_the_arrays_and_refuses_bad_ones():
    from fastinv.problem.operators import Operator

    op = Operator.from_array(np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))  # (m, n) = (3, 2)
    rng = np.random.default_rng(5)
    P, Yt = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    Xt = rng.standard_normal((4, 2))
    p, y, x = S.check_inputs(op, P, (Yt, Xt))
    np.testing.assert_array_equal(p, P)
    np.testing.assert_array_equal(y, Yt)
    np.testing.assert_array_equal(x, Xt)
    p, y, x = S.check_inputs(op, P[:2].tolist(), [Yt[:1].tolist(), None])
    np.testing.assert_array_equal(p, P[:2])
    np.testing.assert_array_equal(y, Yt[:1])
    assert x is None

    def refused(msg, probes=P, test=(Yt, Xt), oper=op):
        with pytest.raises(FastinvError, match="^" + msg):
            S.check_inputs(oper, probes, test)

    refused(r"probes must have shape \(\*, 3\), got \(5, 2\)$", probes=P[:, :2])
    refused(
        r"probes must have at least 2 rows \(an affine fit needs two points\), got 1; give "
        r"more probes \(at least n = 2 for a full-rank C\)$",
        probes=P[:1],
    )
    Pbad = P.copy()
    Pbad[1, 2] = np.inf
    refused(r"probes contains 1 non-finite value\(s\) \(first: inf at index \(1, 2\)\)", Pbad)
    msg = (
        r"test must be a pair \(Y_test, X_test or None\), got {}; pass test=\(Y_test, None\) "
        r"when there are no targets$"
    )
    refused(msg.format("tuple"), test=(Yt,))
    refused(msg.format("list"), test=[Yt, Xt, None])
    refused(msg.format("ndarray"), test=Yt[:2])
    refused(r"test inputs must have shape \(\*, 3\), got \(4, 2\)$", test=(Yt[:, :2], Xt))
    refused(r"test inputs must have at least one row, got 0$", test=(Yt[:0], None))
    Ybad = Yt.copy()
    Ybad[3, 0] = np.nan
    refused(r"test inputs contains 1 non-finite value\(s\) \(first: nan at index \(3, 0\)\)",
            test=(Ybad, Xt))  # fmt: skip
    refused(r"test targets must have shape \(4, 2\), got \(4, 3\)$", test=(Yt, Yt))
    refused(r"test targets must have shape \(4, 2\), got \(3, 2\)$", test=(Yt, Xt[:3]))
    Xbad = Xt.copy()
    Xbad[0, 1] = -np.inf
    refused(r"test targets contains 1 non-finite value\(s\) \(first: -inf at index \(0, 1\)\)",
            test=(Yt, Xbad))  # fmt: skip
    zero = Operator.from_array(np.zeros((3, 2)))
    refused(r"the operator A is all zeros: there is nothing to invert; check A$", oper=zero)
    refused(r"the operator A is all zeros", test=(Yt, None), oper=zero)


def test_is_zero_operator_dense_exact_and_matrix_free():
    from types import SimpleNamespace

    from fastinv.problem.operators import Operator
    from fastinv.problem.structured import DiagonalMap, FuncMap

    A = np.zeros((3, 2))
    assert S.is_zero_operator(Operator.from_array(A))
    A[2, 1] = 1e-300
    assert not S.is_zero_operator(Operator.from_array(A))
    # a dense A is read entry by entry, not through one random probe row: 5e-324 times a
    # probe entry below 1/2 rounds to 0, yet this A is not zero
    assert not S.is_zero_operator(Operator.from_array(np.array([[5e-324]])))
    # an object without a linear map: its .A decides, whatever its structure says
    assert S.is_zero_operator(SimpleNamespace(structure="fft2", A=np.zeros((2, 2))))
    assert not S.is_zero_operator(SimpleNamespace(structure="fft2", A=np.eye(2)))
    # n = 10⁵: a dense A (80 GB) is refused, so these answer from σ or from one row
    n = 100_000
    d = np.zeros(n)
    assert S.is_zero_operator(Operator(DiagonalMap(d), name="d"))
    d[-1] = -0.5  # σ = |d| = 0.5
    assert not S.is_zero_operator(Operator(DiagonalMap(d), name="d"))
    free = Operator(FuncMap(lambda X: 0.0 * X, lambda Y: 0.0 * Y, (n, n)), name="zero")
    assert S.is_zero_operator(free)
    w = np.zeros(n)
    w[7] = 1e-3
    one = Operator(FuncMap(lambda X: w * X, lambda Y: w * Y, (n, n)), name="one")
    assert not S.is_zero_operator(one)


def test_dense_audit_bytes_and_surrogate_holdout_closed_forms():
    # 32 float64 n x n matrices plus the inputs and outputs (rows x n each, float64)
    assert S.dense_audit_bytes(3, 5) == 32 * 9 * 8 + 2 * 5 * 3 * 8 == 2544
    assert S.dense_audit_bytes(1, 0) == 256
    assert S.dense_audit_bytes(64, 8000) == 32 * 64 * 64 * 8 + 2 * 8000 * 64 * 8
    assert S.surrogate_holdout(2) == 0.0
    assert S.surrogate_holdout(49) == 0.0
    assert S.surrogate_holdout(50) == 0.2
    assert S.surrogate_holdout(10**6) == 0.2


def test_fit_affine_surrogate_holdout_notes_and_moments():
    from naive import lstsq_fit, r2_direct

    from fastinv.linalg.surrogate import surrogate_moments

    M = np.array([[1.0, -0.5, 2.0], [0.3, 1.5, -1.0]])  # signals n = 2, measurements m = 3
    seen: list = []

    def f(Y):
        seen.append(Y.shape[0])
        return np.tanh(Y) @ M.T + np.array([0.5, -1.0])

    Y = np.random.default_rng(6).standard_normal((60, 3))
    notes: list = []
    fit = S.fit_affine_surrogate(f, Y, seed=3, notes=notes, n=2)
    assert notes == []
    held = np.zeros(60, dtype=bool)
    held[np.random.default_rng(3).choice(60, size=12, replace=False)] = True  # 20 % of 60
    C, b = lstsq_fit(Y[~held], f(Y[~held]))
    assert (fit.n_heldout, fit.n_samples) == (12, 48)
    np.testing.assert_allclose(fit.C, C, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit.b, b, rtol=1e-10, atol=1e-12)
    assert fit.r2 == pytest.approx(r2_direct(Y[held], f(Y[held]), C, b), rel=1e-10)
    # the fitted rows' moments from elsewhere: the model then runs on the 12 held-out rows only
    acc = surrogate_moments(f, Y, holdout=0.2, seed=3, n_out=2)
    seen.clear()
    fit2 = S.fit_affine_surrogate(f, Y, seed=3, notes=notes, n=2, moments=acc)
    assert sum(seen) == 12
    np.testing.assert_allclose(fit2.C, C, rtol=1e-10, atol=1e-12)
    assert fit2.r2 == pytest.approx(fit.r2, rel=1e-10)
    # fewer than 50 probes: none held out, R² in-sample, and a note says so
    fit3 = S.fit_affine_surrogate(f, Y[:10], seed=3, notes=notes, n=2)
    assert notes == ["only 10 probes: R² is in-sample (no probes held out)"]
    C, b = lstsq_fit(Y[:10], f(Y[:10]))
    assert (fit3.n_heldout, fit3.n_samples) == (0, 10)
    np.testing.assert_allclose(fit3.C, C, rtol=1e-10, atol=1e-12)
    assert fit3.r2 == pytest.approx(r2_direct(Y[:10], f(Y[:10]), C, b), rel=1e-10)


def test_audit_arrays_every_array_from_its_definition():
    from types import SimpleNamespace

    A, s, X, Y = _diag_case()
    svd = thin_svd(A)
    U = svd[0]
    B = naive_tikhonov(A, 0.3)
    refs = References(
        matrices={"A_inv": naive_pinv(A), "tikhonov_gcv": B},
        filters={"tikhonov_gcv": s**2 / (s**2 + 0.3), "tsvd_oracle": np.r_[1.0, 1, 0, 0]},
    )
    C, b = 0.9 * naive_pinv(A), np.array([0.1, -0.2, 0.3, 0.0])
    plan = S.spectral_plan(4, 50, [1, 3], 0)
    R = np.diag([9.0, 3.0, 1.0, 0.7])
    spec = S.spectral_comparison(C, svd, refs, C @ R, {"tikhonov_gcv": B @ R}, plan)
    jac = {"jac_sv_max": np.array([3.0, 1.0])}
    curves = {
        "gcv": SimpleNamespace(grid=[1e-3, 1e-2], curve=(0.5, 0.25)),
        "oracle": SimpleNamespace(grid=[2.0], curve=[7.0]),
    }
    Yt = Y[:7]
    out = S.audit_arrays(
        fit=_Fit(C, b), s=s, U=U, Y_test=Yt, spec=spec, plan=plan, jacobians=jac, curves=curves
    )
    refs_lr = [f"{r}_{side}" for r in ("A_inv", "tikhonov_gcv") for side in ("left", "right")]
    assert set(out) == {
        "C", "b", "sigma_A", "sv_C", "sv_A_inv", "sv_tikhonov_gcv", "phi_C", "phi_A_inv",
        "phi_tikhonov_gcv", "phi_tsvd_oracle", "angles_ks", *[f"angles_{k}" for k in refs_lr],
        "angles_on_data_tikhonov_gcv_left", "picard_coef", "jac_sv_max", "lambda_grid_gcv",
        "lambda_curve_gcv", "lambda_grid_oracle", "lambda_curve_oracle",
    }  # fmt: skip
    assert out["C"] is C and out["b"] is b and out["sigma_A"] is s
    for k in ("C", "A_inv", "tikhonov_gcv"):
        assert out[f"sv_{k}"] is spec.svals[k]
    for k in ("C", "A_inv", "tikhonov_gcv", "tsvd_oracle"):
        assert out[f"phi_{k}"] is spec.phi[k]
    np.testing.assert_array_equal(out["angles_ks"], [1, 3])
    for key in refs_lr:
        a = spec.comparison.angles[key]
        want = [dict(zip(a["k"], a["max_deg"], strict=True)).get(k, np.nan) for k in (1, 3)]
        np.testing.assert_array_equal(out[f"angles_{key}"], want)
    # the on-data angles of C R_y against B R_y, from their definition (0° at k = 1, 90° at 3)
    np.testing.assert_allclose(out["angles_on_data_tikhonov_gcv_left"], [0.0, 90.0], atol=1e-6)
    picard = [sum(abs(Yt[i] @ U[:, j]) for i in range(7)) / 7 for j in range(4)]
    np.testing.assert_allclose(out["picard_coef"], picard, rtol=1e-13)
    assert out["jac_sv_max"] is jac["jac_sv_max"]
    np.testing.assert_array_equal(out["lambda_grid_gcv"], [1e-3, 1e-2])
    np.testing.assert_array_equal(out["lambda_curve_gcv"], [0.5, 0.25])
    np.testing.assert_array_equal(out["lambda_grid_oracle"], [2.0])
    np.testing.assert_array_equal(out["lambda_curve_oracle"], [7.0])
