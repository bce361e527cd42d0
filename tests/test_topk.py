"""The top-k audit (fastinv.auditing.topk) against the dense audit and closed forms.

Every number is checked against an independent computation: the projected fit against a
plain least-squares solve on [U_kᵀy, 1] (tests/naive.py), filter factors of exactly linear
spectral filters against their closed forms, the references' errors over all of x against
the dense audit's, the Wiener filter of a periodic blur with a stationary prior against the
dense LMMSE, the standard errors of φ against a direct formula, and the path choice against
the rule it states.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive import lstsq_fit

import fastinv
from fastinv.auditing import topk
from fastinv.auditing.core import audit, choose_path, fitted_rows
from fastinv.errors import FastinvError
from fastinv.linalg import estimators


def _pairs(op, N, seed, *, noise=0.01, cov_sqrt=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, op.n))
    if cov_sqrt is not None:
        X = X @ cov_sqrt.T
    Y = X @ op.A.T
    Y += (
        noise
        * np.linalg.norm(Y, axis=1, keepdims=True)
        / np.sqrt(op.n)
        * rng.standard_normal(Y.shape)
    )
    return X, Y


@pytest.fixture(scope="module")
def shaw64():
    op = fastinv.make_operator("shaw", n=64)
    X, Y = _pairs(op, 3000, 0)
    Xt, Yt = _pairs(op, 400, 1)
    return op, (X, Y), (Xt, Yt)


def test_exact_spectral_filter_gives_its_filter_factors(shaw64):
    """A Tikhonov matrix with an offset b: G = diag(φ/σ) on the k directions, c = V_kᵀ b,
    φ_C = σ²/(σ² + λ) to rounding, and no mixing."""
    op, (X, Y), (Xt, Yt) = shaw64
    U, s, Vt = op.svd
    lam = 1e-3
    C = estimators.tikhonov(op.A, lam)
    b = np.linspace(-1, 1, op.n)
    res = audit(lambda Z: Z @ C.T + b, op, probes=Y, test=(Yt, Xt), n_jacobian=0, rank=12)
    phi = s**2 / (s**2 + lam)
    np.testing.assert_allclose(res.arrays["phi_C"], phi[:12], atol=1e-10)
    np.testing.assert_allclose(res.arrays["C_topk"], np.diag(phi[:12] / s[:12]), atol=1e-7)
    np.testing.assert_allclose(res.arrays["b_topk"], Vt[:12] @ b, atol=1e-9)
    assert res.metrics["surrogate"]["offdiag_share"] < 1e-8
    assert res.metrics["audit"] == {
        **res.metrics["audit"],
        "path": "top-k",
        "k": 12,
        "why": "an audit rank was given",
        "n_fit": fitted_rows(3000),
        "n": 64,
    }


def test_projected_fit_equals_least_squares_on_the_projections(shaw64):
    """G, c from the streamed moments equal lstsq on [Z, 1] -> W (tests/naive.py), for a
    nonlinear model with a non-white input distribution (G is then the best affine map from
    the projected inputs, not V_kᵀ C U_k)."""
    op, (X, Y), _ = shaw64
    top = topk.top_basis(op, 8)

    def f(Z):
        return np.tanh(Z @ op.A) + 0.1 * Z**2

    Z, W = topk.project_probes(f, Y, top, chunk=257)
    np.testing.assert_allclose(Z, Y @ op.svd[0][:, :8], atol=1e-12)
    np.testing.assert_allclose(W, f(Y) @ op.svd[2][:8].T, atol=1e-10)
    notes = []
    fit = topk.fit_projected(Z, W, seed=3, notes=notes)
    mask = np.zeros(len(Z), bool)
    rng = np.random.default_rng(3)
    mask[rng.choice(len(Z), size=int(round(0.2 * len(Z))), replace=False)] = True
    G, c = lstsq_fit(Z[~mask], W[~mask])
    np.testing.assert_allclose(fit.C, G, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.b, c, rtol=1e-8, atol=1e-10)
    assert notes == []


def test_topk_equals_dense_for_a_linear_map_with_white_probes():
    """White probes: Cov(y) is block-diagonal between span(U_k) and its complement, so
    G estimates V_kᵀ C U_k of the dense fit for any linear C (here not a spectral filter):
    exactly in expectation, within the stated standard error on N rows."""
    op = fastinv.make_operator("heat", n=48)
    rng = np.random.default_rng(5)
    M = rng.standard_normal((48, 48)) / 7
    b = rng.standard_normal(48)
    Y = rng.standard_normal((4000, 48))
    Yt = rng.standard_normal((300, 48))
    Xt = Yt @ M.T
    U, s, Vt = op.svd
    dense = audit(lambda Z: Z @ M.T + b, op, probes=Y, test=(Yt, Xt), n_jacobian=0, path="dense")
    top = audit(lambda Z: Z @ M.T + b, op, probes=Y, test=(Yt, Xt), n_jacobian=0, rank=10)
    np.testing.assert_allclose(dense.arrays["C"], M, atol=1e-9)  # exactly linear, N > n
    phi_true = s[:10] * np.diag(Vt[:10] @ M @ U[:, :10])
    np.testing.assert_allclose(dense.arrays["phi_C"][:10], phi_true, atol=1e-9)
    err = np.abs(top.arrays["phi_C"] - phi_true)
    se = top.arrays["phi_C_stderr"]
    assert np.all(err <= 4 * se) and np.all(se < 0.05 * s[:10])
    # the same model with the complement switched off (V_kᵀ M U_⊥ = 0): G is exact
    P = U[:, :10] @ U[:, :10].T
    top2 = audit(lambda Z: Z @ P @ M.T, op, probes=Y, test=(Yt, Xt), n_jacobian=0, rank=10)
    np.testing.assert_allclose(top2.arrays["C_topk"], Vt[:10] @ M @ U[:, :10], atol=1e-10)
    assert dense.metrics["audit"]["path"] == "dense"


def test_references_errors_over_all_of_x_equal_the_dense_audits(shaw64):
    """The parameters (λ, k, t) chosen on coefficients and the references' errors over all
    of x equal the dense audit's; φ_C of a nonlinear model agrees within its standard error."""
    op, (X, Y), (Xt, Yt) = shaw64
    C = estimators.tikhonov(op.A, 1e-2)

    def f(Z):
        return Z @ C.T + 0.05 * np.tanh(Z @ C.T)

    kw = dict(probes=Y, test=(Yt, Xt), n_jacobian=0, prior=None, train_X=X)
    kw["noise"] = {"level": 0.01, "type": "absolute"}
    d = audit(f, op, path="dense", **kw)
    t = audit(f, op, rank=16, **kw)
    for name in ("tikhonov_gcv", "tikhonov_lcurve", "tikhonov_oracle", "tsvd_oracle"):
        for key, v in d.metrics["references"][name].items():
            assert t.metrics["references"][name][key] == pytest.approx(v, rel=1e-9), (name, key)
    assert (
        t.metrics["references"]["landweber_oracle"]["t"]
        == (d.metrics["references"]["landweber_oracle"]["t"])
    )
    for name in ("network", "tikhonov_gcv", "tikhonov_oracle", "tsvd_gcv", "landweber_oracle"):
        assert t.metrics["errors_full"][name] == pytest.approx(d.metrics["errors"][name], rel=1e-9)
    diff = np.abs(t.arrays["phi_C"] - d.arrays["phi_C"][:16])
    assert np.all(diff <= 4 * t.arrays["phi_C_stderr"] + 1e-9)


def test_phi_standard_errors_against_the_regression_formula():
    rng = np.random.default_rng(2)
    N, k = 400, 3
    Z = rng.standard_normal((N, k)) @ np.diag([1.0, 2.0, 0.5])
    G = np.array([[1.0, 0.2, 0.0], [0.0, 0.5, 0.1], [0.3, 0.0, 2.0]])
    W = Z @ G.T + 0.3 * rng.standard_normal((N, k))
    from fastinv.linalg.surrogate import fit_linear

    fit = fit_linear(Z, W)
    s = np.array([3.0, 2.0, 1.0])
    got = topk.phi_standard_errors(Z, W, fit, s)
    # the textbook form: design matrix [1, Z], Var(β̂) = s² (DᵀD)⁻¹
    D = np.hstack([np.ones((N, 1)), Z])
    cov = np.linalg.inv(D.T @ D)
    for i in range(k):
        beta, *_ = np.linalg.lstsq(D, W[:, i], rcond=None)
        s2 = np.sum((W[:, i] - D @ beta) ** 2) / (N - k - 1)
        assert got[i] == pytest.approx(s[i] * np.sqrt(s2 * cov[i + 1, i + 1]), rel=1e-9)


def test_wiener_of_a_periodic_blur_with_a_stationary_prior_is_the_lmmse():
    """blur2d periodic (16 x 16) with the grf prior: the top-k Wiener filter's test error over
    all of x, its noise variance and its filter factors equal the dense LMMSE's."""
    op = fastinv.make_operator("blur2d", n=256, sigma=1.0, boundary="periodic")
    prior = fastinv.make_prior("grf", 256)
    X = prior.sample(2000, seed=1)
    Xt = prior.sample(200, seed=2)
    noise = {"level": 0.05, "type": "relative"}
    rng = np.random.default_rng(0)

    def measure(X):
        AX = X @ op.A.T
        e = rng.standard_normal(AX.shape)
        e *= 0.05 * np.linalg.norm(AX, axis=1, keepdims=True) / np.linalg.norm(e, axis=1)[:, None]
        return AX + e

    Y, Yt = measure(X), measure(Xt)

    def f(Z):
        return Z @ op.A  # back-projection: any linear model will do

    kw = dict(probes=Y, test=(Yt, Xt), validation=(Y, X), prior=prior, noise=noise, n_jacobian=0)
    d = audit(f, op, path="dense", **kw)
    t = audit(f, op, rank=40, **kw)
    assert t.metrics["references"]["lmmse"]["noise_var"] == pytest.approx(
        d.metrics["references"]["lmmse"]["noise_var"], rel=1e-10
    )
    e_dense = d.metrics["errors"]["lmmse"]
    assert t.metrics["errors_full"]["lmmse"] == pytest.approx(e_dense, rel=1e-8)
    # φ of the dense LMMSE matrix in the top-k basis (equal σ share equal φ: basis-free)
    U, s, Vt = op.svd_topk(40)[:3]
    nv = d.metrics["references"]["lmmse"]["noise_var"]
    C_l = estimators.lmmse(op.A, prior.mean(), prior.cov(), nv)[0]
    phi_dense = s * np.einsum("ij,ji->i", Vt, C_l @ U)
    np.testing.assert_allclose(t.arrays["phi_lmmse"], phi_dense, atol=1e-9)


def test_choose_path_rule(monkeypatch):

    monkeypatch.setattr(fastinv.io, "available_memory", lambda: 10 * 2**30)
    assert choose_path(64, 100, 50).path == "dense"  # 80 fitted rows >= 65
    p = choose_path(64, 60, 50)
    assert (p.path, p.k, p.n_fit) == ("top-k", 6, 48)  # 48 // 8
    assert "48 fitted probe rows < n + 1 = 65" in p.why
    big = choose_path(20000, 100000, 1000)  # 32 n² float64 = 95 GiB > 10 GiB
    assert (big.path, big.k) == ("top-k", 256)
    assert "needs about" in big.why
    assert choose_path(64, 100, 50, rank=5).k == 5
    with pytest.raises(FastinvError, match="audit rank k must be at most n = 64, got 65"):
        choose_path(64, 1000, 50, rank=65)
    with pytest.raises(FastinvError, match="needs more than k fitted probe rows, got 40"):
        choose_path(64, 40, 50, rank=40)
    with pytest.raises(FastinvError, match="audit path must be one of"):
        choose_path(64, 100, 50, path="sparse")


def test_dense_fit_from_too_few_rows_says_so_in_notes_and_verdict(shaw64):
    op, (X, Y), (Xt, Yt) = shaw64
    res = audit(lambda Z: Z @ op.A, op, probes=Y[:60], test=(Yt, Xt), n_jacobian=0, path="dense")
    assert any("48 probe rows < n + 1 = 65" in x for x in res.metrics["notes"])
    assert res.verdict[0].startswith("Linearity: not determined — 48 fitted probe rows for 64")
    assert "no conclusion on its share" in res.verdict[1]
    auto = audit(lambda Z: Z @ op.A, op, probes=Y[:60], test=(Yt, Xt), n_jacobian=0)
    assert (auto.metrics["audit"]["path"], auto.metrics["audit"]["k"]) == ("top-k", 6)


def test_linear_torch_model_mean_jacobian_is_G(shaw64):
    """For a linear torch model J(y) = M everywhere: V_kᵀ J̄ U_k = G, no spread, and
    σ_max(J) = ‖M‖₂; the Tikhonov gain is 1/(2√λ) of the best Tikhonov."""
    torch = pytest.importorskip("torch")
    op, (X, Y), (Xt, Yt) = shaw64
    M = estimators.tikhonov(op.A, 1e-2)
    lin = torch.nn.Linear(64, 64, bias=True).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(M))
        lin.bias.fill_(0.5)
    res = audit(lin, op, probes=Y, test=(Yt, Xt), n_jacobian=3, rank=10)
    jac = res.metrics["jacobians"]
    np.testing.assert_allclose(res.arrays["jacobian_topk_mean"], res.arrays["C_topk"], atol=1e-8)
    np.testing.assert_allclose(res.arrays["phi_mean_jacobian"], res.arrays["phi_C"], atol=1e-8)
    assert jac["spread_rel_fro_max"] < 1e-12
    assert jac["sigma_max_J_max"] == pytest.approx(np.linalg.norm(M, 2), rel=1e-3)
    lam = res.metrics["references"]["tikhonov_oracle"]["lambda"]
    assert jac["tikhonov_max_gain"] == pytest.approx(0.5 / np.sqrt(lam), rel=1e-12)


def test_matrix_free_operator_without_structure_gives_errors_on_k_only():
    """A zero-boundary blur (no exact spectrum): the triplets come from the randomized SVD,
    the references' errors over all of x are not given (a note says why), and φ_C of an exact
    Tikhonov filter still matches its closed form on the k directions."""
    op = fastinv.make_operator("blur2d", n=144, psf="disk", radius=1.5, boundary="zero")
    A = op.to_dense()
    U, s, Vt = np.linalg.svd(A)
    rng = np.random.default_rng(0)
    Xp = rng.standard_normal((1500, 144))
    Y = Xp @ A.T
    Xt = rng.standard_normal((100, 144))
    C = (Vt.T * (s / (s**2 + 1e-2))) @ U.T
    res = audit(lambda Z: Z @ C.T, op, probes=Y, test=(Xt @ A.T, Xt), n_jacobian=0, rank=8)
    assert "randomized" in res.metrics["audit"]["basis"]
    assert set(res.metrics["errors_full"]) == {"network"}
    assert any("k leading directions only" in x for x in res.metrics["notes"])
    np.testing.assert_allclose(res.arrays["sigma_A"], s[:8], rtol=1e-6)
    np.testing.assert_allclose(res.arrays["phi_C"], s[:8] ** 2 / (s[:8] ** 2 + 1e-2), atol=1e-5)


def test_model_with_wrong_output_shape_is_refused(shaw64):
    op, (X, Y), (Xt, Yt) = shaw64
    with pytest.raises(FastinvError, match=r"model output has shape \(\d+, 63\)"):
        audit(lambda Z: Z[:, :63], op, probes=Y, test=(Yt, Xt), n_jacobian=0, rank=4)


def test_an_adjoint_that_is_not_the_transpose_is_refused():
    """A matrix-free operator whose adjoint is wrong (here A itself for a non-symmetric A):
    one clear message before the randomized SVD uses it; a true adjoint passes."""
    import scipy.sparse.linalg as spla

    rng = np.random.default_rng(0)
    M = rng.standard_normal((30, 30))
    good = fastinv.as_operator(spla.aslinearoperator(M), name="good")
    assert good.check_adjoint() < 1e-12
    bad = fastinv.as_operator(
        spla.LinearOperator((30, 30), matvec=lambda v: M @ v, rmatvec=lambda v: M @ v),
        name="bad",
    )
    Y = rng.standard_normal((200, 30))
    with pytest.raises(FastinvError, match="bad: the adjoint fails the adjoint test"):
        audit(lambda Z: Z, bad, probes=Y, test=(Y[:10], None), n_jacobian=0, rank=3)


@pytest.mark.parametrize(
    "rank, needle",
    [
        ("0", "audit rank (--audit-rank) must be a positive integer, got 0"),
        ("17", "audit rank k must be at most n = 16, got 17"),
    ],
)
def test_cli_bad_audit_rank_is_one_error_line(rank, needle, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fastinv.cli.main import main

    (tmp_path / "fastinv_topk_model.py").write_text("def f(Y):\n    return 2.0 * Y\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["analyze", "--operator", "shaw", "--n", "16", "--model", "fastinv_topk_model:f"]
    args += ["--audit-rank", rank, "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert not (tmp_path / "o").exists()


def test_memory_plan_covers_what_the_topk_audit_allocates():
    """tracemalloc's peak of the NumPy allocations of a top-k audit (inputs made before)
    lies between what it must hold (U_k, V_k and the projected probes and test rows) and
    topk_bytes, the plan checked before anything is allocated."""
    import tracemalloc

    op = fastinv.make_operator("blur2d", n=1024, sigma=1.5, boundary="periodic")
    X, Y = fastinv.generate(op, n_samples=600, prior="grf", noise=0.01, seed=0)
    Xt, Yt = fastinv.generate(op, n_samples=200, prior="grf", noise=0.01, seed=1)
    k = 32
    tracemalloc.start()
    try:
        audit(lambda Z: 0.5 * Z, op, probes=Y, test=(Yt, Xt), n_jacobian=0, rank=k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    must = 2 * 1024 * k * 8 + 2 * (600 + 200) * k * 8
    assert must <= peak <= topk.topk_bytes(1024, k, 600, 200)
