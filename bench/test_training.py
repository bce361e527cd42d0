"""Training throughput: fastinv's training loop against a plain torch loop of the same model.

fastinv
    :func:`fastinv.nets.training.train` (fused Adam where torch has it, float32), including
    what it does besides the steps: the memory plan, the probe batch, the initial loss, the
    per-epoch shuffles and loss records (no validation rows here).
fastinv-variant
    the same with ``precision="bf16"`` (autocast of the forward pass).
peer
    the loop a user writes: the same model (``make_model``, same seed), ``torch.optim.Adam``
    with its defaults (the for-each step), ``randperm`` shuffles, ``mse``-style loss.

Models: an MLP of width 1024 on n = 1024 (2 hidden layers) and the residual CNN on 64 × 64
images (32 channels, 2 hidden layers). ``extra_info["note"]`` gives samples per second; the
ratio ``t / fastinv`` of the summary is the speed-up of fastinv over the peer (> 1: fastinv
faster). Nothing here asserts on time.

Run: ``python3 -m pytest bench/test_training.py --benchmark-only``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

#: (name, n, model settings, rows, batch, epochs)
CASES = {
    "mlp1024": (1024, dict(model="mlp", width=1024, depth=2), 2048, 256, 2),
    "cnn64": (64 * 64, dict(model="cnn", width=32, depth=2, image_shape=(64, 64)), 128, 32, 1),
}


def _data(n: int, rows: int):
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((rows, n)).astype(np.float32)
    return Y, (0.5 * Y).astype(np.float32)


def _fastinv(Y, X, settings, batch, epochs, precision="float32"):
    from fastinv.nets.training import train

    return train(
        Y, X, **settings, batch_size=batch, epochs=epochs, val_fraction=0.0, lr=1e-3,
        device="cpu", precision=precision, seed=0,
    )  # fmt: skip


def _plain(Y, X, settings, batch, epochs):
    from fastinv.nets.models import make_model

    net = make_model(settings["model"], Y.shape[1], n_out=X.shape[1], seed=0,
                     **{k: v for k, v in settings.items() if k != "model"})  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Yt, Xt = torch.from_numpy(Y), torch.from_numpy(X)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(Yt.shape[0], generator=g)
        for s in range(0, Yt.shape[0], batch):
            idx = order[s : s + batch]
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * (net(Yt[idx]) - Xt[idx]).pow(2).sum() / idx.shape[0]
            loss.backward()
            opt.step()
    return net


RUNNERS = {
    "fastinv": ("fastinv", lambda *a: _fastinv(*a)),
    "fastinv bf16": ("fastinv-variant", lambda *a: _fastinv(*a, precision="bf16")),
    "plain torch loop (Adam defaults)": ("peer", _plain),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("label", list(RUNNERS))
def test_training_throughput(benchmark, case, label):
    n, settings, rows, batch, epochs = CASES[case]
    Y, X = _data(n, rows)
    role, fn = RUNNERS[label]
    fn(Y[: 2 * batch], X[: 2 * batch], settings, batch, 1)  # warm-up: allocator, kernels
    benchmark.group = f"training {case}: {rows} rows x {epochs} epochs, batch {batch}, float32"
    benchmark.pedantic(fn, args=(Y, X, settings, batch, epochs), rounds=3, iterations=1)
    rate = rows * epochs / benchmark.stats.stats.median
    benchmark.extra_info.update(role=role, label=label, note=f"{rate:.0f} samples/s")
