"""`fastinv analyze` on the user's own data: the stated noise (LMMSE), a separate test set,
and config.json recording only what was used. Numbers against closed forms computed here."""

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from naive import naive_tikhonov, se_kernel_matrix, shaw

from fastinv.cli.main import main
from fastinv.errors import FastinvError
from fastinv.workflows.analyze import analyze_model

N = 8
SIGMA_FIT = 1e-3  # absolute noise in the fitting probes
SIGMA_TEST = 5e-2  # ... and in the test probes: the test set wants a much larger λ

LINMOD = """
from pathlib import Path
import numpy as np

M = np.load(Path(__file__).with_name("M.npy"))

def apply(y):
    return np.asarray(y) @ M.T
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A (shaw), a linear model x̂ = M y (M = Tikhonov 1e-2), and two sets of pairs with
    different absolute noise levels."""
    d = tmp_path_factory.mktemp("analyze_data")
    A = shaw(N)[0]
    rng = np.random.default_rng(7)
    L = np.linalg.cholesky(se_kernel_matrix(N, 0.3, 1.0) + 1e-8 * np.eye(N))
    arrays = {"A": A, "M": naive_tikhonov(A, 1e-2)}
    for name, rows, sigma in (("fit", 400, SIGMA_FIT), ("test", 300, SIGMA_TEST)):
        X = 0.5 + rng.standard_normal((rows, N)) @ L.T
        arrays[f"X_{name}"] = X
        arrays[f"Y_{name}"] = X @ A.T + sigma * rng.standard_normal((rows, N))
    for k, v in arrays.items():
        np.save(d / f"{k}.npy", v)
    (d / "linmod.py").write_text(LINMOD)
    arrays["dir"] = d
    return arrays


def _analyze(data, monkeypatch, **kw):
    monkeypatch.syspath_prepend(str(data["dir"]))
    d = data["dir"]
    kw.setdefault("probes_path", d / "Y_fit.npy")
    kw.setdefault("truth_path", d / "X_fit.npy")
    return analyze_model(str(d / "A.npy"), "linmod:apply", n_jacobian=0, **kw)


def _rel(Xh, X):
    return np.linalg.norm(Xh - X) / np.linalg.norm(X)


def _lmmse(A, X, noise_var):
    """C = Σ Aᵀ (A Σ Aᵀ + σ² I)⁻¹, b = μ − C A μ with the sample moments of X (ddof 1)."""
    mu = X.mean(0)
    S = (X - mu).T @ (X - mu) / (X.shape[0] - 1)
    C = S @ A.T @ np.linalg.inv(A @ S @ A.T + noise_var * np.eye(A.shape[0]))
    return C, mu - C @ A @ mu


def test_stated_absolute_noise_gives_the_lmmse_on_the_separate_test_set(data, monkeypatch):
    d = data["dir"]
    m = _analyze(
        data,
        monkeypatch,
        test_probes_path=d / "Y_test.npy",
        test_truth_path=d / "X_test.npy",
        noise=SIGMA_FIT,
        noise_type="absolute",
    )
    A, Yt, Xt = data["A"], data["Y_test"], data["X_test"]
    info = m["references"]["lmmse"]
    assert info["noise_var"] == pytest.approx(SIGMA_FIT**2, rel=1e-12)
    assert info["prior_cov"] == "estimated from 400 samples"  # the fitting targets
    C, b = _lmmse(A, data["X_fit"], SIGMA_FIT**2)
    assert m["errors"]["lmmse"] == pytest.approx(_rel(Yt @ C.T + b, Xt), rel=1e-8)
    # every error is measured on the separate test set, not on the fitting probes
    assert m["errors"]["network"] == pytest.approx(_rel(Yt @ data["M"].T, Xt), rel=1e-8)
    assert m["errors"]["A_inv"] == pytest.approx(_rel(Yt @ np.linalg.inv(A).T, Xt), rel=1e-6)
    assert "300 probes with targets" in m["data"]["summary"]


def test_stated_relative_noise_variance_from_the_targets_moments(data, monkeypatch):
    m = _analyze(data, monkeypatch, noise=0.02)  # relative by default
    A, X = data["A"], data["X_fit"]
    mu = X.mean(0)
    S = np.cov(X, rowvar=False)
    # relative noise: σ² = level² E‖Ax‖² / n = level² (tr(A Σ Aᵀ) + ‖A μ‖²) / n
    expect = 0.02**2 * (np.trace(A @ S @ A.T) + np.sum((A @ mu) ** 2)) / N
    assert m["references"]["lmmse"]["noise_var"] == pytest.approx(expect, rel=1e-10)
    C, b = _lmmse(A, X, expect)
    # no separate test set: the probes are the test set
    Y = data["Y_fit"]
    assert m["errors"]["lmmse"] == pytest.approx(_rel(Y @ C.T + b, X), rel=1e-8)


def test_without_noise_no_lmmse(data, monkeypatch):
    m = _analyze(data, monkeypatch)
    assert "lmmse" not in m["errors"] and "lmmse" not in m["references"]
    assert any(s.startswith("LMMSE was not computed") for s in m["notes"])


def _tik_err(A, Y, X, lam):
    return _rel(Y @ np.linalg.solve(A.T @ A + lam * np.eye(N), A.T).T, X)


def test_oracle_lambda_chosen_on_the_fitting_pairs_not_the_test_set(data, monkeypatch):
    d = data["dir"]
    m = _analyze(
        data, monkeypatch, test_probes_path=d / "Y_test.npy", test_truth_path=d / "X_test.npy"
    )
    A = data["A"]
    lam = m["references"]["tikhonov_oracle"]["lambda"]
    fit = (A, data["Y_fit"], data["X_fit"])
    test = (A, data["Y_test"], data["X_test"])
    # λ minimises the error on the fitting pairs (refined: better than its neighbours) ...
    assert _tik_err(*fit, lam) <= min(_tik_err(*fit, lam * 1.5), _tik_err(*fit, lam / 1.5))
    # ... not on the (noisier) test set, which wants a larger λ
    assert _tik_err(*test, lam * 10) < _tik_err(*test, lam)
    assert m["errors"]["tikhonov_oracle"] == pytest.approx(_tik_err(*test, lam), rel=1e-6)
    assert not any("chosen on the test set" in s for s in m["notes"])


def test_test_probes_without_targets(data, monkeypatch):
    m = _analyze(data, monkeypatch, test_probes_path=data["dir"] / "Y_test.npy")
    assert m["errors"] == {}
    assert "test set of 300 probes without targets" in m["data"]["summary"]


def _config(out):
    return json.loads((out / "config.json").read_text())


def test_config_records_only_what_was_used(data, monkeypatch, tmp_path):
    monkeypatch.chdir(data["dir"])
    base = ["analyze", "--operator", "A.npy", "--model", "linmod:apply"]
    base += ["--jacobian-probes", "0", "-q", "--probes", "Y_fit.npy", "--truth", "X_fit.npy"]
    runs = {
        "noise": ["--noise", "0.001", "--noise-type", "absolute", "--test-probes", "Y_test.npy"],
        "plain": [],
    }
    for name, more in runs.items():
        res = CliRunner().invoke(main, [*base, *more, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    cfg = _config(tmp_path / "noise")
    assert (cfg["noise"], cfg["noise_type"]) == (0.001, "absolute")
    assert cfg["test_probes"] == "Y_test.npy" and "test_truth" not in cfg
    m = json.loads((tmp_path / "noise" / "metrics.json").read_text())
    assert m["references"]["lmmse"]["noise_var"] == pytest.approx(1e-6, rel=1e-12)
    plain = _config(tmp_path / "plain")
    for c in (cfg, plain):
        assert not {"prior", "prior_params", "samples"} & set(c)
        assert (c["probes"], c["truth"], c["n"]) == ("Y_fit.npy", "X_fit.npy", N)
    assert not {"noise", "noise_type", "test_probes"} & set(plain)


def test_generated_probes_record_the_defaults(data, monkeypatch, tmp_path):
    monkeypatch.chdir(data["dir"])
    args = ["analyze", "--operator", "A.npy", "--model", "linmod:apply", "--samples", "50"]
    res = CliRunner().invoke(main, [*args, "--jacobian-probes", "0", "-q", "--out", "g"])
    assert res.exit_code == 0, res.output
    cfg = _config(data["dir"] / "g")
    assert (cfg["prior"], cfg["noise"], cfg["noise_type"], cfg["samples"]) == (
        "smooth",
        0.01,
        "relative",
        50,
    )
    assert not {"probes", "truth", "test_probes", "test_truth"} & set(cfg)


def test_generated_only_settings_with_user_probes_warn(data, monkeypatch):
    with pytest.warns(UserWarning, match="prior, samples describe generated probes"):
        m = _analyze(data, monkeypatch, prior="gaussian", samples=10)
    assert "lmmse" not in m["references"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _analyze(data, monkeypatch, noise=0.0, noise_type="absolute")


@pytest.mark.parametrize(
    "kw,words",
    [
        ({"test_truth_path": "X_test.npy"}, ["test_truth_path", "test_probes_path"]),
        ({"probes_path": None, "truth_path": None, "test_probes_path": "Y_test.npy"}, ["probes"]),
        ({"test_probes_path": "Y_test.npy", "test_truth_path": "X_fit.npy"}, ["400", "300"]),
        ({"noise": -1.0}, ["noise", "-1.0"]),
        ({"noise": 0.1, "noise_type": "gaussian"}, ["noise_type", "'gaussian'"]),
    ],
)
def test_bad_data_arguments(data, monkeypatch, kw, words):
    monkeypatch.chdir(data["dir"])
    with pytest.raises(FastinvError) as e:
        _analyze(data, monkeypatch, **kw)
    assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize(
    "args,words",
    [
        (["--test-truth", "X_test.npy"], ["--test-truth", "--test-probes"]),
        (["--test-probes", "Y_test.npy"], ["--test-probes", "--probes"]),
    ],
)
def test_bad_data_options_cli(data, monkeypatch, args, words):
    monkeypatch.chdir(data["dir"])
    base = ["analyze", "--operator", "A.npy", "--model", "linmod:apply", "-q"]
    res = CliRunner().invoke(main, [*base, *args])
    assert res.exit_code == 2
    assert all(w in res.output for w in words), res.output
