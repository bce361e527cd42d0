"""Wall time of one small sweep on a Dask LocalCluster of 1 and of 2 worker processes, each
run once; the rows of the two runs must agree.

    python3 -m pytest bench/test_sweep_cluster.py -q -s

The times include starting the cluster and its workers (each worker imports torch and loads
the Numba kernels once), which is what a user of ``--cluster local:N`` waits for. Skipped
without Dask distributed.
"""

from __future__ import annotations

import os
import time

import pytest

from fastinv.workflows.sweep import run_sweep

pytest.importorskip("distributed")

# 4 models (2 widths x 2 seeds), 10 epochs, n = 32, 1000 training pairs
KW = dict(
    operator_params={"cond": 100},
    epochs=[2, 10],
    widths=[32, 64],
    depths=[1],
    samples=[1000],
    noise=[0.01],
    seeds=[0, 1],
    probes=300,
    test_samples=300,
    batch_size=100,
    lr=1e-3,
    n_boot=200,
)


def _timed(**extra) -> tuple[float, list]:
    t0 = time.perf_counter()
    res = run_sweep("random", 32, **KW, **extra)
    return time.perf_counter() - t0, res.rows


def test_sweep_on_1_and_2_local_workers():
    t1, rows1 = _timed(cluster="local:1")
    t2, rows2 = _timed(cluster="local:2")
    assert rows2 == rows1
    load = os.getloadavg()
    print(
        f"\ncores {os.cpu_count()}, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
        f"| run | wall time | vs local:1 |\n|---|---|---|\n"
        f"| --cluster local:1 | {t1:.1f} s | 1 |\n"
        f"| --cluster local:2 | {t2:.1f} s | {t2 / t1:.2f} (speed-up {t1 / t2:.2f}x) |"
    )
