"""`fastinv sweep --cluster`: a Dask cluster gives the serial rows, survives a killed worker,
and refuses bad addresses with one line (skipped when Dask distributed is not installed)."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from fastinv.cli.sweep import sweep
from fastinv.errors import FastinvError
from fastinv.workflows import sweep_cluster, sweep_pool
from fastinv.workflows.sweep import run_sweep

distributed = pytest.importorskip("distributed")

# 2 models (widths 8, 16), 2 checkpoints each, n = 16, tiny data
KW = dict(
    operator_params={"cond": 10},
    epochs=[1, 3],
    widths=[8, 16],
    depths=[1],
    samples=[120],
    noise=[0.01],
    seeds=[0],
    probes=100,
    test_samples=100,
    batch_size=40,
    lr=0.01,
    n_boot=100,
)
CLI = (
    "--operator random --n 16 --param cond=10 --epochs 1,3 --widths 8,16 --depths 1 "
    "--samples 120 --noise 0.01 --seeds 0 --probes 100 --test-samples 100 --batch-size 40 "
    "--lr 0.01 --bootstrap 100 --quiet"
).split()


@pytest.fixture(scope="module")
def serial():
    return run_sweep("random", 16, **KW).rows


def same_rows(a, b):
    """Every column of every row equal (the rows hold no timings: those are in the model
    files), floats to 1e-12."""
    assert [r["key"] for r in a] == [r["key"] for r in b]
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k, v in ra.items():
            if isinstance(v, float):
                assert rb[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
            else:
                assert rb[k] == v, k


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for s in needles:
        assert s in lines[0], lines[0]


@pytest.mark.slow
def test_local_cluster_gives_the_serial_rows(serial, tmp_path):
    out = tmp_path / "cl"
    res = CliRunner().invoke(sweep, [*CLI, "--cluster", "local:2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    same_rows(serial, rows)
    assert len(list((out / "models").glob("*.json"))) == 2


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as lc,
        distributed.Client(lc) as client,
    ):
        yield lc, client


def _kill_first_busy_worker(client, pids: dict, found: dict, stop: threading.Event):
    """Wait until a worker processes a sweep task, then SIGKILL that worker's process."""
    while not stop.is_set():
        for addr, keys in client.processing().items():
            ours = [k for k in keys if str(k).startswith("fastinv-")]
            if ours and addr in pids:
                time.sleep(0.3)  # into the task
                os.kill(pids[addr], signal.SIGKILL)
                found.update(key=ours[0], pid=pids[addr])
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_failed_models_are_named_and_the_others_run(cluster):
    # two models that fail for reasons of their own (width 0, an unknown model): both are
    # tried, and one error names both
    _, client = cluster
    cfg = dict(
        prior="smooth", prior_params={}, noise_type="relative", seed=0, model="mlp", fingerprint="x"
    )
    cfg.update(activation="relu", optimizer="adam", lr=0.01, batch_size=10, schedule="constant")
    ctx = {"A": np.eye(4), "cfg": {**cfg, "device": "cpu"}, "noise_levels": [0.0]}
    bad = [sweep_pool.model_settings(ctx["cfg"], 0, 1, 10, 0.0, 0, [1])]
    bad.append({**bad[0], "key": "other", "width": 4, "depth": -1})
    got, lines = [], []
    address = client.scheduler.address
    with pytest.raises(FastinvError) as e:
        sweep_cluster.run_on_cluster(bad, ctx, address, finished=got.append, log=lines.append)
    assert "2 of 2 models failed" in str(e.value), str(e.value)
    assert "w0-d1-N10-nz0-s0: width must be" in str(e.value), str(e.value)
    assert "other: depth must be" in str(e.value), str(e.value)
    assert got == [] and "models: 0 done, 0 running, 2 failed of 2; all ended" in lines[-1]


@pytest.mark.slow
def test_a_killed_worker_does_not_lose_a_model(serial, cluster):
    lc, client = cluster
    pids = client.run(os.getpid)
    found: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(
        target=_kill_first_busy_worker, args=(client, pids, found, stop), daemon=True
    )
    watcher.start()
    try:
        res = run_sweep("random", 16, cluster=lc.scheduler_address, **KW)
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert found, "no worker was killed"
    with pytest.raises(ProcessLookupError):
        os.kill(found["pid"], 0)
    # the killed worker's task went to a worker twice, and every model has its rows
    story = lc.scheduler.story(found["key"])
    assert sum(1 for t in story if t[2] == "processing") >= 2, story
    same_rows(serial, res.rows)


def test_tracker_keeps_going_after_a_failure(monkeypatch):
    # the serial path: a FastinvError of one model does not stop the next one
    def fake(settings, ctx):
        if settings["key"] == "b":
            raise FastinvError("lr diverged")
        return {"settings": settings, "rows": [], "timing": {}}

    monkeypatch.setattr(sweep_pool, "run_model", fake)
    got, lines = [], []
    todo = [{"key": k} for k in "abc"]
    with pytest.raises(FastinvError, match=r"1 of 3 models failed \(b: lr diverged\)"):
        sweep_pool.run_models(todo, {}, pool=False, jobs=1, finished=got.append, log=lines.append)
    assert [r["settings"]["key"] for r in got] == ["a", "c"]
    assert "b failed: lr diverged" in lines
    assert lines[-1].startswith("models: 2 done, 0 running, 1 failed of 3; all ended in")


@pytest.mark.parametrize(
    "address, needle",
    [
        ("local:0", "local:N must be in 1..256"),
        ("local:x", "tcp://HOST:PORT"),
        ("http://host:8786", "tcp://HOST:PORT"),
        ("tcp://host", "tcp://HOST:PORT"),
        ("tcp://host:99999", "port must be in 1..65535"),
    ],
)
def test_malformed_address_is_one_line(address, needle, tmp_path):
    res = CliRunner().invoke(sweep, [*CLI, "--cluster", address, "--out", str(tmp_path / "x")])
    one_line_error(res, needle, repr(address))
    assert not (tmp_path / "x").exists()


def test_cluster_and_jobs_exclude_each_other(tmp_path):
    res = CliRunner().invoke(sweep, [*CLI, "--cluster", "local:2", "--jobs", "2"])
    one_line_error(res, "--jobs", "--cluster")


def test_unreachable_scheduler_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(sweep_cluster, "CONNECT_TIMEOUT", 1.0)
    res = CliRunner().invoke(
        sweep, [*CLI, "--cluster", "tcp://127.0.0.1:1", "--out", str(tmp_path / "x")]
    )
    one_line_error(res, "cannot reach a Dask scheduler at tcp://127.0.0.1:1 within 1 s")
    assert not (tmp_path / "x").exists()


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(FastinvError, match=r"pip install -e '\.\[cluster\]'"):
        sweep_cluster.run_on_cluster([{"key": "a"}], {}, "local:1", finished=print)
