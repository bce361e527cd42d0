"""`fastinv analyze` on every model form, through click's runner and as a subprocess."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from naive import naive_tikhonov, shaw

import fastinv
from fastinv.cli.main import main

N = 12
COMMON = ["--samples", "200", "--jacobian-probes", "3", "--quiet"]

ARCH = textwrap.dedent(
    """
    import torch

    class Net(torch.nn.Module):
        def __init__(self, n, width=24):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Linear(n, width), torch.nn.Tanh(), torch.nn.Linear(width, n))

        def forward(self, y):
            return self.body(y)

    def tikhonov_fn(y):
        import numpy as np
        A = np.load("A.npy")
        C = np.linalg.solve(A.T @ A + 1e-3 * np.eye(A.shape[0]), A.T)
        return y @ C.T
    """
)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("analyze")
    op = fastinv.make_operator("shaw", N)
    np.save(d / "A.npy", op.A)
    (d / "usernet.py").write_text(ARCH)
    sys.path.insert(0, str(d))
    try:
        import usernet
    finally:
        sys.path.remove(str(d))
    torch.manual_seed(0)
    net = usernet.Net(N).eval()
    torch.jit.save(torch.jit.script(net), d / "scripted.pt")
    torch.save(net.state_dict(), d / "weights.pt")
    torch.save(net, d / "pickled.pt")
    if hasattr(torch, "export") and hasattr(torch.export, "export"):
        # a failure here is a regression (test_torch_export_archive fails), not a skip
        batch = torch.export.Dim("batch", min=2)
        ep = torch.export.export(net, (torch.zeros(4, N),), dynamic_shapes=({0: batch},))
        torch.export.save(ep, d / "exported.pt2")
    X, Y = fastinv.generate(op, n_samples=150, seed=4)
    np.save(d / "Y.npy", Y)
    np.save(d / "X.npy", X)
    with torch.no_grad():
        ref = net(torch.from_numpy(Y).float()).double().numpy()
    np.save(d / "ref_out.npy", ref)
    sys.modules.pop("usernet", None)
    return d


def run_cli(work, monkeypatch, *args):
    monkeypatch.chdir(work)
    return CliRunner().invoke(main, ["analyze", "--operator", "A.npy", *args])


@pytest.mark.parametrize(
    "model_args,kind",
    [
        (["--model", "scripted.pt"], "torchscript"),
        (
            ["--model", "weights.pt", "--arch", "usernet:Net", "--arch-kwargs", f'{{"n": {N}}}'],
            "state_dict",
        ),
        (["--model", "pickled.pt", "--trust-pickle"], "pickle"),
        (["--model", "usernet:tikhonov_fn"], "callable"),
    ],
)
def test_every_model_form(work, monkeypatch, model_args, kind):
    out = work / f"out-{kind}"
    res = run_cli(work, monkeypatch, *model_args, *COMMON, "--out", str(out))
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"]["kind"] == kind
    assert (out / "report.html").is_file() and (out / "singular_values.png").is_file()
    assert m["surrogate"]["r2_heldout"] > 0.5
    if kind == "callable":
        # a linear callable: the surrogate is that matrix (Hansen's shaw, Tikhonov 1e-3), R² = 1
        assert m["surrogate"]["r2_heldout"] == pytest.approx(1.0, abs=1e-9)
        C_ref = naive_tikhonov(shaw(N)[0], 1e-3)
        C = np.load(out / "arrays.npz")["C"]
        np.testing.assert_allclose(C, C_ref, rtol=0, atol=1e-6 * np.abs(C_ref).max())
        np.testing.assert_allclose(np.load(out / "arrays.npz")["b"], 0.0, atol=1e-8)
        assert m["jacobians"] == {}
    else:
        assert m["jacobians"]["n_probes"] == 3


def test_torch_export_archive(work, monkeypatch):
    if not (hasattr(torch, "export") and hasattr(torch.export, "export")):
        pytest.skip(f"torch {torch.__version__} has no torch.export")
    out = work / "out-export"
    res = run_cli(work, monkeypatch, "--model", "exported.pt2", *COMMON, "--out", str(out))
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"]["kind"] == "export"
    assert m["surrogate"]["r2_heldout"] > 0.5


def test_user_probes_and_truth(work, monkeypatch):
    out = work / "out-probes"
    res = run_cli(
        work,
        monkeypatch,
        "--model",
        "scripted.pt",
        "--probes",
        "Y.npy",
        "--truth",
        "X.npy",
        "--quiet",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    # the network's test error on the user's own pairs, computed independently here
    Y, X, ref = (np.load(work / f) for f in ("Y.npy", "X.npy", "ref_out.npy"))
    assert m["errors"]["network"] == pytest.approx(
        np.linalg.norm(ref - X) / np.linalg.norm(X), rel=1e-5
    )


def test_probes_without_truth_say_what_is_missing(work, monkeypatch):
    out = work / "out-notruth"
    res = run_cli(
        work,
        monkeypatch,
        "--model",
        "scripted.pt",
        "--probes",
        "Y.npy",
        "--quiet",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["errors"] == {}
    assert any("no test targets" in s for s in m["notes"])


def test_fewer_probes_than_n_warns(work, monkeypatch):
    np.save(work / "Yfew.npy", np.load(work / "Y.npy")[:5])
    with pytest.warns(UserWarning, match="minimum-norm"):
        res = run_cli(
            work,
            monkeypatch,
            "--model",
            "scripted.pt",
            "--probes",
            "Yfew.npy",
            "--quiet",
            "--out",
            str(work / "out-few"),
        )
    assert res.exit_code == 0, res.output


def _one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for s in needles:
        assert s in lines[0], (s, lines[0])


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--model", "missing.pt"], ["missing.pt", "not found"]),
        (["--model", "pickled.pt"], ["--trust-pickle"]),
        (["--model", "weights.pt"], ["--arch"]),
        (["--model", "weights.pt", "--arch", "nosuchmodule:Net"], ["nosuchmodule"]),
        (["--model", "scripted.pt", "--probes", "nope.npy"], ["nope.npy", "not found"]),
        (["--model", "scripted.pt", "--truth", "X.npy"], ["--probes"]),
        (["--model", "usernet:Net"], ["state_dict"]),
    ],
)
def test_bad_inputs(work, monkeypatch, args, needles):
    out = work / "out-bad"
    res = run_cli(work, monkeypatch, *args, "--quiet", "--out", str(out))
    _one_line_error(res, *needles)
    assert not out.exists() or not any(out.iterdir())


def test_wrong_output_shape_model(work, monkeypatch):
    (work / "shapes.py").write_text("def half(y):\n    return y[:, : y.shape[1] // 2]\n")
    res = run_cli(work, monkeypatch, "--model", "shapes:half", "--quiet", "--out", str(work / "o"))
    _one_line_error(res, "shape")


def test_model_raising(work, monkeypatch):
    (work / "raising.py").write_text("def f(y):\n    raise ValueError('boom')\n")
    res = run_cli(work, monkeypatch, "--model", "raising:f", "--quiet", "--out", str(work / "o"))
    _one_line_error(res, "boom", f"(2, {N})")


def test_nan_in_operator_and_probes(work, monkeypatch):
    A = np.load(work / "A.npy")
    A[1, 2] = np.inf
    np.save(work / "Abad.npy", A)
    monkeypatch.chdir(work)
    res = CliRunner().invoke(
        main,
        [
            "analyze",
            "--operator",
            "Abad.npy",
            "--model",
            "scripted.pt",
            "-q",
            "--out",
            str(work / "o"),
        ],
    )
    _one_line_error(res, "non-finite")
    Y = np.load(work / "Y.npy")
    Y[3, 4] = np.nan
    np.save(work / "Ynan.npy", Y)
    res = run_cli(
        work,
        monkeypatch,
        "--model",
        "scripted.pt",
        "--probes",
        "Ynan.npy",
        "-q",
        "--out",
        str(work / "o"),
    )
    _one_line_error(res, "probes", "(3, 4)")


def test_analyze_as_subprocess(work):
    out = work / "out-subprocess"
    cmd = [
        sys.executable,
        "-c",
        "from fastinv.cli.main import main; main()",
        "analyze",
        "--operator",
        "A.npy",
        "--model",
        "scripted.pt",
        *COMMON,
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "metrics.json").read_text())["model"]["kind"] == "torchscript"
    bad = [
        sys.executable,
        "-c",
        "from fastinv.cli.main import main; main()",
        "analyze",
        "--operator",
        "A.npy",
        "--model",
        "pickled.pt",
        "-q",
        "--out",
        str(work / "o2"),
    ]
    proc = subprocess.run(bad, cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--trust-pickle" in proc.stderr
