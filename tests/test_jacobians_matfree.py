"""Matrix-free Jacobians (fastinv.linalg.jacobians): ``Vᵀ J U`` by JVPs, ``σ_max(J)`` by
power iteration on JVP/VJP, top-k singular values by the randomized SVD on JVP/VJP closures,
and the memory plan — against the dense ``jacobians()`` (itself tested against finite
differences in test_surrogate.py), closed forms (a linear model, J = M) and the profiler's
allocation trace."""

from __future__ import annotations

import json
import tracemalloc
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastinv.errors import FastinvError  # noqa: E402
from fastinv.linalg.jacobians import (  # noqa: E402
    activation_row_bytes,
    jacobian_sigma_max,
    jacobian_topk_svals,
    jacobians,
    plan_projected_jacobians,
    projected_jacobians,
)
from fastinv.nets.models import ImageModelAdapter  # noqa: E402


def _mlp(n, width, act, n_out=None, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n, width), act(), torch.nn.Linear(width, n_out or n)
    ).double()


def _conv(side=4, width=4, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, width, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.Conv2d(width, 1, 3, padding=1),
    ).double()
    return ImageModelAdapter(net, (1, side, side), (1, side, side))


class _Linear(torch.nn.Module):
    """y -> y @ M.T: J = M at every y; no parameters (M is a plain attribute)."""

    def __init__(self, M):
        super().__init__()
        self.M = torch.as_tensor(M)

    def forward(self, y):
        return y @ self.M.T.to(y.dtype)


def _with_spectrum(s, n_out, n, seed=0):
    """An (n_out, n) matrix with singular values ``s`` (the rest zero)."""
    r = np.random.default_rng(seed)
    P = np.linalg.qr(r.standard_normal((n_out, len(s))))[0]
    Q = np.linalg.qr(r.standard_normal((n, len(s))))[0]
    return (P * s) @ Q.T


class _PlusRankOne(torch.nn.Module):
    """``inner(y) + scale a bᵀ y``: a clear gap between σ₁ and σ₂ of the Jacobian."""

    def __init__(self, inner, n, scale=3.0, seed=0):
        super().__init__()
        self.inner = inner
        r = np.random.default_rng(seed)
        a, b = (v / np.linalg.norm(v) for v in r.standard_normal((2, n)))
        self.register_buffer("W", torch.from_numpy(scale * np.outer(a, b)))

    def forward(self, y):
        return self.inner(y) + y @ self.W.T


MODELS = {
    "tanh_mlp": lambda: (_mlp(16, 24, torch.nn.Tanh), 16, 16),
    "relu_mlp": lambda: (_mlp(12, 20, torch.nn.ReLU), 12, 12),
    "wide_out": lambda: (_mlp(10, 16, torch.nn.Tanh, n_out=14), 10, 14),
    "conv": lambda: (_conv(), 16, 16),
}


def _reference(model, Y, U, V):
    J = jacobians(model, Y)  # (m, n_out, n)
    return np.einsum("ak,mab,bl->mkl", V, J, U)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_projected_matches_dense(name, rng):
    model, n, n_out = MODELS[name]()
    Y = rng.standard_normal((3, n))
    U = rng.standard_normal((n, 3))
    V = rng.standard_normal((n_out, 4))
    ref = _reference(model, Y, U, V)
    scale = np.abs(ref).max()
    # chunk 1: one column of U per call; 2: columns split 2 + 1; 4: one probe per call;
    # None: every probe in one call
    for chunk in (None, 1, 2, 4):
        P = projected_jacobians(model, Y, U, V, chunk=chunk)
        assert P.shape == (3, 4, 3) and P.dtype == np.float64
        np.testing.assert_allclose(P, ref, rtol=0, atol=1e-12 * scale)


def test_projected_float32_and_torch_input(rng):
    model, n, _ = MODELS["tanh_mlp"]()
    Y = rng.standard_normal((4, n))
    U, V = rng.standard_normal((n, 5)), rng.standard_normal((n, 2))
    ref = _reference(model, Y, U, V)
    P32 = projected_jacobians(model.float(), torch.from_numpy(Y).float(), U, V, chunk=3)
    np.testing.assert_allclose(P32, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_projected_parameter_free_models(rng):
    """A module without parameters and a plain function: J = M exactly (float64 from Y)."""
    n, n_out = 9, 6
    M = rng.standard_normal((n_out, n))
    Y = rng.standard_normal((3, n))
    U, V = rng.standard_normal((n, 4)), rng.standard_normal((n_out, 2))
    exact = np.broadcast_to(V.T @ M @ U, (3, 2, 4))
    Mt = torch.from_numpy(M)
    for model in (_Linear(M), lambda y: y @ Mt.T):
        P = projected_jacobians(model, Y, U, V, chunk=2)
        np.testing.assert_allclose(P, exact, rtol=0, atol=1e-13)


def test_projected_runs_in_eval_mode_and_restores_it(rng):
    n = 8
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(n, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.Dropout(0.5),
        torch.nn.Tanh(),
        torch.nn.Linear(16, n),
    ).double()
    with torch.no_grad():  # non-trivial running statistics
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    Y = rng.standard_normal((3, n))
    U, V = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    net.eval()
    ref = _reference(net, Y, U, V)
    net.train()
    P = projected_jacobians(net, Y, U, V)
    assert net.training
    np.testing.assert_allclose(P, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    s = jacobian_sigma_max(net, Y[0], iters=200, tol=1e-12)
    assert net.training
    np.testing.assert_allclose(s, np.linalg.svd(jacobians(net.eval(), Y[:1])[0])[1][0], 1e-6)


# ---------------------------------------------------------------------------------------
# σ_max and top-k singular values


def test_sigma_max_linear_model_is_exact():
    s = np.array([3.0, 1.5, 1.0, 0.5])
    M = _with_spectrum(s, 7, 9)
    y = np.random.default_rng(3).standard_normal(9)
    np.testing.assert_allclose(jacobian_sigma_max(_Linear(M), y), 3.0, rtol=1e-6)
    tight = jacobian_sigma_max(_Linear(M), torch.from_numpy(y), iters=100, tol=1e-15)
    np.testing.assert_allclose(tight, 3.0, rtol=1e-13)


def test_sigma_max_matches_svd_of_dense_jacobian(rng):
    y = rng.standard_normal(16)
    for inner in (MODELS["tanh_mlp"]()[0], _conv()):
        model = _PlusRankOne(inner, 16)
        sv = np.linalg.svd(jacobians(model, y[None])[0], compute_uv=False)
        assert sv[1] / sv[0] < 0.5  # a gap: the power steps converge well below 1e-6
        np.testing.assert_allclose(jacobian_sigma_max(model, y), sv[0], rtol=1e-6)


def test_sigma_max_warns_when_not_converged():
    M = _with_spectrum(np.array([1.0, 0.99, 0.5]), 6, 6)
    with pytest.warns(RuntimeWarning, match="did not converge in 2 iterations"):
        s = jacobian_sigma_max(_Linear(M), np.ones(6), iters=2)
    assert s <= 1.0 + 1e-12


def test_topk_svals_match_dense_svd(rng):
    s = np.array([4.0, 2.0, 1.0, 0.5, 0.25])
    M = _with_spectrum(s, 30, 32)
    got = jacobian_topk_svals(_Linear(M), rng.standard_normal(32), 3)
    np.testing.assert_allclose(got, s[:3], rtol=1e-9)
    model, n, _ = MODELS["tanh_mlp"]()
    y = rng.standard_normal(n)
    sv = np.linalg.svd(jacobians(model, y[None])[0], compute_uv=False)
    got = jacobian_topk_svals(model, y, 3, chunk=7)
    np.testing.assert_allclose(got, sv[:3], rtol=1e-6)


# ---------------------------------------------------------------------------------------
# the memory plan, against the profiler's allocation trace


def _measured_peak(fn, tmp_path) -> int:
    """Peak bytes of torch's CPU allocations (profiler trace, 'Total Allocated') plus the
    peak of Python/NumPy allocations (tracemalloc, a second run) during ``fn()``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    tracemalloc.start()
    try:
        fn()
        numpy_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(totals) + numpy_peak


@pytest.mark.parametrize(
    ("name", "dtype", "slack"),
    [("mlp", torch.float64, 3.0), ("conv", torch.float64, 3.0), ("conv", torch.float32, 6.0)],
)
def test_memory_plan_bounds_measured_peak(name, dtype, slack, rng, tmp_path):
    """The plan is an upper bound of the peak and at most ``slack`` times it (fused float32
    convolutions need no im2col buffer, which the plan counts)."""
    if name == "mlp":
        n, model = 64, _mlp(64, 512, torch.nn.Tanh).to(dtype)
    else:
        n, model = 256, _conv(side=16, width=16).to(dtype)
    m, ku, kv, chunk = 2, 16, 10, 48
    Y = rng.standard_normal((m, n))
    U, V = rng.standard_normal((n, ku)), rng.standard_normal((n, kv))
    peak = _measured_peak(lambda: projected_jacobians(model, Y, U, V, chunk=chunk), tmp_path)
    params = sum(p.numel() for p in model.parameters())
    rb = activation_row_bytes(model, Y[0])
    plan = plan_projected_jacobians(
        params, n, ku, m, dtype.itemsize, kv=kv, row_bytes=rb, chunk=chunk
    )
    assert peak <= plan <= slack * peak


def test_memory_plan_chooses_chunk_within_budget():
    common = dict(model_params=1000, n=256, k=64, m=10, itemsize=8, row_bytes=40_000)
    small = plan_projected_jacobians(**common, budget=1 << 20)
    large = plan_projected_jacobians(**common, budget=1 << 26)
    fixed = 1000 * 8 + (256 * 64 + 256 * 64) * 16 + 10 * 64 * 64 * 8
    per_row = 40_000 + 256 * 8 + 256 * 16 + 64 * 8
    # the chunk: the most tangent rows, each counted with a primal row, within the budget
    assert (1 << 20) // (per_row + 40_000) == 12
    assert small == fixed + 12 * per_row + 40_000  # 12 columns of U for one probe
    assert large == fixed + 640 * per_row + 10 * 40_000  # all 10 probes x 64 columns
    assert small - fixed <= 1 << 20
    assert plan_projected_jacobians(**common, chunk=1) == fixed + per_row + 40_000


# ---------------------------------------------------------------------------------------
# bad input: one clear message


def test_bad_input_messages(rng):
    model, n, _ = MODELS["tanh_mlp"]()
    Y, U, V = rng.standard_normal((2, n)), rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    cases = [
        ((model, Y, U[:-1], V), {}, r"U must have 16 rows \(the probes' width n\)"),
        ((model, Y, U, V[:-1]), {}, r"V must have 16 rows \(the model's output width\)"),
        ((model, Y, U[:, :0], V), {}, r"U is empty"),
        ((model, Y[:0], U, V), {}, r"Y is empty"),
        ((model, np.where(Y > 1, np.nan, Y), U, V), {}, r"Y contains .* non-finite"),
        ((model, Y, U, V), {"chunk": 0}, r"chunk must be a positive integer, got 0"),
        ((model, Y[:, :5], U[:5], V), {}, r"the model raised RuntimeError"),
        ((lambda y: y[:, :3, None], Y, U, V), {}, r"must map \(m, n\) rows to \(m, n_out\)"),
        ((42, Y, U, V), {}, r"model must be a torch.nn.Module or a callable"),
    ]
    for args, kw, msg in cases:
        with pytest.raises(FastinvError, match=msg):
            projected_jacobians(*args, **kw)
    with pytest.raises(FastinvError, match=r"y must be one probe of shape \(n,\)"):
        jacobian_sigma_max(model, Y)
    with pytest.raises(FastinvError, match=r"iters must be a positive integer"):
        jacobian_sigma_max(model, Y[0], iters=0)
    with pytest.raises(FastinvError, match=r"k must be an integer in \[1, 16\], got 17"):
        jacobian_topk_svals(model, Y[0], 17)
    with pytest.raises(FastinvError, match=r"n must be a positive integer"):
        plan_projected_jacobians(0, 0, 1, 1, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jacobian_sigma_max(_PlusRankOne(model, n), Y[0])  # converges: no warning


def test_full_jacobians_plan_the_memory_of_computing_them(monkeypatch):
    """One probe's reverse-mode Jacobian holds ~n copies of the activations: the batch is
    capped by that, and a probe that cannot fit is refused with a pointer to the top-k audit."""
    import torch

    from fastinv.errors import FastinvError
    from fastinv.linalg import jacobians as jac

    torch.manual_seed(0)
    n, wide = 8, 4096
    model = torch.nn.Sequential(
        torch.nn.Linear(n, wide), torch.nn.Tanh(), torch.nn.Linear(wide, n)
    ).double()
    Y = np.random.default_rng(0).standard_normal((6, n))
    per_probe = n * jac.activation_row_bytes(model, Y[0])
    assert per_probe >= n * wide * 8  # at least the wide layer, n times
    monkeypatch.setattr(jac, "_JAC_COMPUTE_BYTES", 2 * per_probe)
    assert jac._computing_cap(model, Y, 64, n, torch.device("cpu")) == 2
    J = jac.jacobians(model, Y)  # in batches of 2, same values as one batch
    monkeypatch.setattr(jac, "_JAC_COMPUTE_BYTES", 1 << 40)
    np.testing.assert_allclose(J, jac.jacobians(model, Y), atol=1e-12)
    monkeypatch.setattr(jac, "_available_bytes", lambda: per_probe / 2)
    with pytest.raises(FastinvError, match=r"use the top-k audit \(--audit-rank k\)"):
        jac.jacobians(model, Y)
