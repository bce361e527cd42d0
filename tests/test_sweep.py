"""`fastinv sweep`: shape of the outputs, known sign of the correlation, resume, jobs, errors."""

import csv
import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from naive import naive_spearman

from fastinv.cli.sweep import sweep
from fastinv.errors import FastinvError
from fastinv.workflows.sweep import run_sweep

# 2 widths x 2 seeds = 4 models, 2 checkpoint epochs each; n = 16, tiny data
SMALL = (
    "--operator random --n 16 --param cond=10 --epochs 2,5 --widths 8,16 --depths 1 "
    "--samples 300 --noise 0.01 --seeds 0,1 --probes 200 --test-samples 200 --batch-size 50 "
    "--lr 0.01 --bootstrap 300 --quiet"
).split()
REQUIRED = (
    "key",
    "model",
    "width",
    "depth",
    "samples",
    "noise",
    "seed",
    "epoch",
    "err_net",
    "err_C",
    "r2",
    "dist_inv_2",
    "dist_inv_fro",
    "dist_lmmse_2",
    "dist_lmmse_fro",
    "phi_count_ge_0.9",
    "phi_first_le_0.1",
    "offdiag_share",
    "phi_rms_to_lmmse",
    "angle_max_deg_k1",
    "ood_prior_err_net",
    "ood_prior_r2",
    "ood_prior_dist_inv_2",
    "ood_prior_dist_lmmse_2",
    "ood_noise_level",
    "ood_noise_err_net",
    "ood_noise_r2",
    "ood_noise_dist_inv_2",
    "resid_CA_I_2",
    "resid_CA_I_fro",
    "ood_prior_resid_CA_I_fro",
)


def invoke(args):
    return CliRunner().invoke(sweep, args, catch_exceptions=False)


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for s in needles:
        assert s in lines[0], lines[0]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "small"
    res = invoke([*SMALL, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res


def _rows(out):
    return json.loads((out / "sweep.json").read_text())["rows"]


def test_sweep_json_shape(small):
    out, res = small
    d = json.loads((out / "sweep.json").read_text())
    rows = d["rows"]
    assert len(rows) == 4 * 2 and d["n_models"] == 4
    assert sorted({(r["width"], r["seed"]) for r in rows}) == [(8, 0), (8, 1), (16, 0), (16, 1)]
    assert sorted({r["epoch"] for r in rows}) == [2, 5]
    for r in rows:
        for k in REQUIRED:
            assert k in r, k
            v = r[k]
            if isinstance(v, float):
                assert math.isfinite(v), (k, v)
            else:
                assert v is not None, k
        assert r["ood_noise_level"] == pytest.approx(0.02)
    # the filter-factor counts of each row, by plain loops over filter_factors.npz
    phis = np.load(out / "filter_factors.npz")["phi"]
    assert phis.shape[0] == len(rows)
    for r, phi in zip(rows, phis, strict=True):
        assert r["phi_count_ge_0.9"] == sum(1 for p in phi if p >= 0.9)
        first = next((i for i, p in enumerate(phi) if p <= 0.1), len(phi))
        assert r["phi_first_le_0.1"] == first
    # every printed ρ, recomputed from the rows (no ties in these columns)
    for c in d["correlations"]:
        x = [r[c["x"]] for r in rows]
        y = [r[c["y"]] for r in rows]
        assert len(set(x)) == len(x) and len(set(y)) == len(y), c["y"]
        assert c["rho"] == pytest.approx(naive_spearman(x, y), abs=1e-12), c["y"]
    names = {(c["x"], c["y"]) for c in d["correlations"]}
    assert ("err_net", "dist_inv_2") in names and ("err_net", "dist_lmmse_2") in names
    for c in d["correlations"]:
        assert c["ci_low"] <= c["rho"] + 1e-12 and c["rho"] <= c["ci_high"] + 1e-12
        assert (c["n"], c["n_groups"]) == (8, 4)  # the interval resamples the 4 runs
    text = " ".join(d["summary"])
    assert "resample whole runs" in text
    assert "does not show that spectral agreement causes accuracy" in text
    assert "LMMSE" in text and "Out of distribution" in text
    assert "ρ = " in text  # numbers, not canned
    assert set(d["references"]["noise_levels"]) == {"0.01"}
    assert d["config"]["widths"] == [8, 16] and d["config"]["operator"] == "random"
    assert "summary.md" in res.output and "ρ(err_net, dist_inv_2)" in res.output


def test_sweep_csv_plots_and_files(small):
    out, _ = small
    with open(out / "sweep.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 8
    for k in REQUIRED:
        assert k in table[0], k
    assert float(table[0]["err_net"]) == _rows(out)[0]["err_net"]
    for name in ("scatter_error_distance.png", "filter_factors_best_worst.png", "ood_error.png"):
        p = out / name
        assert p.is_file() and p.read_bytes()[:4] == b"\x89PNG", name
    md = (out / "summary.md").read_text()
    assert "Spearman" in md and "scatter_error_distance.png" in md
    assert len(list((out / "models").glob("*.json"))) == 4
    cfg = json.loads((out / "sweep_config.json").read_text())
    assert cfg["epochs"] == [2, 5] and cfg["n"] == 16
    ff = np.load(out / "filter_factors.npz")
    assert ff["phi"].shape == (8, 16)
    assert not list(out.rglob(".*.tmp")), "temporary files left behind"


def test_known_sign_noise_free_linear_models():
    # linear models trained for more and more epochs on a noise-free, well-conditioned problem:
    # error and distance to A⁻¹ both shrink with training, so they must rank together
    res = run_sweep(
        "random",
        16,
        operator_params={"cond": 10},
        model="linear",
        epochs=[1, 3, 10, 30],
        widths=[16],
        depths=[1],
        samples=[300],
        noise=[0.0],
        seeds=[0, 1],
        lr=1e-2,
        batch_size=50,
        probes=200,
        test_samples=200,
        n_boot=300,
    )
    assert len(res.rows) == 8
    c = {(c.x, c.y): c for c in res.correlations}
    assert c[("err_net", "dist_inv_2")].rho > 0
    assert c[("err_net", "dist_inv_fro")].rho > 0
    # noise-free, invertible A: the LMMSE is A⁻¹, so the two distances coincide
    for r in res.rows:
        assert r["dist_lmmse_2"] == pytest.approx(r["dist_inv_2"], rel=1e-10)
        assert r["r2"] == pytest.approx(1.0, abs=1e-8)  # a linear model is exactly linear
    assert any("coincide" in s for s in res.summary)
    assert all(r["ood_noise_level"] == 0.01 for r in res.rows)
    assert res.to_dict()["n_rows"] == 8


def test_resume_recomputes_only_the_missing_model(small, tmp_path, monkeypatch):
    src, _ = small
    out = tmp_path / "resumed"
    shutil.copytree(src, out)
    files = sorted((out / "models").glob("*.json"))
    gone = files[1]
    gone.unlink()
    mtimes = {p.name: p.stat().st_mtime_ns for p in files if p != gone}

    import fastinv.nets.training as training

    calls = []
    real = training.train

    def counting(*a, **k):
        calls.append(k.get("width"))
        return real(*a, **k)

    monkeypatch.setattr(training, "train", counting)
    res = invoke([*SMALL, "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    assert len(calls) == 1
    assert gone.is_file()
    for p in files:
        if p != gone:
            assert p.stat().st_mtime_ns == mtimes[p.name], p.name
    assert _rows(out) == _rows(src)


SMALL_KW = dict(
    operator_params={"cond": 10},
    epochs=[2, 5],
    widths=[8, 16],
    depths=[1],
    samples=[300],
    noise=[0.01],
    seeds=[0, 1],
    probes=200,
    test_samples=200,
    batch_size=50,
    lr=0.01,
    n_boot=300,
)


@pytest.mark.slow
def test_jobs_two_gives_the_same_rows(small):
    # two spawned worker processes (1 thread each) against the in-process run of the fixture
    src, _ = small
    res = run_sweep("random", 16, jobs=2, **SMALL_KW)
    a, b = _rows(src), res.rows
    assert [r["key"] for r in a] == [r["key"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k, v in ra.items():
            if isinstance(v, float):
                assert rb[k] == pytest.approx(v, rel=1e-10, abs=1e-12), k
            else:
                assert rb[k] == v, k


def test_existing_out_folder_needs_resume_or_force(small):
    out, _ = small
    one_line_error(invoke([*SMALL, "--out", str(out)]), "--resume", "--force")


def test_resume_with_other_operator_fails(small, tmp_path):
    src, _ = small
    out = tmp_path / "other"
    shutil.copytree(src, out)
    args = [a if a != "random" else "shaw" for a in SMALL]
    args = [a for a in args if a not in ("--param", "cond=10")]
    one_line_error(invoke([*args, "--out", str(out), "--resume"]), "operator")
    # a changed epochs list no longer matches the stored model files
    args = [a if a != "2,5" else "2,6" for a in SMALL]
    one_line_error(invoke([*args, "--out", str(out), "--resume"]), "--resume")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--epochs", ""], "--epochs is empty"),
        (["--widths", "8,x"], "--widths takes integers"),
        (["--epochs", "0,2"], "--epochs"),
        (["--jobs", "0"], "--jobs"),
        (["--seeds", "1.5"], "--seeds takes integers"),
        (["--noise", "-0.1"], "--noise"),
        (["--ood-prior", "smooth"], "must differ"),
    ],
)
def test_bad_input_is_one_line(extra, needle, tmp_path):
    one_line_error(invoke([*SMALL, *extra, "--out", str(tmp_path / "bad")]), needle)


def test_library_rejects_bad_axes():
    kw = dict(widths=[8], depths=[1], samples=[100], noise=[0.0], seeds=[0])
    with pytest.raises(FastinvError, match="epochs is empty"):
        run_sweep("random", 8, epochs=[], **kw)
    with pytest.raises(FastinvError, match="jobs"):
        run_sweep("random", 8, epochs=[1], jobs=0, **kw)
    with pytest.raises(FastinvError, match="integers"):
        run_sweep("random", 8, epochs=[1.5], **kw)


def test_degenerate_distance_is_not_correlated(rng):
    # ‖C − A⁻¹‖₂/‖A⁻¹‖₂ = 1 to rounding for every model (an ill-conditioned A): no ρ on it
    from fastinv.workflows.sweep_summary import degenerate_columns, make_summary, rank_correlations

    m = 12
    err = rng.uniform(0.2, 0.8, m)
    rows = [
        {
            "key": f"m{i}",
            "samples": 100,
            "err_net": float(err[i]),
            "dist_inv_2": 1.0 + 1e-14 * float(rng.standard_normal()),
            "dist_lmmse_2": float(err[i] + 0.01 * rng.standard_normal()),
            "resid_CA_I_fro": float(0.5 * err[i] + 0.3),
            "r2": 0.99,
        }
        for i in range(m)
    ]
    assert set(degenerate_columns(rows)) == {"dist_inv_2"}
    corr = rank_correlations(rows, [100], n_boot=200)
    names = {c.y for c in corr}
    assert "dist_inv_2" not in names and {"dist_lmmse_2", "resid_CA_I_fro"} <= names
    cfg = {"epochs": [1], "noise": [0.01], "ood_prior": "piecewise_constant", "ood_noise": None}
    text = " ".join(make_summary(rows, corr, {"noise_levels": {}}, cfg))
    assert "cannot rank the models" in text
    assert (
        "smaller ‖CA − I‖_F/√n" in text
        and "smaller relative 2-norm distance of C to the LMMSE" in text
    )
