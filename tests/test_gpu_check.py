"""bench/gpu_check.py: the CPU smoke run and the refusal without CUDA."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"


def _run(*args, timeout=120):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=SCRIPT.parent.parent,
    )


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_cpu_quick_run(tmp_path):
    p = _run("--device", "cpu", "--n", "256", "--quick", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "RESULTS_GPU.md").exists()
    assert "# fastinv GPU check" in p.stdout

    fit = res["fit_linear"]
    assert fit["status"] == "ok", fit
    for key in ("fastinv", "bound_fp64", "bound_fp32", "peer_lstsq"):
        assert _finite(fit["steps"][key]["median_s"]), key
    assert fit["C_rel_diff"] < 1e-8
    assert _finite(fit["fit_over_bound"])

    rs = res["rsvd"]
    assert rs["status"] == "ok", rs
    assert len(rs["rows"]) == 6
    for row in rs["rows"]:
        assert _finite(row["t_s"]) and _finite(row["bound_s"])
        assert _finite(row["err"]) and _finite(row["err_peer"])
        assert row["err"] < 0.5

    assert res["environment"]["allow_tf32"] is False
    assert res["tests"]["status"] == "skipped"
    assert res["scaling"]["status"] == "ok", res["scaling"]
    assert res["train"]["metrics_json_exists"] is True


def test_cuda_without_gpu_exits_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    p = _run("--device", "cuda", "--out", str(tmp_path / "out"), timeout=60)
    assert p.returncode == 2
    out = (p.stdout + p.stderr).strip().splitlines()
    assert len(out) == 1 and out[0].startswith("error: no CUDA device")
    assert "Traceback" not in p.stdout + p.stderr
    assert not (tmp_path / "out").exists()
