"""Training at the machine's speed (fastinv/nets/training.py): fused Adam, opt-in bf16 / tf32.

Fused Adam rounds differently from torch's for-each Adam (about one float32 ulp per step), so
the float32 default is not bitwise what it was before; it is tested close to the for-each
step and bitwise reproducible with the seed. bf16 autocast is tested against the closed-form
least-squares solution of a linear model.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastinv.errors import FastinvError
from fastinv.nets import training
from fastinv.nets.spec import TrainSpec
from fastinv.nets.training import train

N, n = 2000, 16


@pytest.fixture(scope="module")
def linear_data():
    """y Gaussian, x = W y exactly: least squares recovers W."""
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((N, n))
    W = rng.standard_normal((n, n)) / 4
    return Y, Y @ W.T, W


def _weights(net) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in net.state_dict().items()}


MLP = dict(model="mlp", width=32, depth=2, epochs=3, batch_size=50, val_fraction=0.1, seed=7)
ROWS = 500  # of the linear data, for the MLP runs


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-4), ("float64", 1e-11)])
def test_fused_adam_is_used_and_close_to_foreach(linear_data, monkeypatch, dtype, rtol):
    Y, X = linear_data[0][:ROWS], linear_data[1][:ROWS]
    fused = train(Y, X, dtype=dtype, device="cpu", **MLP)
    assert fused.fastinv_config["optimizer_impl"] == "fused"
    monkeypatch.setattr(training, "_fused_adam_ok", lambda params: False)
    plain = train(Y, X, dtype=dtype, device="cpu", **MLP)
    assert plain.fastinv_config["optimizer_impl"] == "foreach"
    wf, wp = _weights(fused), _weights(plain)
    for k in wf:
        np.testing.assert_allclose(wf[k], wp[k], rtol=rtol, atol=rtol * np.abs(wp[k]).max())
    np.testing.assert_allclose(
        fused.fastinv_history["train_loss"], plain.fastinv_history["train_loss"], rtol=rtol
    )


def test_fused_adam_is_reproducible_bitwise(linear_data):
    Y, X = linear_data[0][:ROWS], linear_data[1][:ROWS]
    a, b = (_weights(train(Y, X, device="cpu", **MLP)) for _ in range(2))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def _fit(Y, X, precision: str):
    return train(
        Y, X, model="linear", bias=False, init="zeros", optimizer="gd", lr=0.5, epochs=60,
        val_fraction=0.0, precision=precision, device="cpu",
    )  # fmt: skip


def test_bf16_converges_to_the_least_squares_solution(linear_data):
    """Plain gradient descent on x = W y: float32 reaches W to 1e-6, bf16 autocast (8-bit
    mantissa in the forward products) to 1e-2 -- and really ran in bf16 (it differs)."""
    Y, X, W = linear_data
    w32 = _fit(Y, X, "float32").weight.detach().double().numpy()
    net = _fit(Y, X, "bf16")
    w16 = net.weight.detach().double().numpy()
    rel = np.linalg.norm(w16 - W) / np.linalg.norm(W)
    assert np.linalg.norm(w32 - W) / np.linalg.norm(W) < 1e-6
    assert rel < 1e-2
    assert np.linalg.norm(w16 - w32) / np.linalg.norm(W) > 1e-5  # autocast took effect
    assert net.fastinv_config["precision"] == "bf16"
    assert net.weight.dtype == training.torch.float32  # the weights stay float32


def test_tf32_on_the_cpu_is_float32_with_a_note(linear_data):
    Y, X, _ = linear_data
    a, b = _fit(Y, X, "float32"), _fit(Y, X, "tf32")
    assert all(np.array_equal(v, _weights(b)[k]) for k, v in _weights(a).items())
    assert "float32" in b.fastinv_config["precision_note"]
    assert "precision_note" not in a.fastinv_config


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"precision": "fp16"}, r"precision must be one of"),
        ({"precision": "bf16", "dtype": "float64"}, r"precision='bf16' speeds up float32"),
        (
            {"precision": "tf32", "matmul_precision": "highest"},
            r"drop matmul_precision='highest'",
        ),
    ],
)
def test_bad_precision_is_refused(kwargs, match):
    with pytest.raises(FastinvError, match=match):
        TrainSpec(**kwargs)


def test_bf16_with_a_float64_module_is_refused(linear_data):
    import torch

    Y, X, _ = linear_data
    module = torch.nn.Linear(n, n, dtype=torch.float64)
    with pytest.raises(FastinvError, match=r"the model is float64; pass dtype='float32'"):
        train(Y, X, model=module, precision="bf16", epochs=1, device="cpu")


def test_run_config_passes_precision_to_training():
    from fastinv.workflows.run import RunConfig

    cfg = RunConfig(precision="bf16")
    assert cfg.to_dict()["precision"] == "bf16"
    assert cfg.train_spec(64, "cpu").precision == "bf16"
    with pytest.raises(FastinvError, match="precision must be one of"):
        RunConfig(precision="half")
