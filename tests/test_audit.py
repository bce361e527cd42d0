"""The audit's claims, each checked on a case where the answer is known (SCIENCE.md)."""

import json

import numpy as np
import pytest
import torch
from naive import naive_lmmse, naive_output_pc_angles

import fastinv
from fastinv.auditing.angles import ON_DATA_PREFIX, cov_sqrt, output_angles
from fastinv.auditing.core import audit
from fastinv.errors import FastinvError
from fastinv.io import to_jsonable
from fastinv.linalg import estimators, spectral


def _affine_module(M, c):
    lin = torch.nn.Linear(M.shape[1], M.shape[0]).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(M))
        lin.bias.copy_(torch.from_numpy(c))
    return lin.eval()


@pytest.fixture(scope="module")
def shaw16():
    op = fastinv.make_operator("shaw", 16)
    X, Y = fastinv.generate(op, n_samples=600, seed=1, noise=0.01)
    Xt, Yt = fastinv.generate(op, n_samples=300, seed=2, noise=0.01)
    prior = fastinv.make_prior("smooth", 16)
    return op, X, Y, Xt, Yt, prior


def test_exactly_affine_network(shaw16):
    op, X, Y, Xt, Yt, prior = shaw16
    rng = np.random.default_rng(0)
    M = rng.standard_normal((16, 16))
    c = rng.standard_normal(16)
    res = audit(
        _affine_module(M, c),
        op,
        probes=Y,
        test=(Yt, Xt),
        prior=prior,
        noise={"level": 0.01, "type": "relative"},
        n_jacobian=4,
    )
    np.testing.assert_allclose(res.arrays["C"], M, rtol=0, atol=1e-8 * np.abs(M).max())
    np.testing.assert_allclose(res.arrays["b"], c, atol=1e-8)
    assert res.metrics["surrogate"]["r2_heldout"] == pytest.approx(1.0, abs=1e-10)
    jac = res.metrics["jacobians"]
    assert jac["mean_jacobian_vs_C_rel_fro"] < 1e-8
    assert jac["spread_rel_fro_max"] < 1e-12
    assert "very nearly affine" in res.verdict[0]


def test_affine_numpy_callable_without_jacobians(shaw16):
    op, X, Y, Xt, Yt, prior = shaw16
    M = estimators.tikhonov(op.A, 1e-4)
    res = audit(
        lambda y: y @ M.T,
        op,
        probes=Y,
        test=(Yt, Xt),
        prior=prior,
        noise={"level": 0.01, "type": "relative"},
    )
    np.testing.assert_allclose(res.arrays["C"], M, atol=1e-7 * np.abs(M).max())
    # the error of C must equal the error of the same matrix as a reference
    err = res.metrics["errors"]
    assert err["surrogate"] == pytest.approx(err["network"], rel=1e-8)
    assert any("Jacobians need a torch model" in s for s in res.metrics["notes"])


def test_surrogate_moments_from_parts_give_the_audit_of_one_pass(shaw16):
    """The data-parallel entry: moments accumulated in two parts and merged give the same C,
    R² and surrogate error as the audit's own fit; the top-k audit refuses them."""
    from fastinv.auditing.sections import surrogate_holdout
    from fastinv.linalg.surrogate import surrogate_moments

    op, X, Y, Xt, Yt, prior = shaw16
    net = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Tanh()).double().eval()
    kw = dict(probes=Y, test=(Yt, Xt), prior=prior, n_jacobian=0, seed=5)
    one = audit(net, op, **kw)
    h = surrogate_holdout(Y.shape[0])
    parts = [surrogate_moments(net, Y[a:b], start=a, total=600, holdout=h, seed=5)
             for a, b in ((0, 250), (250, 600))]  # fmt: skip
    merged = parts[0].merge(parts[1])
    res = audit(net, op, surrogate_moments=merged, **kw)
    np.testing.assert_allclose(res.arrays["C"], one.arrays["C"], rtol=0, atol=1e-10)
    for key in ("r2", "r2_test", "test_rel_error", "rel_dist_to_inverse"):
        assert res.metrics["surrogate"][key] == pytest.approx(one.metrics["surrogate"][key])
    with pytest.raises(FastinvError, match="surrogate_moments are for the dense audit, but the "
                       "top-k audit runs"):  # fmt: skip
        audit(net, op, rank=4, surrogate_moments=merged, **kw)


@pytest.fixture(scope="module")
def lmmse_audit(shaw16):
    """The audit of a 'network' that is exactly the LMMSE estimator (no Jacobians)."""
    op, X, Y, Xt, Yt, prior = shaw16
    noise = {"level": 0.01, "type": "relative"}
    # relative noise e = level ‖Ax‖ z/‖z‖: σ² = level² E‖Ax‖² / n (written out here, not the
    # audit's own noise_covariance, which tests/test_report_numbers.py checks on its own)
    mu, Sx, A = prior.mean(), prior.cov(), op.A
    nv = 0.01**2 * (np.trace(A @ Sx @ A.T) + np.sum((A @ mu) ** 2)) / A.shape[0]
    Cl, bl = naive_lmmse(A, mu, Sx, nv * np.eye(A.shape[0]))
    res = audit(
        _affine_module(Cl, bl), op, probes=Y, test=(Yt, Xt), prior=prior, noise=noise, n_jacobian=0
    )
    return res


def test_lmmse_network_is_reported_closest_to_lmmse(lmmse_audit):
    """A 'network' that is exactly the LMMSE estimator: distance to LMMSE ~ 0, best error."""
    res = lmmse_audit
    sur = res.metrics["surrogate"]
    assert sur["rel_dist_to_lmmse"] < 1e-6
    assert sur["rel_dist_to_lmmse_on_data"] < 1e-6
    assert sur["rel_dist_to_inverse_on_data"] > 1.0  # A⁻¹ amplifies the noise in the data
    assert sur["rel_dist_to_inverse"] > 0.99
    err = res.metrics["errors"]
    assert err["lmmse"] == pytest.approx(err["network"], rel=1e-8)
    # no linear estimator beats LMMSE by more than sampling error on its own distribution
    for k, v in err.items():
        if k not in ("network", "surrogate", "lmmse"):
            assert v > 0.97 * err["lmmse"], k
    assert any("nearer the optimal linear estimator" in s for s in res.verdict)
    # its filter factors are LMMSE's: the closest classical filter, at distance ~0
    filt = res.metrics["filters"]
    assert filt["closest_classical_filter"] == "lmmse"
    assert filt["phi_rms_distance_to_C"]["lmmse"] < 1e-6
    others = [v for k, v in filt["phi_rms_distance_to_C"].items() if k != "lmmse"]
    assert min(others) > 1e-4
    assert any(s.startswith("Closest classical filter: LMMSE / Wiener") for s in res.verdict)


def test_gaussian_tanh_network_mean_jacobian_equals_C():
    """Stein's lemma: for Gaussian y, C = E[J(y)] (here at Monte-Carlo level)."""
    n = 8
    op = fastinv.make_operator("random", n, cond=10.0, seed=3)
    torch.manual_seed(0)
    net = (
        torch.nn.Sequential(torch.nn.Linear(n, 32), torch.nn.Tanh(), torch.nn.Linear(32, n))
        .double()
        .eval()
    )
    X, Y = fastinv.generate(
        op, n_samples=20000, prior="gaussian", noise=0.1, noise_type="absolute", seed=5
    )
    Xt, Yt = fastinv.generate(
        op, n_samples=500, prior="gaussian", noise=0.1, noise_type="absolute", seed=6
    )
    res = audit(
        net,
        op,
        probes=Y,
        test=(Yt, Xt),
        prior=fastinv.make_prior("gaussian", n),
        noise={"level": 0.1, "type": "absolute"},
        n_jacobian=4000,
    )
    jac = res.metrics["jacobians"]
    assert jac["mean_jacobian_vs_C_rel_fro"] < 0.03
    assert jac["spread_rel_fro_mean"] > 0.05  # the network is genuinely nonlinear


def test_bias_free_relu_network_is_homogeneous(shaw16):
    op, X, Y, Xt, Yt, prior = shaw16
    net = fastinv.make_model("mlp", 16, width=32, bias=False, activation="relu").double()
    res = audit(
        net,
        op,
        probes=Y,
        test=(Yt, Xt),
        prior=prior,
        noise={"level": 0.01, "type": "relative"},
        n_jacobian=5,
    )
    assert res.metrics["jacobians"]["homogeneity_rel_error"] < 1e-10


def test_gd_training_reproduces_landweber_exactly():
    """fastinv.train with plain full-batch GD from zero on whitened data = estimators.landweber."""
    n, N, eta, t = 6, 60, 0.5, 25
    op = fastinv.make_operator("random", n, cond=5.0, seed=1)
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((N, n)))
    X = np.sqrt(N) * Q  # XᵀX/N = I exactly
    Y = X @ op.A.T
    model = fastinv.train(
        Y,
        X,
        model="linear",
        bias=False,
        init="zeros",
        optimizer="gd",
        lr=eta,
        epochs=t,
        batch_size=N,
        val_fraction=0.0,
        dtype="float64",
        device="cpu",
    )
    W = model.weight.detach().numpy()
    W_ref = estimators.landweber(op.A, eta, t)
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=1e-12 * np.abs(W_ref).max())


def test_estimators_is_an_attribute():
    import fastinv as f

    assert f.estimators.tikhonov is estimators.tikhonov


def test_bad_model_output_shape(shaw16):
    op, X, Y, Xt, Yt, prior = shaw16
    with pytest.raises(FastinvError, match="shape"):
        audit(lambda y: y[:, :3], op, probes=Y, test=(Yt, Xt))


def test_nan_model_output(shaw16):
    op, X, Y, Xt, Yt, prior = shaw16

    def bad(y):
        out = y.copy()
        out[0, 0] = np.nan
        return out

    with pytest.raises(FastinvError, match="NaN|non-finite"):
        audit(bad, op, probes=Y, test=(Yt, Xt))


def test_without_targets_says_what_is_missing(shaw16):
    op, X, Y, Xt, Yt, prior = shaw16
    res = audit(lambda y: y @ np.linalg.pinv(op.A).T * 0.5, op, probes=Y, test=(Yt, None))
    assert res.metrics["errors"] == {}
    assert any("no test targets" in s for s in res.metrics["notes"])
    assert any("LMMSE was not computed" in s for s in res.metrics["notes"])


def test_filter_reference_errors_match_dense_matrices(shaw16):
    """Errors of spectral filters are computed in A's SVD basis; check them densely."""
    op, X, Y, Xt, Yt, prior = shaw16
    res = audit(
        lambda y: 0.5 * y @ estimators.tikhonov(op.A, 1e-3).T,
        op,
        probes=Y,
        test=(Yt, Xt),
        prior=prior,
        noise={"level": 0.01, "type": "relative"},
    )
    for name, info in res.metrics["references"].items():
        if name.startswith("tikhonov"):
            M = estimators.tikhonov(op.A, info["lambda"])
        elif name.startswith("tsvd"):
            M = estimators.tsvd(op.A, info["k"])
        elif name.startswith("landweber"):
            M = estimators.landweber(op.A, info["eta"], info["t"])
        else:
            continue
        dense = np.linalg.norm(Yt @ M.T - Xt) / np.linalg.norm(Xt)
        assert res.metrics["errors"][name] == pytest.approx(dense, rel=1e-9), name


# --------------------------------------------------------------------------------------------
# principal angles of the outputs on the probe data (C Σ_y^½ against B Σ_y^½)


def test_output_angles_against_naive():
    """Left singular subspaces of M Σ_y^½ = top eigenvectors of M Σ_y Mᵀ (eigh, subspace_angles)."""
    rng = np.random.default_rng(7)
    n, N = 14, 400
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    Y = rng.standard_normal((N, n)) @ (Q * np.logspace(0, -2, n)).T + 3.0
    C, B1, B2 = (rng.standard_normal((n, n)) for _ in range(3))
    R = cov_sqrt(Y)
    np.testing.assert_allclose(R @ R.T, np.cov(Y, rowvar=False), atol=1e-13)
    ks = [1, 2, 3, 6, 10]
    out = output_angles(C @ R, {"B1": B1 @ R, "B2": B2 @ R, "C": C @ R}, ks)
    assert set(out) == {"B1_left", "B2_left", "C_left"}
    cov = np.cov(Y, rowvar=False)
    for name, B in (("B1", B1), ("B2", B2)):
        a = out[f"{name}_left"]
        assert a["k"] == ks and a["side"] == "left"
        for j, k in enumerate(ks):
            ref = np.degrees(naive_output_pc_angles(C, B, cov, k))
            # the reference's eigenvectors of M Σ Mᵀ hold angles to about sqrt(eps) rad
            # (1.5e-8 rad = 8.5e-7 degrees): that, not the code under test, sets the tolerance
            np.testing.assert_allclose(a["angles_deg"][j], ref, rtol=0, atol=2e-6)
            assert a["max_deg"][j] == pytest.approx(ref.max(), abs=2e-6)
        assert max(a["max_deg"]) > 10  # a non-trivial comparison
    assert max(out["C_left"]["max_deg"]) < 1e-6
    # a top-k SVD function gives the same angles
    via_fn = output_angles(
        C @ R, {"B1": B1 @ R}, ks, svd_fn=lambda M, k: np.linalg.svd(M), k_svd=10
    )
    np.testing.assert_allclose(via_fn["B1_left"]["max_deg"], out["B1_left"]["max_deg"], atol=1e-8)


def test_output_angles_ignore_what_the_probes_never_explore():
    """C = B + E with E acting only where Σ_y is ~0: the plain angles are large, C's outputs
    on the data have the same principal components as B's."""
    rng = np.random.default_rng(3)
    n, d, N = 12, 5, 300
    P, _ = np.linalg.qr(rng.standard_normal((n, d)))  # the explored subspace
    Y = rng.standard_normal((N, d)) @ P.T + 1e-9 * rng.standard_normal((N, n))
    B = estimators.tikhonov(fastinv.make_operator("shaw", n).A, 1e-3)
    E = rng.standard_normal((n, n)) @ (np.eye(n) - P @ P.T)
    C = B + 10 * np.linalg.norm(B, 2) * E / np.linalg.norm(E, 2)
    ks = [1, 2, 3, 5]
    plain = spectral.principal_angles(C, B, ks, side="left")
    assert max(plain["max_deg"]) > 45
    R = cov_sqrt(Y)
    # on the data C and B are nearly the same map ...
    assert np.linalg.norm((C - B) @ R) < 1e-6 * np.linalg.norm(B @ R)
    on = output_angles(C @ R, {"B": B @ R}, ks)["B_left"]
    assert on["k"] == ks
    assert max(on["max_deg"]) < 1e-3
    # ... beyond the explored dimension d the principal components are noise: the gap says so
    assert on["gap_2"][-1] > 1e-3  # a clear gap after the d-th component


def test_audit_writes_on_data_angles_and_the_report(lmmse_audit, shaw16, tmp_path):
    from fastinv.report.plots import angle_series
    from fastinv.report.writer import write_report

    res = lmmse_audit
    op, X, Y, Xt, Yt, prior = shaw16
    comp = res.metrics["comparison"]
    od = comp["principal_angles_on_data"]
    ks = od["ks"]
    assert ks == comp["principal_angles"]["ks"] == list(res.arrays["angles_ks"])
    refs = {"A_inv", "lmmse", "tikhonov_oracle"}
    assert {k for k in od if k.endswith("_left")} == {f"{r}_left" for r in refs}
    assert not any(k.endswith("_right") for k in od)
    for r in refs:
        a = od[f"{r}_left"]
        assert set(a) >= {"k", "max_deg", "mean_deg", "gap_1", "gap_2"}
        assert "angles_deg" not in a
        v = res.arrays[f"{ON_DATA_PREFIX}{r}_left"]
        assert v.shape == (len(ks),)
        got = dict(zip(a["k"], a["max_deg"], strict=True))
        np.testing.assert_array_equal(v, [got.get(k, np.nan) for k in ks])
    json.dumps(to_jsonable(res.metrics), allow_nan=False)
    # C is the LMMSE matrix: its outputs have LMMSE's principal components
    assert max(od["lmmse_left"]["max_deg"][:3]) < 1e-3
    # A⁻¹'s outputs on the data are dominated by the noise it amplifies along A's smallest
    # singular directions: orthogonal to the leading components of C's outputs
    assert min(od["A_inv_left"]["max_deg"][:3]) > 80
    # the audit's numbers are the naive ones, from its own C and the probes (near 90° the
    # naive eigenvectors of the squared, ill-conditioned M Σ_y Mᵀ are good to ~1e-4°)
    C = res.arrays["C"]
    A_inv = estimators.pinv(op.A, svd=op.svd)  # the same matrix as the audit's
    cov = np.cov(Y, rowvar=False)
    for j, k in enumerate(od["A_inv_left"]["k"][:4]):
        ref = np.degrees(naive_output_pc_angles(C, A_inv, cov, k)).max()
        assert od["A_inv_left"]["max_deg"][j] == pytest.approx(ref, abs=1e-3)
    # the plain-angle panel does not pick the on-data arrays up a second time
    plain = angle_series(res.arrays, "angles_", (len(ks),), exclude=ON_DATA_PREFIX)
    assert {(r, s) for r, s, _ in plain} == {(r, s) for r in refs for s in ("left", "right")}
    paths = write_report(tmp_path, res.metrics, res.verdict, res.arrays)
    assert paths["principal_angles.png"].stat().st_size > 10_000
    md = (tmp_path / "report.md").read_text()
    assert "## Principal angles" in md and "outputs on the data" in md
    assert "Principal angles" in (tmp_path / "report.html").read_text()


def test_report_flags_angles_of_ill_determined_subspaces():
    from fastinv.report.writer import ANGLE_GAP_FLAG, angles_section

    def angles(gap):
        return {"k": [1, 2], "max_deg": [10.0, 20.0], "gap_1": [0.5, gap], "gap_2": [0.4, 0.3]}

    def section(gap):
        comp = {"principal_angles": {"ks": [1, 2], "lmmse_left": angles(gap)}}
        return "\n".join(angles_section(comp)).splitlines()

    assert not any("†" in line for line in section(0.2))
    blunt = section(ANGLE_GAP_FLAG / 2)
    row = next(line for line in blunt if line.startswith("| LMMSE"))
    assert row.split("|")[3].strip() == "10" and row.split("|")[4].strip() == "20 †"
    assert any(line.startswith("† ") for line in blunt)
