"""Every number the report, metrics.json and the sweep summary print, against an independent
computation on a small case whose answer is known exactly.

The case: A = U diag(s) Vᵀ (n = 10, chosen singular values, Haar U and V), white prior with a
non-zero mean, relative noise whose level makes the LMMSE noise variance exactly ν = 4e-4,
and a "network" x̂ = C₁ y + c that is Tikhonov with λ₁ = 0.01 plus an offset c ≠ 0. Then
φ_C = σ²/(σ² + λ₁) in closed form: |φ − 1| <= 0.1 iff σ² >= 9λ₁ (σ >= 0.3: the leading 5),
|φ| <= 0.1 iff σ² <= λ₁/9 (σ <= 0.033: from index 8 on).

Audit / report key -> the test that checks it against an independent computation
(tests/naive.py or a closed form):

- comparison.phi_summary.n_inverted, first_suppressed, suppressed_fraction_after,
  n_suppressed, n_amplified, dof, and the verdict's "Directions" sentence
  -> test_phi_summary_counts_and_directions_sentence
- filters.closest_classical_filter, filters.phi_rms_distance_to_C (every key), the verdict's
  "Closest classical filter" sentence -> test_closest_filter_and_phi_distances;
  closest = "lmmse" at distance ~0 for an exactly-LMMSE network
  -> tests/test_audit.py::test_lmmse_network_is_reported_closest_to_lmmse
- surrogate.rel_dist_to_inverse, rel_dist_to_inverse_fro, rel_dist_to_lmmse,
  rel_dist_to_lmmse_fro, rel_dist_to_inverse_on_data, rel_dist_to_lmmse_on_data, the
  verdict's "Distances" sentence -> test_operator_distances_plain_and_on_data
- errors.network, errors.surrogate (b ≠ 0), errors.lmmse (b ≠ 0), errors.A_inv,
  surrogate.test_rel_error -> test_errors_with_intercept
- surrogate.r2_test (= 1 for an affine network with b ≠ 0) -> test_errors_with_intercept;
  r2_test of a non-affine network -> test_r2_test_of_a_nonlinear_network
- references.lmmse.noise_var -> test_lmmse_noise_variance_in_the_audit;
  auditing.references.noise_covariance on its own -> test_noise_covariance_closed_forms,
  test_noise_covariance_matches_the_generated_noise
- errors of the spectral references (tikhonov_*, tsvd_*, landweber_oracle)
  -> tests/test_audit.py::test_filter_reference_errors_match_dense_matrices
- estimators.filter_factors_landweber with noise_var > 0
  -> tests/test_estimators.py::test_landweber_filter_factors_with_noise_match_gd
- sweep correlations ρ (err_net against each measure), partial ρ, n, n_groups
  -> test_sweep_rank_correlations_on_a_known_ranking
- the merged accumulator's r2 and trace_M_xx (the merge's between-group term)
  -> tests/test_surrogate.py::test_merge_equals_one_pass
"""

import numpy as np
import pytest
from naive import (
    landweber_filter_factors,
    naive_filter_factor_matrix,
    naive_lmmse,
    naive_phi_counts,
    naive_spearman,
    naive_tikhonov,
    naive_weighted_distance,
    r2_direct,
)

import fastinv
from fastinv.auditing.core import audit
from fastinv.auditing.references import noise_covariance
from fastinv.problem.operators import Operator

N_TRAIN, N_TEST = 800, 400
S = np.array([3.0, 2.0, 1.5, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01])
LAM1 = 0.01  # the network's Tikhonov λ
NU = 4e-4  # the LMMSE noise variance the noise level is chosen for


class WhitePrior:
    """Σ_x = I with a non-zero mean (only what the audit uses: mean() and cov())."""

    def __init__(self, mu):
        self.mu = mu

    def mean(self):
        return self.mu

    def cov(self):
        return np.eye(self.mu.size)


def _relative_noise(rng, AX, level):
    Z = rng.standard_normal(AX.shape)
    return (
        level * np.linalg.norm(AX, axis=1, keepdims=True) * Z / np.linalg.norm(Z, axis=1)[:, None]
    )


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(20240615)
    n = S.size
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (U * S) @ V.T
    mu = 0.3 + 0.5 * np.linspace(-1.0, 1.0, n)
    # relative noise: ν = level² (tr(A Aᵀ) + ‖A μ‖²) / n, solved for the level
    level = float(np.sqrt(NU * n / (np.sum(S**2) + np.sum((A @ mu) ** 2))))
    X = mu + rng.standard_normal((N_TRAIN + N_TEST, n))
    Y = X @ A.T
    Y = Y + _relative_noise(rng, Y, level)
    C1 = naive_tikhonov(A, LAM1)
    c = 0.25 * np.arange(1, n + 1) / n

    def net(Yb):
        return Yb @ C1.T + c

    op = Operator(A, name="known")
    res = audit(
        net,
        op,
        probes=Y[:N_TRAIN],
        test=(Y[N_TRAIN:], X[N_TRAIN:]),
        prior=WhitePrior(mu),
        noise={"level": level, "type": "relative"},
        n_jacobian=0,
    )
    return {
        "A": A, "mu": mu, "C1": C1, "c": c, "net": net, "res": res,
        "Y": Y[:N_TRAIN], "Yt": Y[N_TRAIN:], "Xt": X[N_TRAIN:],
    }  # fmt: skip


def _phi_closed_form():
    return S**2 / (S**2 + LAM1)


def test_phi_summary_counts_and_directions_sentence(case):
    res = case["res"]
    ps = res.metrics["comparison"]["phi_summary"]
    phi = _phi_closed_form()
    assert naive_phi_counts(phi) == (5, 8)  # the closed form, away from both thresholds
    assert (ps["n_inverted"], ps["first_suppressed"]) == (5, 8)
    assert ps["n_inverted_total"] == 5
    assert ps["n_suppressed"] == 2 and ps["suppressed_fraction_after"] == 1.0
    assert ps["n_amplified"] == 0 and ps["n_negative"] == 0
    assert ps["dof"] == pytest.approx(phi.sum(), rel=1e-8)
    np.testing.assert_allclose(ps["phi"], phi, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.arrays["phi_C"], phi, rtol=0, atol=1e-8)
    sentence = next(v for v in res.verdict if v.startswith("Directions:"))
    assert "C inverts A's leading 5 singular directions" in sentence
    assert "suppresses direction 9 (" in sentence
    assert "σ = 0.02 against σ_1 = 3" in sentence
    assert "100% of those after it" in sentence


def _naive_ref_phi(name, info, A, lmmse_C):
    """φ of one reference from its reported parameters, by textbook formulas."""
    if name == "A_inv":
        return np.ones_like(S)
    if name.startswith("tikhonov"):
        return S**2 / (S**2 + info["lambda"])
    if name.startswith("tsvd"):
        return (np.arange(S.size) < info["k"]).astype(float)
    if name.startswith("landweber"):
        return landweber_filter_factors(S, info["eta"], info["t"])
    if name == "lmmse":
        return np.diag(naive_filter_factor_matrix(lmmse_C, A))
    raise AssertionError(f"no naive filter factors for {name}")


def test_closest_filter_and_phi_distances(case):
    res, A, mu = case["res"], case["A"], case["mu"]
    m = res.metrics
    lmmse_C, _ = naive_lmmse(A, mu, np.eye(S.size), NU * np.eye(S.size))
    phi_c = np.diag(naive_filter_factor_matrix(case["C1"], A))
    np.testing.assert_allclose(phi_c, _phi_closed_form(), atol=1e-12)
    dist = m["filters"]["phi_rms_distance_to_C"]
    expect = {
        "A_inv", "lmmse", "tikhonov_gcv", "tikhonov_lcurve", "tikhonov_oracle",
        "tsvd_gcv", "tsvd_oracle", "landweber_oracle",
    }  # fmt: skip
    assert set(dist) == expect
    naive = {}
    for name in dist:
        ref = _naive_ref_phi(name, m["references"].get(name, {}), A, lmmse_C)
        naive[name] = float(np.sqrt(np.mean((phi_c - ref) ** 2)))
        assert dist[name] == pytest.approx(naive[name], rel=1e-6, abs=1e-9), name
    ranked = sorted((v, k) for k, v in naive.items() if k != "A_inv")
    assert ranked[1][0] - ranked[0][0] > 1e-4  # the answer is not decided by rounding
    closest = m["filters"]["closest_classical_filter"]
    assert closest == ranked[0][1]
    from fastinv.auditing.references import LABELS

    sentence = next(v for v in res.verdict if v.startswith("Closest classical filter:"))
    assert sentence.startswith(f"Closest classical filter: {LABELS[closest]} (")
    assert sentence.endswith(f"RMS filter-factor difference {naive[closest]:.3g}.")


def test_operator_distances_plain_and_on_data(case):
    res, A, mu, C1 = case["res"], case["A"], case["mu"], case["C1"]
    sur = res.metrics["surrogate"]
    A_inv = np.linalg.inv(A)
    L, _ = naive_lmmse(A, mu, np.eye(S.size), NU * np.eye(S.size))
    for B, key in ((A_inv, "inverse"), (L, "lmmse")):
        two = np.linalg.norm(C1 - B, 2) / np.linalg.norm(B, 2)
        fro = np.linalg.norm(C1 - B) / np.linalg.norm(B)
        assert sur[f"rel_dist_to_{key}"] == pytest.approx(two, rel=1e-7), key
        assert sur[f"rel_dist_to_{key}_fro"] == pytest.approx(fro, rel=1e-7), key
        on = naive_weighted_distance(C1, B, case["Y"])
        assert sur[f"rel_dist_to_{key}_on_data"] == pytest.approx(on, rel=1e-7), key
    # the case is non-trivial: all six numbers differ from each other and from 0 and 1
    vals = [sur[k] for k in sur if k.startswith("rel_dist_to_")]
    assert len(vals) == 6 and min(vals) > 1e-3 and len({round(v, 6) for v in vals}) == 6
    sentence = next(v for v in res.verdict if v.startswith("Distances:"))
    d_inv = np.linalg.norm(C1 - A_inv, 2) / np.linalg.norm(A_inv, 2)
    assert f"‖C − A⁻¹‖₂/‖A⁻¹‖₂ = {d_inv:.3g}" in sentence


def test_errors_with_intercept(case):
    res, A, mu, Yt, Xt = case["res"], case["A"], case["mu"], case["Yt"], case["Xt"]
    err, sur = res.metrics["errors"], res.metrics["surrogate"]
    norm = np.linalg.norm(Xt)
    e_net = np.linalg.norm(Yt @ case["C1"].T + case["c"] - Xt) / norm
    assert err["network"] == pytest.approx(e_net, rel=1e-12)
    assert err["surrogate"] == pytest.approx(e_net, rel=1e-8)
    assert sur["test_rel_error"] == err["surrogate"]
    # without the offset the error would differ clearly: the case can tell them apart
    assert abs(np.linalg.norm(Yt @ case["C1"].T - Xt) / norm - e_net) > 1e-2
    L, bl = naive_lmmse(A, mu, np.eye(S.size), NU * np.eye(S.size))
    assert np.linalg.norm(bl) > 0.1
    assert err["lmmse"] == pytest.approx(np.linalg.norm(Yt @ L.T + bl - Xt) / norm, rel=1e-9)
    e_inv = np.linalg.norm(Yt @ np.linalg.inv(A).T - Xt) / norm
    assert err["A_inv"] == pytest.approx(e_inv, rel=1e-8)
    # an affine network is its own surrogate, on the test set too
    assert sur["r2_test"] == pytest.approx(1.0, abs=1e-12)
    assert sur["r2_heldout"] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(res.arrays["b"], case["c"], atol=1e-8)


def test_lmmse_noise_variance_in_the_audit(case):
    info = case["res"].metrics["references"]["lmmse"]
    assert info["noise_var"] == pytest.approx(NU, rel=1e-12)
    assert info["prior_cov"] == "analytic (prior)"


def test_r2_test_of_a_nonlinear_network(case):
    A, Yt = case["A"], case["Yt"]
    C1, c = case["C1"], case["c"]

    def net(Yb):
        return Yb @ C1.T + c + 0.3 * np.tanh(Yb)

    op = Operator(A, name="known")
    res = audit(net, op, probes=case["Y"], test=(Yt, None), n_jacobian=0)
    Xnet = net(Yt)
    r2 = r2_direct(Yt, Xnet, res.arrays["C"], res.arrays["b"])
    assert 0.5 < r2 < 0.999  # a genuinely non-affine network
    assert res.metrics["surrogate"]["r2_test"] == pytest.approx(r2, rel=1e-12)


# --------------------------------------------------------------------------------------------
# the LMMSE noise variance, independently of the audit


def test_noise_covariance_closed_forms():
    rng = np.random.default_rng(5)
    m, n = 6, 4
    A = rng.standard_normal((m, n))
    mu = rng.standard_normal(n)
    G = rng.standard_normal((n, n))
    Sx = G @ G.T
    # relative: E‖e‖² = level² E‖Ax‖² = level² (tr(A Σ Aᵀ) + ‖Aμ‖²), spread over m components
    e_ax2 = np.trace(A @ Sx @ A.T) + (A @ mu) @ (A @ mu)
    rel = noise_covariance({"level": 0.05, "type": "relative"}, A, mu, Sx)
    assert rel == pytest.approx(0.05**2 * e_ax2 / m, rel=1e-13)
    assert noise_covariance({"level": 0.05}, A, mu, Sx) == rel  # relative is the default
    assert noise_covariance({"level": 0.05, "type": "absolute"}, A, mu, Sx) == pytest.approx(
        0.0025, rel=1e-15
    )
    assert noise_covariance({"level": 0.0, "type": "relative"}, A, mu, None) == 0.0
    assert noise_covariance({"level": 0.05, "type": "relative"}, A, mu, None) is None
    assert noise_covariance(None, A, mu, Sx) is None


def test_noise_covariance_matches_the_generated_noise():
    """The variance the data generator actually adds (Monte Carlo, 40 000 rows)."""
    n = 8
    op = fastinv.make_operator("random", n, cond=10.0, seed=2)
    prior = fastinv.make_prior("gaussian", n)
    X, Y = fastinv.generate(op, n_samples=40000, prior="gaussian", noise=0.1, seed=3)
    E = Y - X @ op.A.T
    nv = noise_covariance({"level": 0.1, "type": "relative"}, op.A, prior.mean(), prior.cov())
    cov = E.T @ E / E.shape[0]
    assert np.mean(np.diag(cov)) == pytest.approx(nv, rel=0.02)
    assert np.max(np.abs(cov - np.diag(np.diag(cov)))) < 0.05 * nv  # white


# --------------------------------------------------------------------------------------------
# the sweep's ρ


def test_sweep_rank_correlations_on_a_known_ranking():
    from fastinv.workflows.sweep_summary import rank_correlations

    err = [0.11, 0.23, 0.31, 0.47, 0.52, 0.68]
    perm = [3.0, 1.0, 2.0, 6.0, 4.0, 5.0]
    rows = []
    for i, e in enumerate(err):
        rows.append(
            {
                "key": f"run{i}",
                "samples": 100,
                "err_net": e,
                "dist_inv_2": 1.0 + i,  # same order as err_net: ρ = 1
                "dist_lmmse_2": 10.0 - i,  # reversed: ρ = -1
                "dist_inv_fro": perm[i],
                "dist_lmmse_fro": 0.5,  # constant: degenerate, no ρ
                "ood_prior_err_net": perm[::-1][i],
            }
        )
    cs = {c.y: c for c in rank_correlations(rows, [100], n_boot=200)}
    assert set(cs) == {"dist_inv_2", "dist_lmmse_2", "dist_inv_fro", "ood_prior_err_net"}
    assert cs["dist_inv_2"].rho == pytest.approx(1.0, abs=1e-12)
    assert cs["dist_lmmse_2"].rho == pytest.approx(-1.0, abs=1e-12)
    assert naive_spearman(err, perm) == pytest.approx(23 / 35)  # Σd² = 12: 1 − 72/210
    assert cs["dist_inv_fro"].rho == pytest.approx(23 / 35, abs=1e-12)
    assert cs["ood_prior_err_net"].rho == pytest.approx(naive_spearman(err, perm[::-1]))
    for c in cs.values():
        assert (c.n, c.n_groups) == (6, 6) and c.x == "err_net"
        assert c.partial_rho is None  # one training-set size: nothing to partial out
    # a monotone relation has ρ = 1 in every resample: the interval is the point
    assert cs["dist_inv_2"].ci_low == pytest.approx(1.0) == cs["dist_inv_2"].ci_high
