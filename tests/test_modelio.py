"""Loading a user's model: TorchScript, torch.export, pickle, state_dict + --arch, callables."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fastinv.errors import FastinvError  # noqa: E402
from fastinv.nets.loading import LoadedModel, load_model  # noqa: E402

N = 8
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}

ARCH_SRC = """
    import torch
    from torch import nn


    class Net(nn.Sequential):
        def __init__(self, n=8, width=16):
            super().__init__(nn.Linear(n, width), nn.Tanh(), nn.Linear(width, n))


    def build(n=8, width=16):
        return Net(n, width)


    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, y):
            return self.lin(y)


    class NeedsArgs(nn.Module):
        def __init__(self, n, width):
            super().__init__()
            self.lin = nn.Linear(n, n)

        def forward(self, y):
            return self.lin(y)


    NOT_A_CLASS = 3
"""

FUNC_SRC = """
    import numpy as np


    def predict(Y):
        return 2.0 * np.tanh(Y) + 0.5


    def wrong_shape(Y):
        return Y[:, :5].copy()


    def ints(Y):
        return np.ones(Y.shape, dtype=np.int64)


    def boom(Y):
        raise ValueError("boom")


    def nans(Y):
        out = Y.copy()
        out[0, 0] = np.nan
        return out


    def pair(Y):
        return Y, Y


    def nothing(Y):
        return None


    def as_tensor(Y):
        import torch

        return torch.from_numpy(Y) * 3


    class Klass:
        pass


    VALUE = 1.5
"""


def _net(dtype=torch.float32, seed=0, width=16):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(N, width), nn.Tanh(), nn.Linear(width, N))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net.to(dtype).eval()


def _ref(net, Y):
    p = next(net.parameters())
    with torch.no_grad():
        return net(torch.from_numpy(Y).to(p.dtype)).double().numpy()


def _Y(m=37, seed=1):
    return np.random.default_rng(seed).standard_normal((m, N))


def _assert_matches(lm: LoadedModel, net, dtype):
    Y = _Y()
    out = lm.fn(Y)
    assert out.shape == Y.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, _ref(net, Y), rtol=0, atol=TOL[dtype])
    json.dumps(lm.to_dict())


@pytest.fixture
def pymod(tmp_path, monkeypatch):
    """Write a uniquely named module into tmp_path; chdir there; forget it afterwards."""
    names = []

    def write(src: str) -> str:
        name = f"fastinv_test_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(src))
        names.append(name)
        return name

    monkeypatch.chdir(tmp_path)
    yield write
    for name in names:
        sys.modules.pop(name, None)


def _save_script(net, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(path))


# ---------------------------------------------------------------------------------------
# the forms that load
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torchscript(tmp_path, dtype):
    net = _net(dtype)
    path = tmp_path / "model.pt"
    _save_script(net, path)
    lm = load_model(str(path), n=N)
    assert lm.kind == "torchscript"
    assert lm.module is not None
    assert lm.dtype == str(dtype).removeprefix("torch.")
    assert lm.device == "cpu"
    _assert_matches(lm, net, dtype)


def test_torchscript_traced_any_extension(tmp_path):
    net = _net()
    path = tmp_path / "weights.bin"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.trace(net, torch.zeros(2, N)), str(path))
    lm = load_model(path, n=N)
    assert lm.kind == "torchscript"
    _assert_matches(lm, net, torch.float32)


def _export_or_skip(net, example, dynamic):
    """Skip only where torch has no torch.export; an export failure is a regression."""
    if not hasattr(torch, "export") or not hasattr(torch.export, "export"):
        pytest.skip(f"torch {torch.__version__} has no torch.export")
    ds = ({0: torch.export.Dim("batch")},) if dynamic else None
    return torch.export.export(net, (example,), dynamic_shapes=ds)


def test_export_dynamic_batch(tmp_path):
    net = _net()
    ep = _export_or_skip(net, torch.zeros(4, N), dynamic=True)
    path = tmp_path / "model.pt2"
    torch.export.save(ep, str(path))
    lm = load_model(str(path), n=N, batch_size=5)
    assert lm.kind == "export" and lm.module is not None and lm.fixed_batch is None
    _assert_matches(lm, net, torch.float32)
    np.testing.assert_allclose(lm.fn(_Y(1)), _ref(net, _Y(1)), atol=1e-6, rtol=0)


def test_export_static_batch_is_padded(tmp_path):
    net = _net(torch.float64)
    ep = _export_or_skip(net, torch.zeros(3, N, dtype=torch.float64), dynamic=False)
    path = tmp_path / "static.pt2"
    torch.export.save(ep, str(path))
    lm = load_model(str(path), n=N)
    assert lm.kind == "export" and lm.fixed_batch == 3 and lm.dtype == "float64"
    _assert_matches(lm, net, torch.float64)  # 37 rows: 12 full chunks of 3 and one padded


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pickle_with_trust(tmp_path, dtype):
    net = _net(dtype)
    path = tmp_path / "model.pt"
    torch.save(net, str(path))
    lm = load_model(str(path), n=N, trust_pickle=True)
    assert lm.kind == "pickle"
    _assert_matches(lm, net, dtype)


def test_pickle_refused_without_trust(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(_net(), str(path))
    with pytest.raises(FastinvError) as ei:
        load_model(str(path), n=N)
    msg = str(ei.value)
    assert f"{path} is a pickled module" in msg
    assert "loading a pickle runs code from the file" in msg
    assert "--trust-pickle" in msg and "save a state_dict / TorchScript instead" in msg


def test_pickle_of_user_class_needs_its_module(tmp_path, pymod, monkeypatch):
    name = pymod(ARCH_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = __import__(name)
    net = mod.Other().eval()
    path = tmp_path / "other.pt"
    torch.save(net, str(path))
    lm = load_model(str(path), n=N, trust_pickle=True)
    _assert_matches(lm, net, torch.float32)
    # the module that defines the class is gone: a clear error, not a traceback
    sys.modules.pop(name)
    (tmp_path / f"{name}.py").unlink()
    with pytest.raises(FastinvError, match="must be importable"):
        load_model(str(path), n=N, trust_pickle=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_dict_with_arch(tmp_path, pymod, dtype):
    name = pymod(ARCH_SRC)
    net = _net(dtype, width=12)
    path = tmp_path / "sd.pt"
    torch.save(net.state_dict(), str(path))
    lm = load_model(str(path), n=N, arch=f"{name}:Net", arch_kwargs='{"width": 12}')
    assert lm.kind == "state_dict" and lm.arch == f"{name}:Net"
    assert lm.arch_kwargs == {"width": 12}
    assert lm.dtype == str(dtype).removeprefix("torch.")
    _assert_matches(lm, net, dtype)
    # a factory function and a dict of kwargs work too
    lm2 = load_model(str(path), n=N, arch=f"{name}:build", arch_kwargs={"n": N, "width": 12})
    _assert_matches(lm2, net, dtype)
    assert lm.to_dict()["arch_kwargs"] == {"width": 12}


def test_state_dict_arch_via_syspath_prepend(tmp_path, monkeypatch):
    pkg = tmp_path / "libdir"
    pkg.mkdir()
    name = f"fastinv_test_{uuid.uuid4().hex[:10]}"
    (pkg / f"{name}.py").write_text(textwrap.dedent(ARCH_SRC))
    monkeypatch.syspath_prepend(str(pkg))
    try:
        net = _net()
        path = tmp_path / "sd.pt"
        torch.save(net.state_dict(), str(path))
        lm = load_model(str(path), n=N, arch=f"{name}:Net")
        _assert_matches(lm, net, torch.float32)
    finally:
        sys.modules.pop(name, None)


def test_state_dict_in_checkpoint_and_wrapper_prefix(tmp_path, pymod):
    name = pymod(ARCH_SRC)
    net = _net()
    ckpt = {
        "epoch": 3,
        "model_state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
        "optimizer": {"lr": 0.1},
    }
    path = tmp_path / "ckpt.pth"
    torch.save(ckpt, str(path))
    lm = load_model(str(path), n=N, arch=f"{name}:Net")
    assert lm.to_dict()["state_dict_key"] == "model_state_dict"
    _assert_matches(lm, net, torch.float32)


def test_arch_from_py_file_path(tmp_path, pymod):
    name = pymod(ARCH_SRC)
    net = _net()
    path = tmp_path / "sd.pt"
    torch.save(net.state_dict(), str(path))
    lm = load_model(str(path), n=N, arch=f"{name}.py:Net")
    _assert_matches(lm, net, torch.float32)


def test_cwd_not_left_on_sys_path(tmp_path, pymod):
    name = pymod(ARCH_SRC)
    torch.save(_net().state_dict(), str(tmp_path / "sd.pt"))
    before = list(sys.path)
    load_model(str(tmp_path / "sd.pt"), n=N, arch=f"{name}:Net")
    assert sys.path == before


def test_callable(pymod):
    name = pymod(FUNC_SRC)
    lm = load_model(f"{name}:predict", n=N, batch_size=7)
    assert lm.kind == "callable" and lm.module is None and lm.dtype == "float64"
    Y = _Y()
    np.testing.assert_allclose(lm.fn(Y), 2.0 * np.tanh(Y) + 0.5, rtol=0, atol=1e-15)
    lm_t = load_model(f"{name}.py:as_tensor", n=N)
    np.testing.assert_allclose(lm_t.fn(Y), 3 * Y, rtol=0, atol=1e-15)
    assert json.dumps(lm.to_dict())


def test_fn_batching_and_input_checks(tmp_path):
    net = _net(torch.float64)
    _save_script(net, tmp_path / "m.pt")
    lm = load_model(str(tmp_path / "m.pt"), n=N, batch_size=4)
    Y = _Y(10)
    np.testing.assert_allclose(lm.fn(Y), lm.fn(Y, batch_size=1000), rtol=0, atol=1e-13)
    np.testing.assert_allclose(lm.fn(Y), _ref(net, Y), rtol=0, atol=1e-12)
    assert lm.fn(np.zeros((0, N))).shape == (0, N)
    assert lm.fn(Y.astype(np.float32)).dtype == np.float64
    with pytest.raises(FastinvError, match=r"shape \(\*, 8\)"):
        lm.fn(np.zeros((3, 5)))
    with pytest.raises(FastinvError, match="2-D"):
        lm.fn(np.zeros(N))


def test_fastinv_own_format(tmp_path):
    from fastinv.nets.models import make_model, save_model

    net = make_model("mlp", N, width=16, seed=0)
    path = tmp_path / "fi.pt"
    save_model(net, str(path))
    lm = load_model(str(path), n=N)
    assert lm.kind == "state_dict" and lm.to_dict()["format"] == "fastinv"
    _assert_matches(lm, net.eval(), next(net.parameters()).dtype)


# ---------------------------------------------------------------------------------------
# bad input: every message says what to fix
# ---------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FastinvError, match="model file .*nope.pt.* not found"):
        load_model(str(tmp_path / "nope.pt"), n=N)
    with pytest.raises(FastinvError, match="is a folder"):
        load_model(str(tmp_path), n=N)


@pytest.mark.parametrize(
    "content", [b"hello world\n", b"", b"PK\x03\x04garbage", "truncated"], ids=repr
)
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "truncated":
        torch.save(_net().state_dict(), str(tmp_path / "full.pt"))
        data = (tmp_path / "full.pt").read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(FastinvError, match="could not read .*bad.pt as a torch model"):
        load_model(str(path), n=N)


def test_tensor_file(tmp_path):
    torch.save(torch.zeros(3, 3), str(tmp_path / "t.pt"))
    with pytest.raises(FastinvError, match="single tensor of shape"):
        load_model(str(tmp_path / "t.pt"), n=N)
    torch.save({"epoch": 3, "lr": 0.1}, str(tmp_path / "d.pt"))
    with pytest.raises(FastinvError, match="no state_dict of tensors"):
        load_model(str(tmp_path / "d.pt"), n=N)


def test_state_dict_without_arch(tmp_path):
    torch.save(_net().state_dict(), str(tmp_path / "sd.pt"))
    with pytest.raises(FastinvError) as ei:
        load_model(str(tmp_path / "sd.pt"), n=N)
    assert "holds a state_dict" in str(ei.value)
    assert "pass --arch package.module:Class" in str(ei.value)


def test_arch_errors(tmp_path, pymod):
    name = pymod(ARCH_SRC)
    sd = str(tmp_path / "sd.pt")
    torch.save(_net().state_dict(), sd)
    with pytest.raises(FastinvError) as ei:
        load_model(sd, n=N, arch="fastinv_no_such_module_xyz:Net")
    assert "cannot import module 'fastinv_no_such_module_xyz'" in str(ei.value)
    assert "ModuleNotFoundError" in str(ei.value) and "PYTHONPATH" in str(ei.value)
    with pytest.raises(FastinvError, match="has no attribute 'Nope'"):
        load_model(sd, n=N, arch=f"{name}:Nope")
    with pytest.raises(FastinvError, match="must look like package.module:Name"):
        load_model(sd, n=N, arch="Net")
    with pytest.raises(FastinvError, match="not a class"):
        load_model(sd, n=N, arch=f"{name}:NOT_A_CLASS")
    with pytest.raises(FastinvError) as ei:
        load_model(sd, n=N, arch=f"{name}:Other")
    msg = str(ei.value)
    assert "does not match" in msg and "missing keys ['lin.weight', 'lin.bias']" in msg
    assert "unexpected keys ['0.weight', '0.bias', '2.weight'" in msg and "--arch-kwargs" in msg
    with pytest.raises(FastinvError) as ei:
        load_model(sd, n=N, arch=f"{name}:Net", arch_kwargs='{"width": 32}')
    assert "does not fit" in str(ei.value) and "size mismatch for 0.weight" in str(ei.value)
    with pytest.raises(FastinvError, match="--arch-kwargs"):
        load_model(sd, n=N, arch=f"{name}:NeedsArgs")
    with pytest.raises(FastinvError, match="not valid JSON"):
        load_model(sd, n=N, arch=f"{name}:Net", arch_kwargs="{width: 12}")
    with pytest.raises(FastinvError, match="must be a JSON object"):
        load_model(sd, n=N, arch=f"{name}:Net", arch_kwargs="[12]")


def test_arch_module_that_fails_to_import(tmp_path, pymod):
    name = pymod("import fastinv_missing_dependency_abc\n")
    torch.save(_net().state_dict(), str(tmp_path / "sd.pt"))
    with pytest.raises(FastinvError, match="fastinv_missing_dependency_abc"):
        load_model(str(tmp_path / "sd.pt"), n=N, arch=f"{name}:Net")
    bad = pymod("raise RuntimeError('broken module')\n")
    with pytest.raises(FastinvError, match="raised RuntimeError: broken module"):
        load_model(str(tmp_path / "sd.pt"), n=N, arch=f"{bad}:Net")


def test_arch_with_self_describing_file(tmp_path):
    _save_script(_net(), tmp_path / "m.pt")
    with pytest.raises(FastinvError, match="drop --arch"):
        load_model(str(tmp_path / "m.pt"), n=N, arch="x:Y")


@pytest.mark.parametrize(
    ("func", "pattern"),
    [
        (
            "wrong_shape",
            r"the model maps a \(2, 8\) batch to shape \(2, 5\); it must map \(m, 8\) to "
            r"\(m, 8\) for this operator",
        ),
        ("ints", "dtype int64; it must return floating-point values"),
        ("boom", r"the model raised ValueError: boom on a batch of shape \(2, 8\)"),
        ("nans", r"1 NaN/Inf value\(s\) on a standard-normal probe batch of shape \(2, 8\)"),
        ("pair", "returned a tuple of 2 items"),
        ("nothing", "returned a NoneType"),
        ("Klass", "is a class, not a function"),
        ("VALUE", "not a callable"),
        ("missing_func", "has no attribute 'missing_func'"),
    ],
)
def test_bad_callables(pymod, func, pattern):
    name = pymod(FUNC_SRC)
    with pytest.raises(FastinvError, match=pattern):
        load_model(f"{name}:{func}", n=N)


def test_module_for_another_n(tmp_path):
    _save_script(_net(), tmp_path / "m.pt")
    with pytest.raises(FastinvError) as ei:
        load_model(str(tmp_path / "m.pt"), n=5)
    msg = str(ei.value)
    assert msg.startswith("the model raised RuntimeError: mat1 and mat2 shapes cannot be")
    assert "on a batch of shape (2, 5); it must accept a float32 tensor of shape (m, 5)" in msg


def test_module_with_wrong_output(tmp_path):
    net = nn.Sequential(nn.Linear(N, 3))
    _save_script(net, tmp_path / "m.pt")
    with pytest.raises(FastinvError, match=r"maps a \(2, 8\) batch to shape \(2, 3\)"):
        load_model(str(tmp_path / "m.pt"), n=N)


def test_bad_device_and_args(tmp_path):
    _save_script(_net(), tmp_path / "m.pt")
    with pytest.raises(FastinvError, match="unknown device"):
        load_model(str(tmp_path / "m.pt"), n=N, device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(FastinvError, match="no CUDA device"):
            load_model(str(tmp_path / "m.pt"), n=N, device="cuda")
    with pytest.raises(FastinvError, match="n must be a positive integer"):
        load_model(str(tmp_path / "m.pt"), n=0)
    with pytest.raises(FastinvError, match="batch_size must be a positive integer"):
        load_model(str(tmp_path / "m.pt"), n=N, batch_size=0)


def test_device_fixture(tmp_path, device):
    net = _net()
    _save_script(net, tmp_path / "m.pt")
    lm = load_model(str(tmp_path / "m.pt"), n=N, device=device)
    assert lm.device.startswith(device)
    Y = _Y()
    np.testing.assert_allclose(lm.fn(Y), _ref(net, Y), rtol=0, atol=1e-5)


FACTORY_SRC = """
import torch


def make_model():
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh()).double()


def make_nothing():
    return 42


def make_broken():
    raise RuntimeError("no weights here")
"""


def test_zero_argument_factory_builds_the_model(pymod):
    """``--model mod:make_model`` with make_model() returning a torch module (deepinv users'
    usual form): the module it returns is the model, called on rows."""
    name = pymod(FACTORY_SRC)
    lm = load_model(f"{name}:make_model", n=N)
    assert lm.kind == "callable" and lm.module is not None
    mod = sys.modules[name]
    net = mod.make_model()
    Y = _Y()
    with torch.no_grad():
        ref = net(torch.as_tensor(Y, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(lm.fn(Y), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        ("make_nothing", r"returned a int; .*must return a torch.nn.Module"),
        ("make_broken", r"make_broken\(\) raised RuntimeError: no weights here"),
    ],
)
def test_zero_argument_factory_errors(pymod, fn, match):
    name = pymod(FACTORY_SRC)
    with pytest.raises(FastinvError, match=match):
        load_model(f"{name}:{fn}", n=N)
