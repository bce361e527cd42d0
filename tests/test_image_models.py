"""Models for images: the residual CNN on the back-projection, and a user's image models
((B, C, H, W) tensors, deepinv's ``model(y, physics)``) loaded to map rows."""

from __future__ import annotations

import math
import textwrap
import uuid
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fastinv.errors import FastinvError  # noqa: E402
from fastinv.linalg.jacobians import jacobians  # noqa: E402
from fastinv.nets.loading import load_model, physics_of  # noqa: E402
from fastinv.nets.memory import EVAL_BYTES, eval_rows, plan_memory  # noqa: E402
from fastinv.nets.models import (  # noqa: E402
    ImageCNN,
    ImageModelAdapter,
    load_saved_model,
    make_model,
    save_model,
)
from fastinv.nets.spec import TrainSpec  # noqa: E402
from fastinv.nets.training import predict, train  # noqa: E402
from fastinv.problem.data import generate  # noqa: E402
from fastinv.problem.operators import Operator, make_operator  # noqa: E402

H = W = 8
N = H * W


@pytest.fixture(scope="module")
def op():
    return make_operator("blur2d", N, shape=(H, W), sigma=0.8)


def _rel(P, X) -> float:
    return float(np.linalg.norm(P - X) / np.linalg.norm(X))


def _fd_jacobian(f, y: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of f: (n,) -> (k,), one column per input entry (float64)."""
    cols = []
    for j in range(y.size):
        e = np.zeros_like(y)
        e[j] = h
        cols.append((f(y + e) - f(y - e)) / (2 * h))
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------- the CNN
def test_cnn_weights_drawn_from_the_seeded_generator():
    rng_before = torch.get_rng_state()
    a = make_model("cnn", N, image_shape=(H, W), seed=3, width=6)
    b = make_model("cnn", N, image_shape=(H, W), seed=3, width=6)
    c = make_model("cnn", N, image_shape=(H, W), seed=4, width=6)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is left alone
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.body[0].weight, c.body[0].weight)
    # the first layer is PyTorch's Conv2d init drawn from Generator(seed): fan_in = 1·3·3
    gen = torch.Generator().manual_seed(3)
    w = torch.empty(6, 1, 3, 3)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
    bias = torch.empty(6)
    nn.init.uniform_(bias, -1 / 3, 1 / 3, generator=gen)
    assert torch.equal(a.body[0].weight, w)
    assert torch.equal(a.body[0].bias, bias)
    # the output layer starts at zero: the network starts as the back-projection (here y)
    assert a.body[-1].weight.abs().sum() == 0 and a.body[-1].bias.abs().sum() == 0
    y = torch.randn(5, N)
    assert torch.equal(a(y), y)
    assert a.fastinv_spec == {
        "model": "cnn", "n": N, "n_out": N, "image_shape": [H, W], "backprojection": False,
        "width": 6, "depth": 2, "activation": "relu", "bias": True, "init": "default",
        "dtype": "float32", "seed": 3,
    }  # fmt: skip


def test_cnn_with_zero_convolutions_is_the_backprojection(op):
    net = make_model("cnn", N, backprojection=op, seed=1, dtype="float64", init="orthogonal")
    assert isinstance(net, ImageCNN) and net.image_shape == (1, H, W)  # read from op
    y = np.random.default_rng(0).standard_normal((7, N))
    with torch.no_grad():
        for p in net.body.parameters():
            p.zero_()
        out = net(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(out, y @ op.A, rtol=0, atol=1e-13)  # B y = Aᵀ y, row by row
    # a matrix given as the back-projection is applied as B y
    B = np.random.default_rng(1).standard_normal((N, N))
    net2 = make_model("cnn", N, image_shape=(H, W), backprojection=B, dtype="float64")
    with torch.no_grad():
        out2 = net2(torch.from_numpy(y)).numpy()  # output layer zero at init
    np.testing.assert_allclose(out2, y @ B.T, rtol=0, atol=1e-12)
    # an operator that is not symmetric: Aᵀ y, not A y
    opR = Operator.from_array(B)
    net3 = make_model("cnn", N, image_shape=(H, W), backprojection=opR, dtype="float64")
    with torch.no_grad():
        out3 = net3(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(out3, y @ B, rtol=0, atol=1e-12)


def test_cnn_images_are_row_major_with_zero_padding():
    """depth 0: x = y + conv3x3(y) + bias, against a loop over pixels of the row-major image."""
    net = make_model("cnn", 12, image_shape=(3, 4), depth=0, dtype="float64")
    rng = np.random.default_rng(2)
    k = rng.standard_normal((3, 3))
    with torch.no_grad():
        net.body[0].weight.copy_(torch.from_numpy(k).reshape(1, 1, 3, 3))
        net.body[0].bias.fill_(0.25)
    y = rng.standard_normal(12)
    img = y.reshape(3, 4)
    want = np.empty((3, 4))
    for r in range(3):
        for c in range(4):
            s = 0.25
            for i in range(3):
                for j in range(3):
                    rr, cc = r + i - 1, c + j - 1
                    if 0 <= rr < 3 and 0 <= cc < 4:
                        s += k[i, j] * img[rr, cc]
            want[r, c] = img[r, c] + s
    with torch.no_grad():
        got = net(torch.from_numpy(y[None]))[0].numpy()
    np.testing.assert_allclose(got, want.reshape(-1), rtol=0, atol=1e-13)


def test_trained_cnn_beats_the_backprojection(op):
    X, Y = generate(op, n_samples=800, prior="smooth", noise=0.01, seed=0)
    Xt, Yt = generate(op, n_samples=200, prior="smooth", noise=0.01, seed=1)
    spec = TrainSpec(
        model="cnn", width=8, epochs=10, lr=1e-2, batch_size=64, val_fraction=0.0,
        backprojection=op, image_shape=op.image_shape, num_threads=1,
    )  # fmt: skip
    net = train(Y, X, spec=spec)
    err_bp = _rel(op.adjoint(Yt), Xt)
    err_cnn = _rel(predict(net, Yt), Xt)
    assert err_cnn < 0.85 * err_bp  # measured: 0.56 against 0.76
    assert net.fastinv_config["backprojection"] is True
    assert net.fastinv_config["image_shape"] == [H, W]
    # the FFT operator's back-projection is applied matrix-free (no buffer, nothing trained)
    assert net.backprojection is None and net.operator is op
    assert all(p.numel() < N * N for p in net.parameters())
    with torch.no_grad():
        bp = net.back_project(torch.from_numpy(Yt).float()).double().numpy()
    np.testing.assert_allclose(bp, Yt @ op.A, rtol=0, atol=1e-5)


def test_cnn_save_load_round_trip(op, tmp_path):
    X, Y = generate(op, n_samples=64, prior="smooth", noise=0.01, seed=0)
    net = train(
        Y, X, model="cnn", width=4, epochs=2, backprojection=op, val_fraction=0.0, num_threads=1
    )
    path = tmp_path / "cnn.pt"
    save_model(net, path)
    back = load_saved_model(path)
    assert back.fastinv_spec == net.fastinv_spec
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    np.testing.assert_array_equal(predict(back, Y), predict(net, Y))
    # analyze's loader: a fastinv file maps rows, even when image_shape is given
    lm = load_model(path, n=N, image_shape=(H, W))
    assert isinstance(lm.module, ImageCNN)
    np.testing.assert_array_equal(lm.predict(Y), predict(net, Y))


@pytest.mark.parametrize("with_bp", [True, False])
def test_cnn_jacobians_equal_finite_differences(op, with_bp):
    bp = op if with_bp else None
    net = make_model(
        "cnn", N, image_shape=(H, W), backprojection=bp, width=3, activation="tanh",
        dtype="float64", seed=5,
    )  # fmt: skip
    with torch.no_grad():  # a non-zero output layer, so the CNN's part counts
        net.body[-1].weight.normal_(generator=torch.Generator().manual_seed(0))
    Y = np.random.default_rng(3).standard_normal((2, N))
    J = jacobians(net, Y)

    def f(y):
        with torch.no_grad():
            return net(torch.from_numpy(y[None]))[0].numpy()

    for i in range(2):
        np.testing.assert_allclose(J[i], _fd_jacobian(f, Y[i]), rtol=0, atol=1e-7)


def test_cnn_bad_input_is_refused(op):
    with pytest.raises(FastinvError, match="needs the image shape"):
        make_model("cnn", N)
    with pytest.raises(FastinvError, match="has 36 pixels but the signals have 64"):
        make_model("cnn", N, image_shape=(6, 6))
    with pytest.raises(FastinvError, match=r"must be an \(64, 64\) matrix"):
        make_model("cnn", N, image_shape=(H, W), backprojection=np.zeros((64, 32)))
    with pytest.raises(FastinvError, match="without a back-projection works on y itself"):
        make_model("cnn", 32, n_out=N, image_shape=(H, W))
    with pytest.raises(FastinvError, match="used by model 'cnn' only"):
        make_model("mlp", N, backprojection=op)
    with pytest.raises(FastinvError, match="used by model='cnn' only"):
        TrainSpec(model="mlp", backprojection=op)
    with pytest.raises(FastinvError, match="image_shape must be None or a tuple"):
        TrainSpec(model="cnn", image_shape=(8, 0))
    with pytest.raises(FastinvError, match="image_shape must be None or a tuple"):
        TrainSpec(model="cnn", image_shape="8x8")


def test_train_spec_image_fields_round_trip(op):
    spec = TrainSpec(model="cnn", image_shape=[8, 8], backprojection=op)
    assert spec.image_shape == (8, 8)
    d = spec.to_dict()
    assert d["image_shape"] == [8, 8] and d["backprojection"] is op
    assert TrainSpec.from_dict(d) == spec
    assert TrainSpec.from_dict({**d, "backprojection": None}).to_dict()["backprojection"] is None


def test_memory_plan_counts_conv_activations():
    net = make_model("cnn", N, image_shape=(H, W), width=32, depth=2)
    rows, item = 1000, 4
    params = sum(p.numel() for p in net.parameters()) * item
    act = rows * (N + 2 * N + 3 * (32 * N + 32 * N + 1 * N)) * item
    need = params * 4 + act  # params, grads, two Adam moments; zero-copy data

    def plan(free):
        return plan_memory(
            net, rows=rows, batch_rows=rows, n_in=N, n_out=N, itemsize=item,
            optimizer="adam", momentum=0.0, keep_best=False, device=torch.device("cpu"),
            zero_copy=True, host_free=free,
        )  # fmt: skip

    assert plan(math.ceil(need / 0.9) + 1) is True
    with pytest.raises(FastinvError, match="host memory"):
        plan(math.floor(need / 0.9) - 1)


def test_evaluation_rows_keep_conv_activations_under_the_budget():
    """Evaluation (no gradients) runs in chunks whose activations stay under EVAL_BYTES: a
    256 × 256 CNN of width 32 has 3 (65 · 65536) + 3 · 65536 numbers per row, so 20 rows of
    float32; a small MLP gets the cap."""
    big = make_model("cnn", 65536, image_shape=(256, 256), width=32, depth=2)
    per_row = (65536 + 2 * 65536 + 3 * (32 + 32 + 1) * 65536) * 4
    assert eval_rows(big, 65536, 65536, 4, cap=8192) == EVAL_BYTES // per_row == 20
    assert eval_rows(make_model("mlp", 16), 16, 16, 4, cap=8192) == 8192
    assert eval_rows(big, 65536, 65536, 4, cap=8) == 8


# --------------------------------------------------------------------------- user models
IMAGE_SRC = """
    import torch
    from torch import nn


    class ImgNet(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(1, 1, 3, padding=1).double()

        def forward(self, x):
            return x + torch.tanh(self.conv(x))


    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones((), dtype=torch.float64))

        def forward(self, x):
            return self.w * x.reshape(x.shape[0], -1)


    class FakePhysics:
        img_size = (1, 8, 8)

        def __init__(self):
            g = torch.Generator().manual_seed(1)
            self.k = torch.rand(1, 1, 3, 3, generator=g, dtype=torch.float64)

        def A(self, x):
            return torch.nn.functional.conv2d(x, self.k, padding=1)

        def A_adjoint(self, y):
            return torch.nn.functional.conv_transpose2d(y, self.k, padding=1)


    class ArtifactRemoval(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(2)
            self.conv = nn.Conv2d(1, 1, 3, padding=1).double()

        def forward(self, y, physics):
            b = physics.A_adjoint(y)
            return b + torch.tanh(self.conv(b))


    image_net = ImgNet()
    flat_net = Flat()
    physics = FakePhysics()
    deepinv_net = ArtifactRemoval()


    def numpy_images(x):
        return 2.0 * x


    def make_physics():
        return physics


    def make_deepinv_net():
        return deepinv_net
"""


@pytest.fixture(scope="module")
def user_mod(tmp_path_factory):
    folder = tmp_path_factory.mktemp("usermodels")
    path = folder / f"imgmodels_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(IMAGE_SRC))
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(path), mod


def _direct(model, Y, *args):
    with torch.no_grad():
        x = torch.from_numpy(Y).reshape(Y.shape[0], 1, H, W)
        return model(x, *args).reshape(Y.shape[0], -1).numpy()


def test_image_model_gets_images(user_mod, tmp_path):
    path, mod = user_mod
    Y = np.random.default_rng(4).standard_normal((5, N))
    lm = load_model(f"{path}:image_net", n=N, image_shape=(H, W))
    assert isinstance(lm.module, ImageModelAdapter)
    want = _direct(lm.module.model, Y)
    np.testing.assert_allclose(lm.predict(Y), want, rtol=0, atol=1e-14)
    assert lm.to_dict()["input"] == "images (B, 1, 8, 8)"
    # a TorchScript archive of an image model, the same way
    ts = tmp_path / "img.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        example = torch.zeros(1, 1, H, W, dtype=torch.float64)
        torch.jit.save(torch.jit.trace(mod.ImgNet(), example), ts)
    lm2 = load_model(ts, n=N, image_shape=(1, H, W))
    np.testing.assert_allclose(lm2.predict(Y), _direct(mod.ImgNet(), Y), rtol=0, atol=1e-14)
    # a NumPy callable gets (B, 1, H, W) arrays
    lm3 = load_model(f"{path}:numpy_images", n=N, image_shape=(H, W))
    np.testing.assert_array_equal(lm3.predict(Y), 2.0 * Y)
    # Jacobians see rows: J = I + diag(tanh') K for the conv K, against finite differences
    J = jacobians(lm.module, Y[:1])[0]
    np.testing.assert_allclose(J, _fd_jacobian(lambda y: lm.predict(y[None])[0], Y[0]), atol=1e-7)


def test_image_model_with_wrong_output_shape_is_refused(user_mod):
    path, _ = user_mod
    with pytest.raises(FastinvError, match=r"to \(2, 64\); it must return images of shape"):
        load_model(f"{path}:flat_net", n=N, image_shape=(H, W))
    with pytest.raises(FastinvError, match="has 64 pixels but the operator has n = 16"):
        load_model(f"{path}:image_net", n=16, image_shape=(H, W))


def test_deepinv_style_model_called_with_physics(user_mod):
    path, mod = user_mod
    physics = mod.physics
    Y = np.random.default_rng(5).standard_normal((4, N))
    lm = load_model(f"{path}:deepinv_net", n=N, physics=physics)  # image size from the physics
    assert lm.module.physics is physics and lm.to_dict()["input"] == "model(y, physics)"
    want = _direct(mod.deepinv_net, Y, physics)
    np.testing.assert_allclose(lm.predict(Y), want, rtol=0, atol=1e-14)
    J = jacobians(lm.module, Y[:1])[0]
    np.testing.assert_allclose(J, _fd_jacobian(lambda y: lm.predict(y[None])[0], Y[0]), atol=1e-7)
    # a model that takes images only is called on images even with a physics
    lm2 = load_model(f"{path}:image_net", n=N, physics=physics)
    assert lm2.module.physics is None
    np.testing.assert_allclose(lm2.predict(Y), _direct(mod.image_net, Y), rtol=0, atol=1e-14)


def test_physics_of_an_operator(user_mod):
    _, mod = user_mod

    class _Map:
        physics = mod.physics

    class _Op:
        linear_map = _Map()

    assert physics_of(_Op()) is mod.physics
    assert physics_of(mod.physics) is mod.physics
    assert physics_of(make_operator("blur2d", N, shape=(H, W))) is None


def test_analyze_deepinv_factories_without_glue(user_mod, monkeypatch):
    """`fastinv analyze --operator mod:make_physics --model mod:make_deepinv_net`: two
    factories, no wrapper; the network is called as model(y, physics) on the audit's probes."""
    from pathlib import Path

    from fastinv.workflows.analyze import analyze_model

    path, mod = user_mod
    monkeypatch.syspath_prepend(str(Path(path).parent))
    name = Path(path).stem
    metrics = analyze_model(
        operator=f"{name}:make_physics",
        model_spec=f"{name}:make_deepinv_net",
        samples=200,
        n_jacobian=0,
        seed=0,
    )
    assert metrics["model"]["input"] == "model(y, physics)"
    assert metrics["operator"]["image_shape"] == [H, W]
    lm = load_model(f"{path}:make_deepinv_net", n=N, physics=mod.physics)
    Y = np.random.default_rng(9).standard_normal((3, N))
    np.testing.assert_allclose(lm.predict(Y), _direct(mod.deepinv_net, Y, mod.physics), atol=1e-14)
