"""fastinv.workflows.bench / `fastinv bench` at tiny sizes: the table, the plot, the JSON and the
exponent fit. No assertion is made on any time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fastinv.cli.bench import bench
from fastinv.errors import FastinvError
from fastinv.workflows.bench import (
    EXPECTED_EXPONENT,
    EXPECTED_MEMORY_EXPONENT,
    IMAGE_STAGES,
    STAGES,
    ScalingResult,
    fit_exponent,
    image_bench_bytes,
    machine_info,
    scaling,
    tikhonov_filter_model,
)
from fastinv.workflows.memory import topk_probes

TINY = dict(repeats=2, samples_per_n=2, k=4, n_iter=1, fit_points=2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    res = scaling((16, 24, 32), ("generate", "fit_linear", "rsvd", "svd_full"), out=out, **TINY)
    return res, out


# ------------------------------------------------------------------------------ exponent fit
def test_fit_exponent_recovers_a_power_law():
    ns = [64, 128, 256, 512, 1024]
    t = [3e-9 * n**2.5 for n in ns]
    fit = fit_exponent(ns, t, points=3)
    assert fit["p"] == pytest.approx(2.5, abs=1e-12)
    assert fit["c"] == pytest.approx(3e-9, rel=1e-9)
    assert fit["ns"] == [256, 512, 1024]
    assert fit["r2"] == pytest.approx(1.0)


def test_fit_exponent_uses_the_largest_sizes_and_skips_missing():
    ns = [10, 20, 40, 80]
    # the small sizes follow another law: only the largest (with a time) count
    t = [1.0, 1.0, 0.5 * 40**3, 0.5 * 80**3]
    fit = fit_exponent(ns, t, points=2)
    assert fit["p"] == pytest.approx(3.0)
    assert fit["ns"] == [40, 80]
    fit = fit_exponent(ns, [None, 2.0, float("nan"), 8.0], points=3)
    assert fit["ns"] == [20, 80]
    assert fit["p"] == pytest.approx(1.0)


def test_fit_exponent_least_squares_with_noise():
    ns = np.array([100, 200, 400, 800])
    t = 2e-6 * ns**2.0 * np.array([1.1, 0.9, 1.05, 0.97])
    fit = fit_exponent(ns, t, points=4)
    G = np.stack([np.ones(4), np.log(ns)], 1)
    ref = np.linalg.lstsq(G, np.log(t), rcond=None)[0]
    assert fit["p"] == pytest.approx(ref[1], rel=1e-12)
    assert 0.9 < fit["r2"] < 1.0


def test_fit_exponent_too_few_points():
    assert fit_exponent([10], [1.0]) is None
    assert fit_exponent([10, 20], [1.0, None]) is None
    with pytest.raises(FastinvError, match="at least 2"):
        fit_exponent([10, 20], [1.0, 2.0], points=1)


# ------------------------------------------------------------------------------ scaling()
def test_scaling_result_shapes(tiny_run):
    res, _ = tiny_run
    assert isinstance(res, ScalingResult)
    assert res.ns == [16, 24, 32]
    assert res.samples == [32, 48, 64]
    assert res.device == "cpu"
    for s in ("generate", "fit_linear", "rsvd", "svd_full"):
        assert len(res.times[s]) == 3
        assert all(len(r) == 2 for r in res.times[s])
        assert all(t > 0 for r in res.times[s] for t in r)
        assert res.medians[s] == [float(np.median(r)) for r in res.times[s]]
        fit = res.exponents[s]
        assert fit["ns"] == [24, 32]
        ref = np.log(res.medians[s][2] / res.medians[s][1]) / np.log(32 / 24)
        assert fit["p"] == pytest.approx(ref, rel=1e-9)


def test_scaling_writes_table_plot_json(tiny_run):
    res, out = tiny_run
    md = (out / "bench.md").read_text()
    assert "| n | N | generate (s) | fit_linear (s) | rsvd (s) | svd_full (s) |" in md
    for n, N in ((16, 32), (24, 48), (32, 64)):
        assert f"| {n} | {N} |" in md
    assert "**p** fitted" in md and "p expected" in md
    assert "Machine:" in md
    # the fitted exponents in the table are the ones in the result
    for s in res.stages:
        assert f"**{res.exponents[s]['p']:.2f}**" in md
    png = (out / "scaling.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "scaling.json").read_text())
    assert data["ns"] == [16, 24, 32]
    assert data["times_s"]["rsvd"] == res.times["rsvd"]
    assert data["exponents"]["svd_full"]["p"] == pytest.approx(res.exponents["svd_full"]["p"])
    assert data["expected_exponents"] == {s: EXPECTED_EXPONENT[s] for s in res.stages}
    assert data["machine"]["versions"]["numpy"] == np.__version__
    # atomic writes leave no temporaries behind
    assert sorted(p.name for p in out.iterdir()) == [
        "bench.md",
        "manifest.json",
        "scaling.json",
        "scaling.png",
    ]
    assert json.loads(json.dumps(res.to_dict())) == data


def test_scaling_audit_stage_and_no_output():
    res = scaling([16, 24], ["audit"], repeats=1, samples_per_n=4, fit_points=2, warmup=False)
    assert res.files == {}
    assert len(res.times["audit"]) == 2
    assert res.exponents["audit"]["ns"] == [16, 24]


def test_scaling_single_size_has_no_exponent(tmp_path):
    res = scaling([16], ["rsvd"], repeats=1, out=tmp_path, plot=False, k=2, warmup=False)
    assert res.exponents["rsvd"] is None
    assert "| **p** fitted |  | — |" in res.to_markdown()
    assert not (tmp_path / "scaling.png").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stages=["nope"]), "unknown stage"),
        (dict(stages=[]), "unknown stage"),
        (dict(ns=[4]), "at least 8"),
        (dict(ns=[]), "at least 8"),
        (dict(repeats=0), "repeats"),
        (dict(fit_points=1), "fit_points"),
        (dict(device="tpu"), "device"),
    ],
)
def test_scaling_bad_input(kwargs, match):
    args = dict(ns=[16], stages=["rsvd"], repeats=1)
    args.update(kwargs)
    with pytest.raises(FastinvError, match=match):
        scaling(args.pop("ns"), args.pop("stages"), **args)


def test_cuda_device(device):
    res = scaling([16, 24], ["fit_linear", "rsvd", "svd_full"], device=device, **TINY)
    assert res.device == device
    assert all(len(res.times[s]) == 2 for s in res.stages)


def test_cuda_without_gpu_is_refused_cleanly():
    from fastinv._device import cuda_available

    if cuda_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(FastinvError, match="no CUDA device"):
        scaling([16], ["rsvd"], device="cuda")
    res = CliRunner().invoke(bench, ["--device", "cuda", "--ns", "16"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: --device cuda was asked for but no CUDA device is available; "
        "use --device cpu or auto"
    ]


def test_machine_info_is_json():
    info = machine_info()
    json.dumps(info)
    assert info["cores"] >= 1
    assert set(info["versions"]) >= {"numpy", "scipy", "torch", "numba"}


def test_all_stages_have_an_expected_exponent():
    assert set(EXPECTED_EXPONENT) == set(STAGES)
    assert set(EXPECTED_MEMORY_EXPONENT) == set(STAGES)


def test_dense_stages_report_their_memory(tiny_run):
    res, out = tiny_run
    # generate allocates its (N, n) X and Y during the call: the traced peak holds them
    for i, n in enumerate(res.ns):
        assert min(res.traced["generate"][i]) >= 2 * 8 * res.samples[i] * n
        assert all(r > 2**20 for r in res.rss["generate"][i])  # an interpreter's RSS at least
    data = json.loads((out / "scaling.json").read_text())
    assert data["peak_traced_bytes"]["fit_linear"] == res.peak("traced", "fit_linear")
    assert "## Peak memory" in (out / "bench.md").read_text()


# ------------------------------------------------------------------------------ large-n stages
IMAGE_NS = (16, 64)
IMAGE_RANK = 16


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_images")
    res = scaling(IMAGE_NS, IMAGE_STAGES, out=out, repeats=1, rank=IMAGE_RANK, fit_points=2,
                  warmup=False, plot=False)  # fmt: skip
    return res, out


def test_image_stages_run_and_measure_memory(image_run):
    res, _ = image_run
    N = topk_probes(IMAGE_RANK)
    for i, n in enumerate(IMAGE_NS):
        for s in IMAGE_STAGES:
            assert len(res.times[s][i]) == 1 and res.times[s][i][0] > 0
            assert res.rss[s][i][0] > 2**20
        # lower bounds in closed form: what each call must allocate
        assert res.traced["blur_generate"][i][0] >= 2 * 8 * N * n  # X and Y
        assert res.traced["blur_topk"][i][0] >= 2 * 8 * n * IMAGE_RANK  # U_k and V_kᵀ
        assert res.traced["topk_audit"][i][0] >= 8 * N * IMAGE_RANK  # projected probes
        # and the planned memory covers what the audit allocated
        assert res.traced["topk_audit"][i][0] <= image_bench_bytes(n, rank=IMAGE_RANK)
    for s in IMAGE_STAGES:
        t = res.peak("traced", s)
        ref = np.log(t[1] / t[0]) / np.log(IMAGE_NS[1] / IMAGE_NS[0])
        assert res.memory_exponents[s]["p"] == pytest.approx(ref, rel=1e-9)
        assert res.stage_devices[s] == "cpu"


def test_image_stages_land_in_the_files(image_run):
    res, out = image_run
    md = (out / "bench.md").read_text()
    N = topk_probes(IMAGE_RANK)
    head = "| n | N | blur_generate (s) | blur_topk (s) | topk_audit (s) | topk_audit_cnn (s) |"
    assert head in md
    assert f"| 64 | {N} |" in md
    t, r = res.peak("traced", "topk_audit")[1], res.peak("rss", "topk_audit")[1]
    row = next(line for line in md.splitlines() if line.startswith("| 64 |") and "/" in line)

    def mib(b):  # whole MiB from 10 MiB up, else two decimals
        return f"{b / 2**20:.0f}" if b >= 10 * 2**20 else f"{b / 2**20:.2f}"

    assert row.split("|")[4].strip() == f"{mib(t)} / {mib(r)}"
    assert f"**{res.memory_exponents['blur_generate']['p']:.2f}**" in md
    data = json.loads((out / "scaling.json").read_text())
    assert data["traced_bytes"]["blur_topk"] == res.traced["blur_topk"]
    assert data["rss_bytes"]["topk_audit_cnn"] == res.rss["topk_audit_cnn"]
    assert data["config"]["rank"] == IMAGE_RANK and data["config"]["image_probes"] == N
    assert data["expected_memory_exponents"]["topk_audit"] == 1.0


def test_tikhonov_filter_model_is_the_dense_tikhonov_inverse():
    import fastinv

    n, lam = 64, 1e-2
    op = fastinv.make_operator("blur2d", n=n, sigma=2.0, boundary="periodic")
    A = op.to_dense()
    Y = np.random.default_rng(3).standard_normal((5, n))
    ref = np.linalg.solve(A.T @ A + lam * np.eye(n), A.T @ Y.T).T
    np.testing.assert_allclose(tikhonov_filter_model(op, lam)(Y), ref, rtol=1e-10, atol=1e-12)


def test_tikhonov_filter_model_needs_a_spectral_basis():
    import fastinv

    op = fastinv.make_operator("blur2d", n=64, psf="disk", boundary="zero")
    with pytest.raises(FastinvError, match="spectral basis"):
        tikhonov_filter_model(op)


@pytest.mark.parametrize(
    "ns, stages, kwargs, match",
    [
        ([64, 1000], ["topk_audit"], {}, r"perfect squares .*got \[1000\]; use e.g. 961"),
        ([2**30], ["blur_topk"], {}, "memory is available; lower --max-n"),
        ([64], ["blur_topk"], dict(rank=0), "rank"),
    ],
)
def test_image_stages_bad_input(ns, stages, kwargs, match):
    with pytest.raises(FastinvError, match=match):
        scaling(ns, stages, repeats=1, **kwargs)


def test_cli_image_stage_non_square_is_one_line(tmp_path):
    args = ["--ns", "1000", "--max-n", "2000", "--stages", "blur_topk", "--rank", "8"]
    res = CliRunner().invoke(bench, [*args, "--out", str(tmp_path / "x"), "--quiet"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: sizes n of the stages blur_topk must be perfect squares (H x H images), got "
        "[1000]; use e.g. 961"
    ]


def test_cli_image_stage(tmp_path):
    out = tmp_path / "b"
    args = ["--ns", "64,100", "--stages", "blur_topk", "--rank", "8", "--repeats", "1"]
    res = CliRunner().invoke(bench, [*args, "--out", str(out), "--quiet", "--no-plot"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "scaling.json").read_text())
    assert data["config"]["rank"] == 8 and data["ns"] == [64, 100]
    assert len(data["peak_traced_bytes"]["blur_topk"]) == 2


# ------------------------------------------------------------------------------ CLI
def test_cli_bench(tmp_path):
    out = tmp_path / "b"
    args = ["--ns", "16,24,4096", "--max-n", "32", "--repeats", "1", "--k", "4"]
    args += ["--n-iter", "1", "--samples-per-n", "2", "--stages", "rsvd,svd_full"]
    res = CliRunner().invoke(bench, [*args, "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "| 16 | 32 |" in res.output and "| 24 | 48 |" in res.output
    assert "4096" not in res.output.split("fastinv bench finished")[0]
    assert (out / "bench.md").exists() and (out / "scaling.png").exists()
    data = json.loads((out / "scaling.json").read_text())
    assert data["ns"] == [16, 24] and data["stages"] == ["rsvd", "svd_full"]


@pytest.mark.parametrize(
    "args, match",
    [
        (["--stages", "bogus"], "unknown stage"),
        (["--ns", "a,b"], "comma-separated integers"),
        (["--ns", "8192", "--max-n", "64"], "raise --max-n"),
    ],
)
def test_cli_bench_bad_input_is_one_line(args, match, tmp_path):
    res = CliRunner().invoke(bench, [*args, "--out", str(tmp_path / "x"), "--quiet"])
    assert res.exit_code == 2
    assert match in res.output
    assert "Traceback" not in res.output
