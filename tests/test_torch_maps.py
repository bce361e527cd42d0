"""The torch path of the linear maps (``LinearMap.torch_rows``, ``Operator.apply``/``adjoint`` on
tensors): equal to the entry-by-entry matrices of tests/naive.py on the CPU and on CUDA, in
float32 and float64; differentiable (autograd and torch.func's vmapped JVPs, the audit's
Jacobians); and the matrix-free back-projection of the CNN that it makes possible at n = 65536."""

from __future__ import annotations

import naive
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastinv.errors import FastinvError  # noqa: E402
from fastinv.nets.models import ImageCNN, load_saved_model, make_model, save_model  # noqa: E402
from fastinv.problem.operators import Operator, make_operator  # noqa: E402
from fastinv.problem.structured import (  # noqa: E402
    FuncMap,
    KroneckerMap,
    PeriodicConvolution,
    SparseMap,
    ZeroConvolution,
)

H, W = 7, 9
MAPS = [  # (catalogue parameters, the structure it must have, naive matrix)
    ({"boundary": "periodic", "psf": "motion", "angle": 30.0},
     "fft2", lambda: naive.blur2d_periodic(H, W, "motion", angle=30.0)),
    ({"boundary": "reflective", "psf": "disk"},
     "dct2", lambda: naive.blur2d_bounded(H, W, "disk", "reflective")),
    ({"boundary": "zero", "psf": "motion", "angle": 30.0},
     "matrix-free", lambda: naive.blur2d_bounded(H, W, "motion", "zero", angle=30.0)),
    ({"boundary": "zero", "psf": "gaussian", "sigma": 1.2},
     "kronecker", lambda: naive.blur2d_bounded(H, W, "gaussian", "zero", sigma=1.2)),
]  # fmt: skip


def _ops():
    for p, structure, dense in MAPS:
        yield make_operator("blur2d", H * W, shape=f"{H},{W}", **p), structure, dense()
    ip = make_operator("inpaint", H * W, shape=f"{H},{W}", fraction=0.5)
    yield ip, "diagonal", np.diag(ip.linear_map.d)
    sh = make_operator("shaw", 24)
    yield sh, "dense", naive.shaw(24)[0]
    # kernels without symmetry (the catalogue's PSFs are point-symmetric: A = Aᵀ for fft2)
    rng = np.random.default_rng(8)
    K = rng.standard_normal((H, W))
    A = np.zeros((H * W, H * W))
    P = rng.standard_normal((3, 5))  # offsets -1..1 by -2..2
    Z = np.zeros((H * W, H * W))
    for r in range(H):
        for c in range(W):
            for r2 in range(H):
                for c2 in range(W):
                    A[r * W + c, r2 * W + c2] = K[(r - r2) % H, (c - c2) % W]
            for a in range(-1, 2):
                for b in range(-2, 3):
                    if 0 <= r - a < H and 0 <= c - b < W:
                        Z[r * W + c, (r - a) * W + c - b] += P[a + 1, b + 2]
    yield Operator(PeriodicConvolution(K), name="K"), "fft2", A
    yield Operator(ZeroConvolution(P, (H, W)), name="P"), "matrix-free", Z
    Ar, Ac = rng.standard_normal((H, H)), rng.standard_normal((W, W))
    yield Operator(KroneckerMap(Ar, Ac), name="AB"), "kronecker", np.kron(Ar, Ac)


OPS = list(_ops())
IDS = [f"{op.name}-{s}" for op, s, _ in OPS]


@pytest.mark.parametrize("op, structure, A", OPS, ids=IDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_products_equal_the_naive_matrix(op, structure, A, dtype, device):
    assert op.structure == structure and op.torch_native
    tdt = getattr(torch, dtype)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, op.n))
    tol = 1e-12 if dtype == "float64" else 2e-5
    for adjoint, want in ((False, X @ A.T), (True, X @ A)):
        t = torch.as_tensor(X, dtype=tdt, device=device)
        out = op.adjoint(t) if adjoint else op.apply(t)
        assert out.dtype == tdt and out.device.type == device and out.shape == (5, op.n)
        np.testing.assert_allclose(out.cpu().double().numpy(), want, rtol=0, atol=tol)
        one = op.adjoint(t[0]) if adjoint else op.apply(t[0])  # a single row keeps its shape
        assert one.shape == (op.n,)
        np.testing.assert_allclose(one.cpu().double().numpy(), want[0], rtol=0, atol=tol)


@pytest.mark.parametrize("op, structure, A", OPS, ids=IDS)
def test_torch_products_are_differentiable(op, structure, A, device):
    """Autograd: ∂⟨w, A x⟩/∂x = Aᵀ w; torch.func: vmapped JVPs of x -> Aᵀ x are Aᵀ t."""
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.standard_normal((2, op.n)), device=device, requires_grad=True)
    w = rng.standard_normal((2, op.n))
    (op.apply(x) * torch.as_tensor(w, device=device)).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), w @ A, rtol=0, atol=1e-12)
    y = torch.as_tensor(rng.standard_normal(op.n), device=device)
    T = torch.as_tensor(rng.standard_normal((3, op.n)), device=device)

    def single(v):
        return op.adjoint(v[None])[0]

    jv = torch.func.vmap(lambda t: torch.func.jvp(single, (y,), (t,))[1])(T)
    np.testing.assert_allclose(jv.cpu().numpy(), T.cpu().numpy() @ A, rtol=0, atol=1e-12)


def test_maps_without_a_torch_path_go_through_numpy():
    rng = np.random.default_rng(6)
    S = rng.standard_normal((6, 6)) * (rng.random((6, 6)) < 0.5)
    for lm in (SparseMap(S), FuncMap(lambda X: X @ S.T, lambda Y: Y @ S, (6, 6))):
        op = Operator(lm, name="m")
        assert not op.torch_native
        t = torch.as_tensor(rng.standard_normal((3, 6)), dtype=torch.float32)
        out = op.apply(t)
        assert out.dtype == torch.float32
        np.testing.assert_allclose(out.double().numpy(), t.double().numpy() @ S.T, atol=1e-5)
    # a torch path given to FuncMap is used, and its output shape is checked
    lm = FuncMap(lambda X: X @ S.T, lambda Y: Y @ S, (6, 6), torch_rows=lambda X, adj: X[:, :5])
    with pytest.raises(FastinvError, match=r"returned shape \(3, 5\) for 3 input\(s\); expected"):
        Operator(lm, name="bad").apply(torch.zeros(3, 6))


def test_cnn_back_projection_is_matrix_free_at_n_65536(tmp_path, monkeypatch):
    """A 256 x 256 blur (dense Aᵀ: 32 GiB): the CNN applies Aᵀ by FFT, never as a matrix;
    a saved model records the catalogue operator and is rebuilt from it."""
    op = make_operator("blur2d", 256 * 256, sigma=2.0)
    monkeypatch.setattr(type(op), "to_dense", lambda *a, **k: pytest.fail("to_dense called"))
    net = make_model("cnn", op.m, backprojection=op, width=4, depth=1)
    assert isinstance(net, ImageCNN) and net.backprojection is None
    assert sum(p.numel() for p in net.parameters()) < 1000
    rec = net.fastinv_spec["backprojection"]
    assert rec == {"operator": "blur2d", "n": 65536, "params": op.params}
    y = np.random.default_rng(7).standard_normal((2, op.m))
    with torch.no_grad():
        out = net(torch.as_tensor(y, dtype=torch.float32)).double().numpy()
    want = op.adjoint(y)  # the output layer starts at zero: the network is Aᵀ y
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-5 * np.abs(want).max())
    with torch.no_grad():
        net.body[-1].weight.normal_(generator=torch.Generator().manual_seed(0))
    save_model(net, tmp_path / "m.pt")
    back = load_saved_model(tmp_path / "m.pt")
    assert back.fastinv_spec == net.fastinv_spec and back.operator.params == op.params
    yt = torch.as_tensor(y, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(back(yt), net(yt), rtol=0, atol=0)


def test_a_saved_cnn_on_an_operator_outside_the_catalogue_is_refused_at_load(tmp_path):
    op = make_operator("blur2d", 64, shape="8,8")
    net = make_model("cnn", 64, backprojection=op, width=2, depth=1)
    net.fastinv_spec["backprojection"] = {**net.fastinv_spec["backprojection"], "operator": "x"}
    save_model(net, tmp_path / "m.pt")
    with pytest.raises(FastinvError, match="'x', which is not in fastinv's catalogue"):
        load_saved_model(tmp_path / "m.pt")


class _InPlace(torch.nn.Module):
    """x = W y written into a fresh zeros tensor in place: torch.func.vmap refuses that (as it
    does some deepinv physics), so the Jacobians must fall back to row-by-row autograd."""

    def __init__(self, W):
        super().__init__()
        self.W = torch.nn.Parameter(torch.as_tensor(W))

    def forward(self, y):
        out = torch.zeros(y.shape[0], self.W.shape[0], dtype=y.dtype)
        out += y @ self.W.T
        return out


def test_jacobians_of_a_model_that_cannot_be_vmapped():
    from fastinv.linalg.jacobians import jacobians, projected_jacobians

    rng = np.random.default_rng(10)
    W = rng.standard_normal((5, 7))
    net = _InPlace(W)
    Y = rng.standard_normal((3, 7))
    with pytest.raises(RuntimeError):  # the premise: vmap refuses this model
        torch.func.vmap(torch.func.jacrev(lambda y: net(y[None])[0]))(torch.as_tensor(Y))
    J = jacobians(net, Y)
    np.testing.assert_allclose(J, np.broadcast_to(W, (3, 5, 7)), rtol=0, atol=1e-12)
    U, V = rng.standard_normal((7, 2)), rng.standard_normal((5, 3))
    P = projected_jacobians(net, Y, U, V)
    np.testing.assert_allclose(P, np.broadcast_to(V.T @ W @ U, (3, 3, 2)), rtol=0, atol=1e-12)
