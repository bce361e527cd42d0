"""fastinv beside the real deepinv: docs/examples/deepinv_blur.py (the README's example).

Skipped where deepinv does not import (it is an optional extra; see docs/deepinv.md for the
install that keeps the CPU torch: deepinv and torchvision 0.16.2 with ``--no-deps``). CI
installs it and checks ``import deepinv`` itself, so a broken install fails CI, not skips.

- the README command, ``fastinv analyze --operator deepinv_blur:make_physics --model
  deepinv_blur:make_model``, in a subprocess: report written, A's singular values equal
  those of the dense matrix built here from deepinv's ``physics.A`` on the identity;
- a linear deepinv model (``ArtifactRemoval`` returning Aᵀ y) through
  :func:`analyze_model` with the user's own probes and test set: the fitted C is Aᵀ to
  1e-8, and the test errors of the network, A⁻¹ and the noise level are the ones
  computed here directly.
"""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:  # not importorskip: a torchvision that does not match torch raises RuntimeError
    import deepinv  # noqa: F401
except Exception as e:  # noqa: BLE001
    pytest.skip(f"deepinv does not import ({type(e).__name__}: {e})", allow_module_level=True)

import torch  # noqa: E402

from fastinv.workflows.analyze import analyze_model  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
N = 256  # 16 x 16 images
SIGMA = 0.01


@pytest.fixture(scope="module")
def ex():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import deepinv_blur

        yield deepinv_blur
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def A(ex):
    """The dense A from deepinv itself: column j is physics.A(e_j)."""
    physics = ex.make_physics()
    eye = torch.eye(N, dtype=ex.DTYPE).reshape(N, *ex.SHAPE)
    with torch.no_grad():
        return physics.A(eye).reshape(N, N).numpy().T.copy()


def test_the_physics_is_the_blur_it_says(ex, A):
    """The independent A is what the example states: a circular Gaussian blur, standard
    deviations PSF_SIGMA along rows and columns (anisotropic: an image transposed somewhere
    changes A), each row a shifted copy of one normalised PSF; and its adjoint is Aᵀ."""
    assert A.sum(axis=1) == pytest.approx(np.ones(N), abs=1e-12)
    psf = A[0].reshape(16, 16)  # row 0: the weights of pixel (0, 0)
    d = np.minimum(np.arange(16), 16 - np.arange(16))  # circular distance
    sr, sc = ex.PSF_SIGMA
    g = np.exp(-((d[:, None] / sr) ** 2 + (d[None, :] / sc) ** 2) / 2.0)
    support = psf > 0
    np.testing.assert_allclose(psf[support], (g / g[support].sum())[support], rtol=1e-12)
    np.testing.assert_array_equal(A[17].reshape(16, 16), np.roll(psf, (1, 1), axis=(0, 1)))
    physics = ex.make_physics()
    Y = np.random.default_rng(1).standard_normal((3, N))
    with torch.no_grad():
        At = physics.A_adjoint(torch.from_numpy(Y).reshape(3, *ex.SHAPE)).reshape(3, N).numpy()
    np.testing.assert_allclose(At, Y @ A, atol=1e-14)


def test_the_physics_is_applied_by_torch_and_differentiable(ex, A):
    """as_operator(physics) computes on tensors with the physics itself: equal to the
    independent A, in the tensor's dtype, with gradients (x -> A x has ∂⟨w, A x⟩/∂x = Aᵀ w)."""
    from fastinv.problem.operators import as_operator

    op = as_operator(ex.make_physics())
    assert op.torch_native
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((3, N)), requires_grad=True)
    w = rng.standard_normal((3, N))
    out = op.apply(x)
    np.testing.assert_allclose(out.detach().numpy(), x.detach().numpy() @ A.T, atol=1e-13)
    (out * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), w @ A, atol=1e-13)
    y32 = op.adjoint(torch.from_numpy(w).float())
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.double().numpy(), w @ A, atol=1e-5)


def readme_command() -> list[str]:
    """The README's deepinv command (``cd docs/examples && fastinv analyze ...``), as argv
    after ``fastinv``."""
    text = (EXAMPLES.parents[1] / "README.md").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "--model deepinv_blur:make_model" in ln)
    argv = shlex.split(line.split("&&", 1)[1])
    assert argv[:2] == ["fastinv", "analyze"], line
    return argv[1:]


def test_readme_command_audits_a_deepinv_network(ex, A, tmp_path):
    out = tmp_path / "dinv"
    cmd = [
        sys.executable,
        "-c",
        "from fastinv.cli.main import main; main()",
        *readme_command(),
        *("--samples", "600", "-q", "--out", str(out)),  # fewer probes than the default
    ]
    proc = subprocess.run(cmd, cwd=EXAMPLES, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.md").read_text().strip()
    m = json.loads((out / "metrics.json").read_text())
    assert m["operator"]["image_shape"] == [16, 16]
    # deepinv keeps its noise level in float32: 0.01 to float32 rounding
    assert m["operator"]["params"]["noise_sigma"] == pytest.approx(SIGMA, rel=1e-7)
    assert (m["model"]["input"], m["model"]["dtype"]) == ("model(y, physics)", "float64")
    assert m["data"]["summary"].startswith("Probes generated: prior grf, absolute noise 0.01")
    with np.load(out / "arrays.npz") as arr:
        sigma_A, C = arr["sigma_A"], arr["C"]
    s = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(sigma_A, s, rtol=1e-10, atol=1e-13 * s[0])
    assert C.shape == (N, N)
    config = json.loads((out / "config.json").read_text())
    assert (config["operator"], config["model"]) == (
        "deepinv_blur:make_physics",
        "deepinv_blur:make_model",
    )


def test_linear_deepinv_model_audited_exactly(ex, A, tmp_path, monkeypatch):
    """x = Aᵀ y: C = Aᵀ, and the errors are the ones computed here from A."""
    monkeypatch.chdir(EXAMPLES)
    rng = np.random.default_rng(0)
    sets = {}
    for name, rows in (("fit", 400), ("test", 100)):
        X = rng.random((rows, N))
        Y = X @ A.T + SIGMA * rng.standard_normal((rows, N))
        np.save(tmp_path / f"X_{name}.npy", X)
        np.save(tmp_path / f"Y_{name}.npy", Y)
        sets[name] = (Y, X)
    m = analyze_model(
        "deepinv_blur:make_physics",
        "deepinv_blur:make_linear_model",
        probes_path=tmp_path / "Y_fit.npy",
        truth_path=tmp_path / "X_fit.npy",
        test_probes_path=tmp_path / "Y_test.npy",
        test_truth_path=tmp_path / "X_test.npy",
        noise=SIGMA,
        noise_type="absolute",
        n_jacobian=0,
        out=tmp_path / "out",
    )
    with np.load(tmp_path / "out" / "arrays.npz") as arr:
        C, b = arr["C"], arr["b"]
    np.testing.assert_allclose(C, A.T, rtol=0, atol=1e-8)
    np.testing.assert_allclose(b, 0, atol=1e-8)
    assert m["references"]["lmmse"]["noise_var"] == pytest.approx(SIGMA**2, rel=1e-12)
    Yt, Xt = sets["test"]

    def rel(Xh):
        return np.linalg.norm(Xh - Xt) / np.linalg.norm(Xt)

    assert m["errors"]["network"] == pytest.approx(rel(Yt @ A), rel=1e-10)
    assert m["errors"]["A_inv"] == pytest.approx(rel(Yt @ np.linalg.inv(A).T), rel=1e-9)


def test_a_downsampling_physics_is_a_rectangular_operator():
    """deepinv's Downsampling (16 x 16 -> 8 x 8, reads its size from ``imsize``): a 64 x 256
    operator whose torch path is the physics itself, so a CNN back-projects through it."""
    import deepinv as dinv

    from fastinv.nets.models import make_model
    from fastinv.problem.operators import as_operator

    physics = dinv.physics.Downsampling(
        img_size=(1, 16, 16), factor=2, filter="gaussian", padding="circular", device="cpu"
    )
    op = as_operator(physics)
    assert op.shape == (64, 256) and op.image_shape == (16, 16) and op.torch_native
    X = np.random.default_rng(3).standard_normal((2, 256))
    with torch.no_grad():
        want = physics.A(torch.as_tensor(X, dtype=torch.float32).reshape(2, 1, 16, 16))
    np.testing.assert_allclose(op.apply(X), want.reshape(2, 64).double().numpy(), atol=1e-6)
    net = make_model("cnn", 64, n_out=256, backprojection=op, width=2, depth=1)
    Y = torch.as_tensor(np.random.default_rng(4).standard_normal((2, 64)), dtype=torch.float32)
    with torch.no_grad():
        out = net(Y)  # the output layer starts at zero: the network is Aᵀ y
        np.testing.assert_allclose(out.numpy(), op.adjoint(Y).numpy(), atol=1e-6)
