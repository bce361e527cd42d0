"""Tests for fastinv.nets.models and fastinv.train."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from naive import (
    landweber_filter_factors,
    landweber_weights,
    landweber_weights_loop,
    objective,
)
from torch import nn

from fastinv._device import resolve_device
from fastinv.errors import FastinvError
from fastinv.nets.models import build_model, default_width, make_model, save_model
from fastinv.nets.models import load_saved_model as load_model
from fastinv.nets.training import predict, train


def _params_equal(m1: nn.Module, m2: nn.Module) -> bool:
    s1, s2 = m1.state_dict(), m2.state_dict()
    return s1.keys() == s2.keys() and all(torch.equal(s1[k].cpu(), s2[k].cpu()) for k in s1)


def _easy_problem(n=8, N=512, seed=0):
    rng = np.random.default_rng(seed)
    A = np.eye(n) + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    X = rng.standard_normal((N, n))
    return A, X, X @ A.T


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", ["mlp", "linear", "residual"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "silu", "identity"])
def test_make_model_shapes(name, activation):
    m = make_model(name, 5, width=7, depth=2, activation=activation)
    out = m(torch.randn(3, 5))
    assert out.shape == (3, 5)
    assert m.fastinv_spec["model"] == name
    m2 = make_model(name, 5, n_out=4, width=7, depth=1, activation=activation, bias=False)
    assert m2(torch.randn(2, 5)).shape == (2, 4)
    assert all(not n.endswith("bias") for n, _ in m2.named_parameters())


def test_make_model_defaults_and_inits():
    assert default_width(10) == 64 and default_width(300) == 300
    m = make_model("mlp", 10)
    assert m.fastinv_spec["width"] == 64 and m.fastinv_spec["depth"] == 2
    lin = make_model("linear", 6, init="zeros", bias=False)
    assert torch.count_nonzero(lin.weight) == 0
    res = make_model("residual", 6, init="zeros")
    assert torch.count_nonzero(res(torch.randn(4, 6))) == 0
    res_d = make_model("residual", 6)  # correction starts at zero: exactly linear at init
    y = torch.randn(4, 6)
    torch.testing.assert_close(res_d(y), res_d.skip(y), rtol=0, atol=0)
    orth = make_model("linear", 6, init="orthogonal", dtype="float64")
    assert orth.weight.dtype == torch.float64
    np.testing.assert_allclose(
        (orth.weight @ orth.weight.T).detach().numpy(), np.eye(6), atol=1e-12
    )
    deep_lin = make_model("mlp", 4, depth=0)
    assert isinstance(deep_lin[0], nn.Linear) and len(deep_lin) == 1


def test_make_model_reproducible_without_global_rng():
    state = torch.random.get_rng_state()
    a = make_model("mlp", 6, seed=3)
    b = make_model("mlp", 6, seed=3)
    c = make_model("mlp", 6, seed=4)
    o = make_model("residual", 6, init="orthogonal", seed=3)
    o_same = make_model("residual", 6, init="orthogonal", seed=3)
    o_other = make_model("residual", 6, init="orthogonal", seed=4)
    assert torch.equal(state, torch.random.get_rng_state())
    assert _params_equal(a, b) and not _params_equal(a, c)
    assert _params_equal(o, o_same) and not _params_equal(o, o_other)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "transformer", "n": 4}, "unknown model"),
        ({"model": "mlp"}, "needs the input dimension"),
        ({"model": "mlp", "n": 0}, "positive integer"),
        ({"model": "mlp", "n": 4, "depth": -1}, "depth"),
        ({"model": "mlp", "n": 4, "activation": "sigmoid"}, "activation"),
        ({"model": "mlp", "n": 4, "init": "xavier"}, "init"),
        ({"model": "mlp", "n": 4, "init": "zeros"}, "never leaves"),
        ({"model": "mlp", "n": 4, "dtype": "float16"}, "dtype"),
    ],
)
def test_make_model_bad_args(kwargs, match):
    with pytest.raises(FastinvError, match=match):
        make_model(**kwargs)


def test_save_load_roundtrip(tmp_path):
    A, X, Y = _easy_problem(n=4, N=64)
    m = train(Y, X, model="residual", width=8, epochs=2, device="cpu", checkpoints=[1])
    path = tmp_path / "m.pt"
    save_model(m, path)
    m2 = load_model(path)
    assert _params_equal(m, m2) and not m2.training
    assert m2.fastinv_spec == m.fastinv_spec
    assert m2.fastinv_config == m.fastinv_config
    assert set(m2.fastinv_history["checkpoints"]) == {1}
    assert _params_equal(build_model(m.fastinv_spec), make_model("residual", 4, width=8))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(FastinvError, match="could not read"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(FastinvError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(FastinvError, match="fastinv_spec"):
        save_model(nn.Linear(4, 4), tmp_path / "x.pt")


# --------------------------------------------------------------------------- devices
def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(FastinvError, match="unknown device"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(FastinvError, match="torch sees no CUDA device"):
        resolve_device("cuda")
    A, X, Y = _easy_problem(n=4, N=32)
    with pytest.raises(FastinvError, match="use --device cpu or auto"):
        train(Y, X, device="cuda", epochs=1)


def test_train_on_device(device):
    A, X, Y = _easy_problem(n=6, N=256)
    m = train(Y, X, epochs=3, batch_size=64, device=device, lr=1e-2)
    assert next(m.parameters()).device.type == device
    assert m.fastinv_config["device"].startswith(device)
    P = predict(m, Y)
    assert P.dtype == np.float64 and P.shape == X.shape
    h = m.fastinv_history
    assert len(h["train_loss"]) == 3 and all(math.isfinite(v) for v in h["train_loss"])
    m64 = train(Y, X, model="linear", dtype="float64", epochs=2, device=device)
    assert all(p.dtype == torch.float64 for p in m64.parameters())


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_same_weights():
    A, X, Y = _easy_problem(n=6, N=300)
    rng_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking it is untouched
    kw = dict(epochs=3, batch_size=32, device="cpu", val_fraction=0.2, lr=1e-2)
    m1 = train(Y, X, seed=7, **kw)
    m2 = train(Y, X, seed=7, **kw)
    m3 = train(Y, X, seed=8, **kw)
    assert _params_equal(m1, m2)
    assert not _params_equal(m1, m3)
    assert m1.fastinv_history["train_loss"] == m2.fastinv_history["train_loss"]
    assert torch.equal(rng_state, torch.random.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1])  # noqa: NPY002


# --------------------------------------------------------------------------- Landweber
def test_naive_landweber_matches_loop():
    rng = np.random.default_rng(1)
    Y, X = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    np.testing.assert_allclose(
        landweber_weights(Y, X, 0.3, 6), landweber_weights_loop(Y, X, 0.3, 6), rtol=1e-13
    )


@pytest.mark.parametrize("batch_size", [None, 10_000, 16])
def test_gd_linear_is_landweber(batch_size):
    rng = np.random.default_rng(2)
    N, n, t = 200, 6, 50
    Y = rng.standard_normal((N, n))
    X = Y @ rng.standard_normal((n, n)).T / np.sqrt(n) + 0.1 * rng.standard_normal((N, n))
    eta = 0.5 / np.linalg.norm(Y.T @ Y / N, 2)
    m = train(
        Y,
        X,
        model="linear",
        optimizer="gd",  # full batch whatever batch_size says
        bias=False,
        init="zeros",
        lr=eta,
        epochs=t,
        batch_size=batch_size,
        val_fraction=0.0,
        dtype="float64",
        device="cpu",
    )
    W = m.weight.detach().numpy()
    W_ref = landweber_weights(Y, X, eta, t)
    assert np.linalg.norm(W - W_ref) / np.linalg.norm(W_ref) < 1e-12
    h = m.fastinv_history
    assert h["n_steps"] == t and h["epoch"] == list(range(1, t + 1))
    # the reported loss is the objective 1/(2N) sum ||W y - x||^2 of the weights before the step
    W_prev = landweber_weights(Y, X, eta, t - 1)
    assert h["train_loss"][-1] == pytest.approx(objective(Y @ W_prev.T, X), rel=1e-12)
    assert h["initial_train_loss"] == pytest.approx(objective(0 * X, X), rel=1e-14)
    assert h["train_loss"][0] == pytest.approx(objective(0 * X, X), rel=1e-14)


def test_gd_whitened_filter_factors():
    rng = np.random.default_rng(3)
    N, n, t, eta = 64, 8, 50, 1.0
    Q, _ = np.linalg.qr(rng.standard_normal((N, n)))
    X = np.sqrt(N) * Q  # XᵀX/N = I to rounding
    U, _, Vt = np.linalg.svd(rng.standard_normal((n, n)))
    s = np.linspace(1.0, 0.1, n)
    A = (U * s) @ Vt
    Y = X @ A.T
    m = train(
        Y,
        X,
        model="linear",
        optimizer="gd",
        bias=False,
        init="zeros",
        lr=eta,
        epochs=t,
        val_fraction=0.0,
        dtype="float64",
        device="cpu",
    )
    W = m.weight.detach().numpy()
    F = Vt @ W @ U * s  # filter factors V^T W U S
    phi = np.diag(F)
    np.testing.assert_allclose(phi, landweber_filter_factors(s, eta, t), rtol=0, atol=1e-10)
    off = F - np.diag(phi)
    assert np.linalg.norm(off) / np.linalg.norm(F) < 1e-8


# --------------------------------------------------------------------------- learning
def test_mlp_learns_inverse():
    n = 8
    A, X, Y = _easy_problem(n=n, N=4096, seed=4)
    m = train(Y, X, model="mlp", width=64, lr=1e-2, epochs=15, device="cpu", seed=0)
    h = m.fastinv_history
    assert h["val_loss"][-1] < 0.1 * h["initial_val_loss"]
    rng = np.random.default_rng(5)
    Xt = rng.standard_normal((1000, n))
    P = predict(m, Xt @ A.T)
    assert np.linalg.norm(P - Xt) / np.linalg.norm(Xt) < 0.2


def test_schedules_and_callback():
    A, X, Y = _easy_problem(n=4, N=64)
    m = train(Y, X, epochs=8, schedule="cosine", lr=0.1, device="cpu", optimizer="sgd")
    lrs = m.fastinv_history["lr"]
    assert lrs[0] == pytest.approx(0.1) and all(
        a > b for a, b in zip(lrs[:-1], lrs[1:], strict=True)
    )
    m = train(Y, X, epochs=8, schedule="step", lr=0.1, device="cpu")
    assert m.fastinv_history["lr"] == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)

    seen = []

    def cb(epoch, logs, model):
        seen.append((epoch, logs["train_loss"]))
        return epoch == 3

    m = train(Y, X, epochs=10, callback=cb, device="cpu")
    assert [e for e, _ in seen] == [1, 2, 3]
    assert m.fastinv_history["stop_reason"] == "callback" and m.fastinv_history["epoch"][-1] == 3


def test_early_stopping_restores_best():
    rng = np.random.default_rng(6)
    N, n = 60, 20
    Y = rng.standard_normal((N, n))
    X = 0.3 * Y + rng.standard_normal((N, n))  # few samples, much noise: GD overfits
    m = train(
        Y,
        X,
        model="linear",
        optimizer="gd",
        init="zeros",
        lr=0.02,
        epochs=200,
        val_fraction=0.5,
        patience=5,
        dtype="float64",
        device="cpu",
        checkpoints=list(range(201)),
    )
    h = m.fastinv_history
    assert h["stopped_early"] and h["stop_reason"] == "patience"
    best = h["best_epoch"]
    assert 1 <= best < h["epoch"][-1] == best + 5
    assert h["best_val_loss"] == min(h["val_loss"]) == h["val_loss"][best - 1]
    assert _params_equal(m, _load(m, h["checkpoints"][best]))
    assert not _params_equal(m, _load(m, h["checkpoints"][h["epoch"][-1]]))
    assert max(h["checkpoints"]) == h["epoch"][-1]  # epochs never reached are missing


def _load(model, state):
    clone = make_model("linear", 20, dtype="float64")
    clone.load_state_dict(state)
    return clone


def test_checkpoints_recorded():
    A, X, Y = _easy_problem(n=4, N=64)
    m = train(Y, X, epochs=5, device="cpu", checkpoints=[0, 2, 5], seed=11, width=8)
    ck = m.fastinv_history["checkpoints"]
    assert sorted(ck) == [0, 2, 5]
    assert all(t.device.type == "cpu" for sd in ck.values() for t in sd.values())
    init = make_model("mlp", 4, width=8, seed=11)
    assert all(torch.equal(ck[0][k], v) for k, v in init.state_dict().items())
    assert all(torch.equal(ck[5][k], v) for k, v in m.state_dict().items())
    assert not all(torch.equal(ck[2][k], v) for k, v in m.state_dict().items())
    cfg = m.fastinv_config
    assert cfg["checkpoints"] == [0, 2, 5] and cfg["width"] == 8 and cfg["n_val"] == 6
    import json

    json.dumps(cfg)
    with pytest.raises(FastinvError, match="beyond epochs"):
        train(Y, X, epochs=2, checkpoints=[3], device="cpu")


def test_user_module_and_epochs_zero():
    A, X, Y = _easy_problem(n=4, N=64)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 4)).double()
    out = train(Y, X, model=net, epochs=2, device="cpu")
    assert out is net and not out.training
    assert next(out.parameters()).dtype == torch.float64  # dtype=None keeps the module's
    assert out.fastinv_config["model"] == "custom:Sequential"
    m0 = train(Y, X, epochs=0, device="cpu", width=8)
    assert _params_equal(m0, make_model("mlp", 4, width=8))
    assert m0.fastinv_history["epoch"] == []


def test_predict_matches_forward():
    A, X, Y = _easy_problem(n=5, N=50)
    m = make_model("mlp", 5, width=9)
    P = predict(m, Y, batch_size=7)
    with torch.no_grad():
        ref = m(torch.from_numpy(Y).float()).double().numpy()
    np.testing.assert_allclose(P, ref, rtol=1e-5, atol=1e-7)  # chunking may change rounding
    assert m.training  # mode restored
    assert predict(m, Y[:0]).shape == (0, 5)
    with pytest.raises(FastinvError, match="fails on inputs"):
        predict(m, Y[:, :3])


# --------------------------------------------------------------------------- bad input
def _bad_module():
    return nn.Linear(4, 5)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda Y, X: (Y[:-1], X, {}), "same number of rows"),
        (lambda Y, X: (Y[:, 0], X, {}), "2-D"),
        (lambda Y, X: (np.where(np.arange(Y.size).reshape(Y.shape) == 5, np.nan, Y), X, {}), "NaN"),
        (lambda Y, X: (Y, X, {"model": _bad_module()}), r"\(2, 5\).*\(2, 4\)"),
        (lambda Y, X: (Y, X, {"model": nn.Linear(3, 4)}), "probe batch of shape"),
        (lambda Y, X: (Y, X, {"val_fraction": 1.0}), "val_fraction"),
        (lambda Y, X: (Y, X, {"epochs": -1}), "epochs"),
        (lambda Y, X: (Y, X, {"lr": 0.0}), "lr"),
        (lambda Y, X: (Y, X, {"lr": float("nan")}), "lr"),
        (lambda Y, X: (Y, X, {"batch_size": 0}), "batch_size"),
        (lambda Y, X: (Y, X, {"optimizer": "lbfgs"}), "optimizer"),
        (lambda Y, X: (Y, X, {"schedule": "linear"}), "schedule"),
        (lambda Y, X: (Y, X, {"patience": 3, "val_fraction": 0.0}), "val_fraction > 0"),
        (lambda Y, X: (Y, X, {"momentum": 0.5}), "momentum"),
        (lambda Y, X: (Y, X, {"model": 3}), "model must be"),
        (lambda Y, X: (Y, X, {"dtype": "int8"}), "dtype"),
        (lambda Y, X: (Y, X, {"device": "gpu"}), "unknown device"),
    ],
)
def test_bad_inputs(change, match):
    A, X, Y = _easy_problem(n=4, N=32)
    Yb, Xb, kw = change(Y, X)
    kw.setdefault("device", "cpu")
    kw.setdefault("epochs", 1)
    with pytest.raises(FastinvError, match=match):
        train(Yb, Xb, **kw)


def test_divergence_is_reported():
    A, X, Y = _easy_problem(n=4, N=64)
    with pytest.raises(FastinvError, match="diverged"):
        train(Y, X, model="linear", optimizer="gd", lr=1e3, epochs=200, device="cpu")


def test_thread_setting_restored():
    A, X, Y = _easy_problem(n=4, N=32)
    before = torch.get_num_threads()
    train(Y, X, epochs=1, num_threads=1, device="cpu")
    assert torch.get_num_threads() == before


def test_fastinv_train_stays_callable():
    import fastinv
    import fastinv.nets.training  # noqa: F401  (the module is named apart from the function)

    A, X, Y = _easy_problem(n=3, N=20)
    assert isinstance(fastinv.train(Y, X, epochs=1, device="cpu", width=4), nn.Module)


def test_memory_refusal(monkeypatch):
    import fastinv.nets.training as train_module

    A, X, Y = _easy_problem(n=4, N=64)
    monkeypatch.setattr(train_module, "_host_available_bytes", lambda: 1000)
    with pytest.raises(FastinvError, match="host memory.*fewer samples"):
        train(Y, X, epochs=1, device="cpu")


def test_read_only_float64_input(recwarn):
    A, X, Y = _easy_problem(n=4, N=64)
    X.setflags(write=False)
    Y.setflags(write=False)
    m = train(Y, X, model="linear", dtype="float64", val_fraction=0.0, epochs=2, device="cpu")
    assert predict(m, Y).shape == X.shape
    assert not [w for w in recwarn if "writable" in str(w.message)]
