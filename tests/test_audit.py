"""The audit's claims, each checked on a case where the answer is known (SCIENCE.md)."""

import numpy as np
import pytest
import torch

import fastinv
from fastinv import estimators
from fastinv.auditing import audit
from fastinv.errors import FastinvError


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


def test_lmmse_network_is_reported_closest_to_lmmse(shaw16):
    """A 'network' that is exactly the LMMSE estimator: distance to LMMSE ~ 0, best error."""
    op, X, Y, Xt, Yt, prior = shaw16
    noise = {"level": 0.01, "type": "relative"}
    from fastinv.auditing import noise_covariance

    nv = noise_covariance(noise, op.A, prior.mean(), prior.cov())
    Cl, bl = estimators.lmmse(op.A, prior.mean(), prior.cov(), nv)
    res = audit(
        _affine_module(Cl, bl), op, probes=Y, test=(Yt, Xt), prior=prior, noise=noise, n_jacobian=0
    )
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
