"""Bad input (issue 11, items 2, 3 and 7): memory planned from the arguments before anything is
built, and every bad value one ``error:`` line with exit code 2 (CLI) or a FastinvError
(library), never a traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import fastinv
import fastinv.io
from fastinv.cli.main import main
from fastinv.errors import FastinvError
from fastinv.workflows.run import RunConfig, memory_needed

GiB = 2**30

TINY = ["--samples", "200", "--test-samples", "100", "--probes", "100", "--epochs", "1"]
TINY += ["--batch-size", "64", "--jacobian-probes", "2", "-q"]


def invoke(args):
    return CliRunner().invoke(main, args, prog_name="fastinv")


def assert_one_error(res, *needles):
    """Exit 2, exactly one non-empty line on stderr, starting 'error: ', no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in res.output
    for s in needles:
        assert s in lines[0], (s, lines[0])
    return lines[0]


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test should an operator or data be built (the memory plan must come first)."""
    import fastinv.problem.data
    import fastinv.problem.operators

    def forbidden(*a, **k):
        raise AssertionError("built before the memory check")

    monkeypatch.setattr(fastinv.problem.operators, "make_operator", forbidden)
    monkeypatch.setattr(fastinv.problem.operators, "load_operator", forbidden)
    monkeypatch.setattr(fastinv.problem.data, "generate", forbidden)
    monkeypatch.setattr(fastinv.io, "available_memory", lambda: 16 * GiB)


def npy_header_only(path, shape):
    """A .npy file that declares ``shape`` but holds no data: only its header can be read."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": shape}
        )
    return path


# --------------------------------------------------------------------------------------------
# item 2: memory from the arguments alone


@pytest.mark.parametrize("n", ["100000", "32768"])
def test_run_memory_refused_before_anything_is_built(n, nothing_built, tmp_path):
    out = tmp_path / "x"
    line = assert_one_error(invoke(["run", "--n", n, "--out", str(out), "-q"]), "GiB", "--n")
    need = memory_needed(RunConfig(n=int(n)), int(n))
    assert f"{need / GiB:.1f} GiB" in line and "16.0 GiB" in line
    assert not out.exists()


def test_run_memory_from_a_matrix_file_header(nothing_built, tmp_path):
    """n comes from the .npy header: A (50000 x 50000, 20 GB) is never read."""
    from fastinv.workflows import memory

    path = npy_header_only(tmp_path / "A.npy", (50000, 50000))
    assert memory.matrix_file_shape(path) == (50000, 50000)
    res = invoke(["run", "--operator", str(path), "--out", str(tmp_path / "x"), "-q"])
    assert_one_error(res, "n = 50000", "GiB")


def test_analyze_memory_refused_before_anything_is_built(nothing_built, tmp_path):
    args = ["analyze", "--operator", "shaw", "--n", "32768", "--model", "m.pt"]
    assert_one_error(invoke([*args, "--out", str(tmp_path / "x")]), "n = 32768", "GiB")


def test_sweep_memory_refused_before_anything_is_built(nothing_built, tmp_path):
    res = invoke(["sweep", "--n", "32768", "--out", str(tmp_path / "x"), "-q"])
    assert_one_error(res, "n = 32768", "GiB")


def test_bench_memory_refused_before_anything_is_built(nothing_built, tmp_path, monkeypatch):
    import fastinv.workflows.bench as bench

    monkeypatch.setattr(bench, "_Problem", None)  # building a size's data would fail
    res = invoke(["bench", "--ns", "100000", "--max-n", "100000", "--out", str(tmp_path / "x")])
    assert_one_error(res, "n = 100000", "GiB")


def test_estimates_in_closed_form(monkeypatch):
    """The estimates are the documented sums, and each check refuses exactly above 80 %."""
    from fastinv.workflows import memory

    assert (
        memory.experiment_bytes(100, rows=10, n_jacobian=2)
        == 8 * 100 * 2 * 10 + 8 * 100**2 * 34 + 2**29
    )
    need = memory.bench_bytes(1000, samples_per_n=4, audit=False)
    assert need == 8 * 1000 * 2 * 4000 * 2 + 8 * 1000**2 * 8 + 2**29
    opts = {
        "axes": {
            "widths": [8, 16],
            "depths": [1],
            "samples": [50, 80],
            "noise": [0.0, 0.1],
            "seeds": [0],
        },  # fmt: skip
        "probes": 40,
        "test_samples": 30,
        "jobs": 3,
        "device": "cpu",
    }
    ctx = 8 * 64 * 64 * (8 + 6) + 8 * 64 * 2 * 70 * 6
    want = ctx + 2**29 + 3 * (ctx + 8 * 64 * 2 * 80 * 2 + 8 * 64 * 64 * 16 + 2**29)
    assert memory.sweep_bytes(64, noise_levels=2, probes=40, test=30, samples=80, workers=3) == want
    monkeypatch.setattr(fastinv.io, "available_memory", lambda: int(want / 0.8) + 1)
    memory.check_sweep_memory("shaw", 64, None, opts)  # fits
    monkeypatch.setattr(fastinv.io, "available_memory", lambda: int(want / 0.8) - 1)
    with pytest.raises(FastinvError, match="sweep at n = 64"):
        memory.check_sweep_memory("shaw", 64, None, opts)
    with pytest.raises(FastinvError, match="n = 100000"):
        memory.check_bench_memory([256, 100000], ["generate"], 4)


def test_matrix_file_shapes(tmp_path):
    from fastinv.workflows import memory

    A = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "a.npy", A)
    np.savez(tmp_path / "b.npz", first=A, second=A[:2])
    np.savetxt(tmp_path / "c.csv", A, delimiter=",")
    import scipy.io

    scipy.io.savemat(tmp_path / "d.mat", {"M": A})
    assert memory.matrix_file_shape(tmp_path / "a.npy") == (3, 4)
    assert memory.matrix_file_shape(tmp_path / "b.npz", "second") == (2, 4)
    assert memory.matrix_file_shape(tmp_path / "b.npz") is None  # two arrays, no key
    assert memory.matrix_file_shape(tmp_path / "c.csv") == (3, 3)  # lines: a bound of n
    assert memory.matrix_file_shape(tmp_path / "d.mat") == (3, 4)
    assert memory.operator_size(str(tmp_path / "a.npy")) == 4
    assert memory.operator_size("shaw", 64) == 64 and memory.operator_size("shaw") is None


def test_library_audit_refuses_without_memory(monkeypatch):
    op = fastinv.make_operator("shaw", 16)
    Y = np.random.default_rng(0).standard_normal((40, 16))
    calls = []
    monkeypatch.setattr(fastinv.io, "available_memory", lambda: 1000)
    with pytest.raises(FastinvError, match="auditing at n = 16 on k = 5 directions .top-k. needs"):
        fastinv.audit(lambda y: calls.append(y) or y, op, probes=Y, test=(Y, None))
    assert calls == []  # refused before the model ran


# --------------------------------------------------------------------------------------------
# item 3: --config with wrong types; analyze with one probe


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"samples": "200"}, "samples must be"),
        ({"operator_params": "x"}, "operator_params must be"),
        ({"lr": "fast"}, "lr must be"),
        ({"n": 2.5}, "n must be"),
        (None, "JSON object"),  # the file holds a list
    ],
)
def test_config_with_wrong_types(change, needle, tmp_path):
    cfg = RunConfig().to_dict()
    path = tmp_path / "config.json"
    path.write_text(json.dumps([cfg] if change is None else {**cfg, **change}))
    assert_one_error(invoke(["run", "--config", str(path), "--out", str(tmp_path / "x")]), needle)


def test_config_accepts_integral_floats():
    assert RunConfig.from_dict({"samples": 4000.0, "n": 32.0}).samples == 4000


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    """A state_dict of torch.nn.Linear(16, 16) and the options that load it."""
    import torch

    d = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(16, 16).state_dict(), d / "lin.pt")
    kwargs = '{"in_features": 16, "out_features": 16}'
    return ["--model", str(d / "lin.pt"), "--arch", "torch.nn:Linear", "--arch-kwargs", kwargs]


def analyze_args(linear_model, tmp_path, *more):
    return ["analyze", "--operator", "shaw", "--n", "16", *linear_model, "-q",
            "--jacobian-probes", "2", "--out", str(tmp_path / "x"), *more]  # fmt: skip


@pytest.mark.parametrize(
    "more, needle",
    [
        (["--samples", "1"], "samples must be an integer >= 2, got 1"),
        (["--samples", "0"], "samples must be an integer >= 2, got 0"),
        (["--jacobian-probes", "-3"], "--jacobian-probes) must be an integer >= 0, got -3"),
    ],
)
def test_analyze_bad_counts(more, needle, linear_model, tmp_path):
    assert_one_error(invoke(analyze_args(linear_model, tmp_path, *more)), needle)


def test_analyze_one_probe_row(linear_model, tmp_path):
    np.save(tmp_path / "p.npy", np.ones((1, 16)))
    args = analyze_args(linear_model, tmp_path, "--probes", str(tmp_path / "p.npy"))
    assert_one_error(invoke(args), "probes must have at least 2 rows")


# --------------------------------------------------------------------------------------------
# item 7: smaller ones


def test_zero_operator_refused_before_training(tmp_path, monkeypatch):
    import fastinv.nets.training

    def forbidden(*a, **k):
        raise AssertionError("trained on an all-zero A")

    monkeypatch.setattr(fastinv.nets.training, "train", forbidden)
    np.save(tmp_path / "zero.npy", np.zeros((16, 16)))
    res = invoke(
        ["run", "--operator", str(tmp_path / "zero.npy"), *TINY, "--out", str(tmp_path / "x")]
    )
    assert_one_error(res, "all zeros")
    with pytest.raises(FastinvError, match="all zeros"):
        Y = np.ones((10, 4))
        fastinv.audit(lambda y: y, np.zeros((4, 4)), probes=Y, test=(Y, None))


def test_overflowing_operator_is_named(tmp_path):
    A = fastinv.make_operator("shaw", 16).A * 1e300
    np.save(tmp_path / "huge.npy", A)
    res = invoke(
        ["run", "--operator", str(tmp_path / "huge.npy"), *TINY, "--out", str(tmp_path / "x")]
    )
    line = assert_one_error(res, "overflows float64", "rescale A")
    assert f"{np.abs(A).max():.3g}" in line
    with pytest.raises(FastinvError, match="overflows float32"):
        fastinv.generate(A * 1e-260, n_samples=3, dtype=np.float32)
    X, Y = fastinv.generate(A * 1e-300, n_samples=3)  # finite: accepted
    assert np.isfinite(Y).all()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "--n", "2.5"], "'--n': '2.5' is not a valid integer; see `fastinv run --help`"),
        (["run", "--device", "cuda:7"], "'--device': 'cuda:7' is not one of"),
        (["frobnicate"], "No such command 'frobnicate'; see `fastinv --help`"),
        (["sweep", "--bogus"], "No such option '--bogus'"),
        (["analyze"], "Missing option '--operator'"),
    ],
)
def test_usage_errors_are_one_line(args, needle):
    assert_one_error(invoke(args), needle)


def test_usage_error_from_the_entry_point():
    """A real process: exit 2 and one line on stderr, no click usage block."""
    proc = subprocess.run(
        [sys.executable, "-c", "from fastinv.cli.main import main; main()", "run", "--n", "2.5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: Invalid value for '--n': '2.5' is not a valid integer; see `-c run --help`"
    ], proc.stderr


def test_help_still_shows_usage():
    res = invoke(["run", "--help"])
    assert res.exit_code == 0 and "Usage: " in res.output


def test_config_stores_an_absolute_operator_path(tmp_path, monkeypatch):
    """A run made with a relative matrix path reruns with --config from another folder."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "a" / "A.npy", fastinv.make_operator("shaw", 16).A)
    monkeypatch.chdir(tmp_path / "a")
    res = invoke(["run", "--operator", "A.npy", *TINY, "--out", "run1"])
    assert res.exit_code == 0, res.output
    stored = json.loads((tmp_path / "a" / "run1" / "config.json").read_text())["operator"]
    assert stored == str((tmp_path / "a" / "A.npy").resolve())
    monkeypatch.chdir(tmp_path / "b")
    res = invoke(["run", "--config", str(tmp_path / "a" / "run1" / "config.json"), "-q",
                  "--out", "run2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    m1 = json.loads((tmp_path / "a" / "run1" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "b" / "run2" / "metrics.json").read_text())
    assert m1["errors"] == m2["errors"]


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "int64", int])
def test_generate_refuses_non_float_dtypes(dtype):
    with pytest.raises(FastinvError, match="dtype must be float32 or float64"):
        fastinv.generate(np.eye(4), n_samples=3, dtype=dtype)


def test_generate_float_dtypes_kept():
    X64, Y64 = fastinv.generate(np.eye(4) * 2, n_samples=3, dtype="float64")
    X32, Y32 = fastinv.generate(np.eye(4) * 2, n_samples=3, dtype="float32")
    assert X32.dtype == np.float32 and Y64.dtype == np.float64
    np.testing.assert_array_equal(Y32, Y64.astype(np.float32))


@pytest.fixture(scope="module")
def small_audit_inputs():
    op = fastinv.make_operator("shaw", 16)
    X, Y = fastinv.generate(op, n_samples=200, seed=1)
    B = np.linalg.pinv(op.A) * 0.5

    def model(y):
        return y @ B.T

    return op, model, Y, X


def test_audit_accepts_an_array_operator(small_audit_inputs):
    op, model, Y, X = small_audit_inputs
    res_op = fastinv.audit(model, op, probes=Y[:100], test=(Y[100:], X[100:]), n_jacobian=0)
    res_arr = fastinv.audit(model, op.A, probes=Y[:100], test=(Y[100:], X[100:]), n_jacobian=0)
    assert res_arr.metrics["errors"] == res_op.metrics["errors"]
    np.testing.assert_allclose(res_arr.arrays["C"], res_op.arrays["C"])


@pytest.mark.parametrize(
    "op_kind, test, needle",
    [
        ("op", None, "test must be a pair"),
        ("op", "Ytest", "test must be a pair"),
        ("dict", "pair", "op must be an Operator"),
        ("op", "nan", "test inputs contains"),
    ],
)
def test_audit_bad_arguments(op_kind, test, needle, small_audit_inputs):
    op, model, Y, X = small_audit_inputs
    tests = {
        None: None,
        "Ytest": Y[100:],
        "pair": (Y[100:], X[100:]),
        "nan": (np.where(np.eye(100, 16) > 0, np.nan, Y[100:]), None),
    }
    operator = {"A": op.A} if op_kind == "dict" else op
    with pytest.raises(FastinvError, match=needle):
        fastinv.audit(model, operator, probes=Y[:100], test=tests[test])


def test_audit_one_probe(small_audit_inputs):
    op, model, Y, X = small_audit_inputs
    with pytest.raises(FastinvError, match="at least 2 rows"):
        fastinv.audit(model, op, probes=Y[:1], test=(Y[100:], None))
