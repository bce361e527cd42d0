"""Data-parallel training under torchrun (fastinv/nets/distributed.py): 2 gloo processes give
the single-process data bitwise, the same merged moments, and the same trained weights.

One ``torchrun --standalone --nproc_per_node 2`` of this very file (see ``_worker`` at the
bottom) computes every rank's part and writes it to a folder; the tests compare it with one
process computing everything itself. A second torchrun runs ``-m fastinv run`` end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600  # seconds: two Python processes importing torch on a loaded 2-core machine

N_ROWS, N = 301, 32  # an odd number of rows: the ranks hold 151 and 150
N_PROBES = 77  # the surrogate's probes: 62 fitted, 15 held out, split unevenly by the ranks
SEED = 5
#: training settings compared between 1 and 2 processes (float64)
GD = dict(
    model="linear", optimizer="gd", lr=0.5, epochs=25, val_fraction=0.1, init="zeros",
    dtype="float64", device="cpu", seed=3,
)  # fmt: skip
ADAM = dict(
    model="mlp", width=16, depth=1, optimizer="adam", lr=1e-2, epochs=4, batch_size=40,
    val_fraction=0.2, dtype="float64", device="cpu", seed=4,
)  # fmt: skip


def _problem():
    from fastinv.problem.operators import make_operator

    return make_operator("shaw", N)


def _generate(seed_offset=0, **kw):
    from fastinv.problem.data import generate

    seed = SEED + seed_offset
    return generate(_problem(), n_samples=kw.pop("n", N_ROWS), seed=seed, noise=0.01, **kw)


def _probe_model():
    """A fixed nonlinear network (same weights in every process: seeded, float64)."""
    import torch

    torch.manual_seed(11)
    net = torch.nn.Sequential(torch.nn.Linear(N, N), torch.nn.Tanh(), torch.nn.Linear(N, N))
    return net.double().eval()


def _torchrun(*args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}
    return subprocess.run(
        cmd + list(args), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=env
    )


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """The folder the two ranks wrote their parts to."""
    out = tmp_path_factory.mktemp("ranks")
    proc = _torchrun(str(Path(__file__)), str(out), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_row_range_tiles_the_rows():
    from fastinv.nets.distributed import row_range

    for total in (0, 1, 5, 301):
        for P in (1, 2, 3, 7):
            parts = [row_range(total, r, P) for r in range(P)]
            assert [a for a, _ in parts] == [0] + [b for _, b in parts[:-1]]
            assert parts[-1][1] == total
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_detect_reads_the_torchrun_environment():
    from fastinv.errors import FastinvError
    from fastinv.nets.distributed import DistEnv, detect

    assert detect({}) is None
    assert detect({"WORLD_SIZE": "1", "RANK": "0"}) is None
    got = detect({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert got == DistEnv(rank=3, world_size=4, local_rank=1) and not got.is_root
    with pytest.raises(FastinvError, match=r"RANK must be in \[0, WORLD_SIZE - 1\]"):
        detect({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(FastinvError, match="RANK must be an integer"):
        detect({"WORLD_SIZE": "2", "RANK": "x"})


def test_generate_rows_from_an_offset_are_the_rows_of_one_draw():
    X, Y = _generate()
    Xs, Ys = _generate(n=100, start=150)
    assert np.array_equal(Xs, X[150:250]) and np.array_equal(Ys, Y[150:250])


def test_ranks_generate_the_single_process_rows_bitwise(ranks):
    X, Y = _generate()
    parts = [np.load(ranks / f"data{r}.npz") for r in (0, 1)]
    assert [p["X"].shape[0] for p in parts] == [151, 150]
    assert np.array_equal(np.vstack([p["X"] for p in parts]), X)
    assert np.array_equal(np.vstack([p["Y"] for p in parts]), Y)


def test_allreduce_moments_equals_one_pass(ranks):
    from fastinv.linalg.moments import MomentAccumulator

    X, Y = _generate()
    ref = MomentAccumulator(N, N).update(Y, X).solve()
    for name in ("moments0", "moments1", "moments_dst0"):  # every rank; gathered to rank 0
        got = np.load(ranks / f"{name}.npz")
        assert int(got["n"]) == N_ROWS
        np.testing.assert_allclose(got["C"], ref.C, rtol=1e-9, atol=1e-9 * np.abs(ref.C).max())
        np.testing.assert_allclose(got["b"], ref.b, rtol=1e-9, atol=1e-12)
        assert abs(float(got["r2"]) - ref.r2) < 1e-12
    assert not (ranks / "moments_dst1.npz").exists()  # rank 1 received nothing


def test_allreduce_moments_of_a_torch_accumulator(ranks):
    from fastinv.linalg.moments import MomentAccumulator

    X, Y = _generate()
    ref = MomentAccumulator(N, N).update(Y, X).solve()
    got = np.load(ranks / "moments_torch.npz")
    assert int(got["n"]) == N_ROWS
    np.testing.assert_allclose(got["C"], ref.C, rtol=1e-9, atol=1e-9 * np.abs(ref.C).max())


def test_surrogate_moments_merged_from_ranks_give_the_single_process_fit(ranks):
    from fastinv.linalg.surrogate import fit_surrogate, holdout_mask

    _, Y = _generate(n=N_PROBES, seed_offset=1)
    one = fit_surrogate(_probe_model(), Y, holdout=0.2, seed=7)
    mask = holdout_mask(N_PROBES, 0.2, 7)
    rows = [int(np.load(ranks / f"surrogate_rows{r}.npy")) for r in (0, 1)]
    assert rows == [int((~mask[:39]).sum()), int((~mask[39:]).sum())]  # each rank's own rows
    got = np.load(ranks / "surrogate.npz")
    assert int(got["n"]) == one.n_samples == N_PROBES - 15
    np.testing.assert_allclose(got["C"], one.C, rtol=1e-9, atol=1e-9 * np.abs(one.C).max())
    np.testing.assert_allclose(got["b"], one.b, rtol=1e-9, atol=1e-12)
    assert abs(float(got["r2"]) - one.r2) < 1e-10


def test_collectives_agree_and_a_failure_on_one_rank_stops_both(ranks):
    got = [json.loads((ranks / f"collectives{r}.json").read_text()) for r in (0, 1)]
    assert [g["broadcast"] for g in got] == [3, 3]
    assert [g["ok"] for g in got] == [100, 101]
    assert got[1]["raised"] == "ValueError: planted on rank 1"
    assert got[0]["raised"] == (
        "FastinvError: rank 1 of 2 failed (ValueError: planted on rank 1); this rank stopped "
        "with it"
    )


def _single(settings):
    from fastinv.nets.training import train

    X, Y = _generate()
    net = train(Y, X, **settings)
    return {k: v.numpy() for k, v in net.state_dict().items()}, net.fastinv_history


@pytest.mark.parametrize("name, settings, tol", [("gd", GD, 1e-10), ("adam", ADAM, 1e-8)])
def test_two_ranks_train_the_single_process_weights(ranks, name, settings, tol):
    """Full-batch gradient descent (Landweber) on the linear model to 1e-10, and mini-batch
    Adam on an MLP (validation split, shuffles and batches as one process draws them)."""
    weights, hist = _single(settings)
    for r in (0, 1):
        got = np.load(ranks / f"{name}{r}.npz")
        for k, w in weights.items():
            np.testing.assert_allclose(got[k], w, rtol=0, atol=tol * max(1.0, np.abs(w).max()))
        losses = json.loads((ranks / f"{name}{r}.json").read_text())
        np.testing.assert_allclose(losses["train_loss"], hist["train_loss"], rtol=1e-10)
        np.testing.assert_allclose(losses["val_loss"], hist["val_loss"], rtol=1e-10)
        assert losses["n_steps"] == hist["n_steps"]


@pytest.mark.slow
def test_torchrun_fastinv_run_writes_one_run_folder(tmp_path):
    # "--" ends torchrun's own options (its parser would take --n for --nnodes or --nproc-per-node)
    # float64 training: the two runs then agree to rounding (in float32 the steps amplify it)
    args = "--n 24 --samples 300 --test-samples 100 --probes 120 --epochs 2 --width 24"
    args += " --dtype float64"
    proc = _torchrun(
        "-m", "fastinv", "--", "run", *args.split(), "--jacobian-probes", "2",
        "--out", str(tmp_path / "run"), "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert proc.stdout.count("fastinv run finished") == 1  # rank 1 is quiet
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["model"]["world_size"] == 2
    assert metrics["data"]["n_train"] == 300
    assert metrics["audit"]["path"] == "dense" and metrics["timings"]["surrogate"] > 0
    # one process, same arguments: the same C (its moments were accumulated by two ranks)
    from click.testing import CliRunner

    from fastinv.cli.main import main

    one = tmp_path / "one"
    res = CliRunner().invoke(main, ["run", *args.split(), "--jacobian-probes", "2", "--out",
                                    str(one), "--quiet"], catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    C1, C2 = (np.load(d / "arrays.npz")["C"] for d in (one, tmp_path / "run"))
    np.testing.assert_allclose(C2, C1, rtol=0, atol=1e-9 * np.abs(C1).max())
    single = json.loads((one / "metrics.json").read_text())
    assert "surrogate" not in single["timings"]
    assert metrics["surrogate"]["r2"] == pytest.approx(single["surrogate"]["r2"], abs=1e-10)


# ------------------------------------------------------------------------------------------
# the ranks' side: `torchrun --nproc_per_node 2 tests/test_distributed.py OUT`
def _save_training(out: Path, name: str, rank: int, Y, X, lo: int, settings) -> None:
    from fastinv.nets.training import RowShard, train

    net = train(Y, X, shard=RowShard(lo, N_ROWS), **settings)
    np.savez(out / f"{name}{rank}.npz", **{k: v.numpy() for k, v in net.state_dict().items()})
    h = net.fastinv_history
    keep = {k: h[k] for k in ("train_loss", "val_loss", "n_steps")}
    (out / f"{name}{rank}.json").write_text(json.dumps(keep))


def _save_moments(path: Path, acc) -> None:
    fit = acc.solve()
    np.savez(path, C=fit.C, b=fit.b, r2=fit.r2, n=acc.n_samples)


def _save_surrogate(out: Path, env) -> None:
    """Each rank accumulates the surrogate's moments on its probe rows; rank 0 fits C."""
    from fastinv.linalg.surrogate import fit_surrogate, surrogate_moments
    from fastinv.nets.distributed import allreduce_moments, row_range

    model = _probe_model()
    lo, hi = row_range(N_PROBES, env.rank, env.world_size)
    _, Yp = _generate(n=hi - lo, start=lo, seed_offset=1)
    part = surrogate_moments(model, Yp, start=lo, total=N_PROBES, holdout=0.2, seed=7)
    np.save(out / f"surrogate_rows{env.rank}.npy", part.n_samples)
    merged = allreduce_moments(part, dst=0)
    if merged is not None:
        _, Y_all = _generate(n=N_PROBES, seed_offset=1)
        fit = fit_surrogate(model, Y_all, holdout=0.2, seed=7, moments=merged)
        np.savez(out / "surrogate.npz", C=fit.C, b=fit.b, r2=fit.r2, n=fit.n_samples)


def _save_collectives(out: Path, env, acc) -> None:
    """A torch accumulator through the gather; a broadcast; a failure on rank 1 only."""
    from fastinv.linalg.moments import MomentAccumulator
    from fastinv.nets.distributed import allreduce_moments, broadcast_from_root, collectively

    t = MomentAccumulator(N, N, backend="torch", device="cpu").merge(acc)
    at0 = allreduce_moments(t, dst=0)
    if at0 is not None:
        _save_moments(out / "moments_torch.npz", at0)
    got = {"broadcast": broadcast_from_root(10 * env.rank + 3)}
    got["ok"] = collectively(lambda: env.rank + 100)
    try:
        collectively(_fails_on_rank_1, env.rank)
    except Exception as e:  # noqa: BLE001 -- what each rank raised is the result
        got["raised"] = f"{type(e).__name__}: {e}"
    (out / f"collectives{env.rank}.json").write_text(json.dumps(got))


def _fails_on_rank_1(rank: int) -> None:
    if rank == 1:
        raise ValueError("planted on rank 1")


def _worker(out: Path) -> None:
    from fastinv.linalg.moments import MomentAccumulator
    from fastinv.nets.distributed import allreduce_moments, detect, process_group, row_range

    env = detect()
    lo, hi = row_range(N_ROWS, env.rank, env.world_size)
    X, Y = _generate(n=hi - lo, start=lo)
    np.savez(out / f"data{env.rank}.npz", X=X, Y=Y)
    with process_group(env, "cpu"):
        acc = MomentAccumulator(N, N).update(Y, X)
        _save_moments(out / f"moments{env.rank}.npz", allreduce_moments(acc))
        at0 = allreduce_moments(acc, dst=0)
        if at0 is not None:
            _save_moments(out / f"moments_dst{env.rank}.npz", at0)
        _save_collectives(out, env, acc)
        _save_surrogate(out, env)
        _save_training(out, "gd", env.rank, Y, X, lo, GD)
        _save_training(out, "adam", env.rank, Y, X, lo, ADAM)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
