"""Wall time of one `fastinv run` in one process and under `torchrun` with 2 processes (gloo
on the CPU, or NCCL with ``FASTINV_BENCH_DEVICE=cuda`` on a machine with 2 GPUs), each run
once; the two networks' test errors must agree.

    python3 -m pytest bench/test_torchrun.py -q -s

The times are what a user waits for: they include each process importing torch and building
the operator. On a 2-core machine the two processes share the cores that one process uses
with 2 threads, so no speed-up is expected there: the table says what the split costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEVICE = os.environ.get("FASTINV_BENCH_DEVICE", "cpu")
ARGS = (
    "--operator shaw --n 256 --samples 8000 --probes 1000 --test-samples 500 --epochs 20 "
    f"--width 256 --jacobian-probes 4 --device {DEVICE} --quiet"
).split()


def _timed(cmd: list[str], out: Path, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    return seconds


def test_one_process_against_torchrun_2(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    one = _timed([sys.executable, "-m", "fastinv", "run", *ARGS], tmp_path / "one", env)
    two = _timed(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "fastinv", "--", "run", *ARGS],
        tmp_path / "two",
        env,
    )  # fmt: skip
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    e1, e2 = m1["errors"]["network"], m2["errors"]["network"]
    # float32 Adam on two ranks follows the one-process steps to rounding, which the steps
    # amplify where the loss is flat: the networks' test errors agree, not their weights
    assert abs(e2 - e1) < 1e-3 * e1
    load = os.getloadavg()
    t1, t2 = m1["timings"], m2["timings"]
    print(
        f"\ncores {os.cpu_count()}, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
        f"device {DEVICE}; network test error {e1:.6f} (1 process), {e2:.6f} (2)\n"
        "| run | wall time | vs 1 process | train | surrogate (ranks) | audit (rank 0) |\n"
        "|---|---|---|---|---|---|\n"
        f"| fastinv run (1 process) | {one:.1f} s | 1 | {t1['train']:.1f} s | – "
        f"| {t1['audit']:.1f} s |\n"
        f"| torchrun --nproc_per_node 2 | {two:.1f} s | {two / one:.2f} | {t2['train']:.1f} s "
        f"| {t2.get('surrogate', 0):.1f} s | {t2['audit']:.1f} s |"
    )
