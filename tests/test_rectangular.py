"""Rectangular operators (m ≠ n) through the whole pipeline: the superres catalogue entry
against its entry-by-entry definition and the aliasing formula for its spectrum; generate with
m-dimensional measurements; the dense and top-k audits against A⁺ and Tikhonov computed
directly from a dense SVD; the report's wording and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import naive
import numpy as np
import pytest

from fastinv.auditing.core import audit
from fastinv.errors import FastinvError
from fastinv.problem.data import generate
from fastinv.problem.operators import Operator, make_operator

torch = pytest.importorskip("torch")

H, W, F = 8, 6, 2


@pytest.fixture(scope="module")
def sr():
    return make_operator("superres", H * W, shape=f"{H},{W}", factor=F, sigma=1.2)


@pytest.fixture(scope="module")
def sr_dense():
    """Rows (f i, f j) of the periodic blur: y[i, j] = (K * x)[f i, f j]."""
    K = naive.blur2d_periodic(H, W, "gaussian", sigma=1.2)
    keep = [r * W + c for r in range(0, H, F) for c in range(0, W, F)]
    return K[keep]


def test_superres_is_its_definition(sr, sr_dense):
    assert sr.shape == (12, 48) and sr.image_shape == (H, W) and sr.torch_native
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 48)), rng.standard_normal((3, 12))
    np.testing.assert_allclose(sr.apply(X), X @ sr_dense.T, rtol=0, atol=1e-14)
    np.testing.assert_allclose(sr.adjoint(Y), Y @ sr_dense, rtol=0, atol=1e-14)
    np.testing.assert_allclose(sr.to_dense(), sr_dense, rtol=0, atol=1e-15)
    # the torch path, differentiable and vmap-able (the CNN's back-projection)
    t = torch.as_tensor(Y)
    np.testing.assert_allclose(sr.adjoint(t).numpy(), Y @ sr_dense, rtol=0, atol=1e-14)
    jv = torch.func.vmap(
        lambda v: torch.func.jvp(lambda y: sr.adjoint(y[None])[0], (t[0],), (v,))[1]
    )(t)
    np.testing.assert_allclose(jv.numpy(), Y @ sr_dense, rtol=0, atol=1e-14)
    assert sr.check_adjoint() < 1e-14


def test_superres_spectrum_is_the_aliased_blur_spectrum(sr, sr_dense):
    """A Aᵀ is a circular convolution on the coarse grid: σ² = the mean of |λ|² over the f²
    fine frequencies aliasing onto each coarse one (λ = the blur's 2-D DFT)."""
    lam2 = np.abs(np.fft.fft2(sr_dense_kernel(sr_dense))) ** 2
    h, w = H // F, W // F
    mu = lam2.reshape(F, h, F, w).mean(axis=(0, 2))  # frequencies k + a h, l + b w
    np.testing.assert_allclose(
        np.sort(sr.singular_values), np.sort(np.sqrt(mu.ravel())), rtol=1e-12
    )
    U, s, Vt = sr.svd  # the thin SVD of a rectangular A
    assert U.shape == (12, 12) and s.shape == (12,) and Vt.shape == (12, 48)
    np.testing.assert_allclose((U * s) @ Vt, sr_dense, atol=1e-14)


def sr_dense_kernel(A):
    """The blur's kernel K[r, c] (row 0 of the periodic blur matrix, as an image): row 0 of
    A is pixel (0, 0) of the coarse grid, the blur's own row 0."""
    return A[0].reshape(H, W)


def test_superres_refuses_a_factor_that_does_not_divide():
    with pytest.raises(FastinvError, match="factor"):
        make_operator("superres", 48, shape="8,6", factor=4)


# --------------------------------------------------------------------------------- generate
def test_generate_draws_m_dimensional_measurements(sr, sr_dense):
    X, Y = generate(sr, n_samples=20, prior="smooth", noise=0.0, seed=3)
    assert X.shape == (20, 48) and Y.shape == (20, 12)
    np.testing.assert_allclose(Y, X @ sr_dense.T, rtol=0, atol=1e-13)
    # the signals do not depend on the operator: those of a square blur of the same size
    Xsq, _ = generate(make_operator("blur2d", 48, shape="8,6"), n_samples=20, prior="smooth",
                      noise=0.0, seed=3)  # fmt: skip
    np.testing.assert_array_equal(X, Xsq)
    # relative noise: ‖e‖/‖A x‖ = noise exactly, row by row, in m dimensions
    _, Yn = generate(sr_dense, n_samples=20, prior="smooth", noise=0.05, seed=3)
    e = np.linalg.norm(Yn - X @ sr_dense.T, axis=1) / np.linalg.norm(X @ sr_dense.T, axis=1)
    np.testing.assert_allclose(e, 0.05, rtol=1e-12)


# ------------------------------------------------------------------------------------ audit
@pytest.fixture(scope="module")
def problem():
    """A 30 x 40 dense A with known spectrum, Gaussian data, a Tikhonov 'network'."""
    A = naive.matrix_with_spectrum(np.logspace(0, -3, 30), 30, 40, seed=4)
    rng = np.random.default_rng(5)
    X, Xt = rng.standard_normal((400, 40)), rng.standard_normal((300, 40))
    Y = X @ A.T + 1e-3 * rng.standard_normal((400, 30))
    Yt = Xt @ A.T + 1e-3 * rng.standard_normal((300, 30))
    lam = 1e-3
    B = np.linalg.solve(A.T @ A + lam * np.eye(40), A.T)  # (AᵀA + λI)⁻¹Aᵀ, n x m
    return A, Y, Yt, Xt, lam, B


def _rel(P, X):
    return float(np.linalg.norm(P - X) / np.linalg.norm(X))


def test_dense_audit_of_a_rectangular_A_against_direct_formulas(problem):
    A, Y, Yt, Xt, lam, B = problem
    res = audit(lambda Z: Z @ B.T, Operator.from_array(A), probes=Y, test=(Yt, Xt),
                n_jacobian=0, path="dense")  # fmt: skip
    m, arr = res.metrics, res.arrays
    assert m["audit"]["path"] == "dense" and m["audit"]["m"] == 30 and m["audit"]["n"] == 40
    np.testing.assert_allclose(arr["C"], B, rtol=0, atol=1e-9 * np.abs(B).max())
    s = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(arr["sigma_A"], s, rtol=1e-12)
    np.testing.assert_allclose(arr["phi_C"], s**2 / (s**2 + lam), rtol=0, atol=1e-7)
    err = m["errors"]
    assert err["network"] == pytest.approx(_rel(Yt @ B.T, Xt), rel=1e-12)
    assert err["A_inv"] == pytest.approx(_rel(Yt @ np.linalg.pinv(A).T, Xt), rel=1e-9)
    orc = m["references"]["tikhonov_oracle"]["lambda"]
    Bo = np.linalg.solve(A.T @ A + orc * np.eye(40), A.T)
    assert err["tikhonov_oracle"] == pytest.approx(_rel(Yt @ Bo.T, Xt), rel=1e-9)
    assert m["references"]["A_inv"]["kind"] == "pseudo-inverse"
    assert any("A⁺" in v for v in res.verdict) and not any("A⁻¹" in v for v in res.verdict)
    assert any("null space of dimension at least 10" in v for v in res.verdict)


def test_the_figures_of_a_rectangular_audit_say_pseudo_inverse(problem, tmp_path, monkeypatch):
    """Every title, label and legend entry of the written figures names A⁺, none A⁻¹."""
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from fastinv.report.writer import write_audit_report

    A, Y, Yt, Xt, lam, B = problem
    res = audit(lambda Z: Z @ B.T, Operator.from_array(A), probes=Y, test=(Yt, Xt),
                n_jacobian=0, path="dense")  # fmt: skip
    texts: list[str] = []
    save = Figure.savefig

    def recording_savefig(fig, *args, **kwargs):
        texts.extend(t.get_text() for t in fig.findobj(Text))
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    write_audit_report(res, tmp_path)
    assert sum("A⁺" in t for t in texts) >= 3  # the σ plot's curve and title, φ's line
    assert not [t for t in texts if "A⁻¹" in t]


def test_topk_audit_of_a_rectangular_A_agrees_with_the_dense_one(problem):
    A, Y, Yt, Xt, lam, B = problem
    op = Operator.from_array(A)
    top = audit(lambda Z: Z @ B.T, op, probes=Y, test=(Yt, Xt), n_jacobian=0, rank=30)
    s = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(top.arrays["phi_C"], s**2 / (s**2 + lam), rtol=0, atol=1e-7)
    assert top.metrics["errors_full"]["network"] == pytest.approx(_rel(Yt @ B.T, Xt), rel=1e-9)
    assert top.metrics["audit"]["m"] == 30  # so the verdict speaks of A⁺ here too
    assert any("null space of dimension at least 10" in v for v in top.verdict)
    assert not any("A⁻¹" in v for v in top.verdict)
    with pytest.raises(FastinvError, match=r"at most min\(m, n\) = 30, got 31"):
        audit(lambda Z: Z @ B.T, op, probes=Y, test=(Yt, Xt), n_jacobian=0, rank=31)


def test_a_model_with_the_wrong_output_width_is_refused(problem):
    A, Y, Yt, Xt, _, _ = problem
    with pytest.raises(
        FastinvError, match=r"measurement \(30 entries\) to a signal \(40 entries\): \(320, 40\)"
    ):
        audit(lambda Z: Z, Operator.from_array(A), probes=Y, test=(Yt, Xt), n_jacobian=0,
              path="dense")  # fmt: skip


# ----------------------------------------------------------------------------- command line
def test_cli_runs_a_rectangular_matrix_file(tmp_path, problem):
    A = problem[0]
    np.save(tmp_path / "A.npy", A)
    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "fastinv", "run", "--operator", str(tmp_path / "A.npy"),
         "--samples", "300", "--epochs", "2", "--probes", "200", "--test-samples", "100",
         "--out", str(out), "-q"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["operator"]["shape"] == [30, 40]
    report = (out / "report.md").read_text()
    assert "A of shape 30 × 40 (audited against its pseudo-inverse A⁺)" in report
    assert "A⁻¹" not in report
