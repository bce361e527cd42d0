"""The deepinv example of docs/deepinv.md against the real library (skipped without deepinv).

A deepinv ``BlurFFT`` physics (16 x 16) as ``--operator module:make_physics`` and a deepinv
``ArtifactRemoval(DnCNN)`` called as ``model(y, physics)`` through a row function, audited
with the user's own probes, a separate test set and the stated noise; the numbers against
the same computations done here directly with deepinv and NumPy.
"""

import textwrap

import numpy as np
import pytest

deepinv = pytest.importorskip("deepinv")
torch = pytest.importorskip("torch")

from fastinv.workflows.analyze import analyze_model  # noqa: E402

EXAMPLE = textwrap.dedent(
    """
    import deepinv as dinv
    import torch

    H = W = 16


    def make_physics():
        kernel = dinv.physics.blur.gaussian_blur(sigma=(1.0, 1.0))
        return dinv.physics.BlurFFT(
            img_size=(1, H, W), filter=kernel, noise_model=dinv.physics.GaussianNoise(sigma=0.01)
        )


    def make_model():
        torch.manual_seed(0)
        net = dinv.models.DnCNN(in_channels=1, out_channels=1, depth=3, nf=8, pretrained=None)
        return dinv.models.ArtifactRemoval(net, mode="adjoint").eval()


    _PHYSICS = make_physics()
    _MODEL = make_model()


    def model_rows(Y):
        y = torch.as_tensor(Y, dtype=torch.float32).reshape(-1, 1, H, W)
        with torch.no_grad():
            return _MODEL(y, _PHYSICS).reshape(y.shape[0], -1).double().numpy()
    """
)

SIGMA = 0.01


def test_deepinv_blur_and_network_audited(tmp_path, monkeypatch):
    (tmp_path / "dinv_example.py").write_text(EXAMPLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import dinv_example as ex

    physics = ex.make_physics()
    n = 256
    with torch.no_grad():  # A from deepinv on the identity basis: column j is A e_j
        A = physics.A(torch.eye(n).reshape(n, 1, 16, 16)).reshape(n, n).double().numpy().T
    rng = np.random.default_rng(0)
    sets = {}
    for name, rows in (("fit", 300), ("test", 200)):
        X = rng.random((rows, n))
        Y = X @ A.T + SIGMA * rng.standard_normal((rows, n))
        np.save(tmp_path / f"X_{name}.npy", X)
        np.save(tmp_path / f"Y_{name}.npy", Y)
        sets[name] = (Y, X)
    m = analyze_model(
        "dinv_example:make_physics",
        "dinv_example:model_rows",
        probes_path=tmp_path / "Y_fit.npy",
        truth_path=tmp_path / "X_fit.npy",
        test_probes_path=tmp_path / "Y_test.npy",
        test_truth_path=tmp_path / "X_test.npy",
        noise=SIGMA,
        noise_type="absolute",
        n_jacobian=0,
    )
    assert m["operator"]["image_shape"] == [16, 16]
    assert m["operator"]["params"]["noise_sigma"] == pytest.approx(SIGMA, rel=1e-6)
    assert m["references"]["lmmse"]["noise_var"] == pytest.approx(SIGMA**2, rel=1e-12)
    Yt, Xt = sets["test"]

    def rel(Xh):
        return np.linalg.norm(Xh - Xt) / np.linalg.norm(Xt)

    with torch.no_grad():
        y = torch.as_tensor(Yt, dtype=torch.float32).reshape(-1, 1, 16, 16)
        X_net = ex.make_model()(y, physics).reshape(len(Yt), -1).double().numpy()
    assert m["errors"]["network"] == pytest.approx(rel(X_net), rel=1e-5)
    # A⁻¹ of the float32 physics: compared loosely (A is ill-conditioned, cond ~ 5e3)
    assert m["errors"]["A_inv"] == pytest.approx(rel(Yt @ np.linalg.inv(A).T), rel=1e-2)
