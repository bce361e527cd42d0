"""Adapters (fastinv.problem.adapters, Operator.from_linear_map, module:function factories):
scipy.sparse matrices and .npz files, SciPy LinearOperators, PyLops operators (skipped
without PyLops), a deepinv-style LinearPhysics (a small fake with deepinv's documented
interface: A / A_adjoint on (B, C, H, W) tensors, noise_model.sigma), each checked against
its dense matrix and by the adjoint test; unreadable files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

from fastinv.errors import FastinvError
from fastinv.problem import files
from fastinv.problem.operators import Operator, as_operator, load_operator, make_operator


def _adjoint_test(op, rtol=1e-12):
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((4, op.n)), rng.standard_normal((4, op.m))
    lhs = np.sum(op.apply(X) * Y, axis=1)
    rhs = np.sum(X * op.adjoint(Y), axis=1)
    np.testing.assert_allclose(lhs, rhs, rtol=rtol, atol=rtol * np.abs(lhs).max())


def _check_against(op, A, atol=1e-13):
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((3, op.n)), rng.standard_normal((3, op.m))
    np.testing.assert_allclose(op.apply(X), X @ A.T, atol=atol)
    np.testing.assert_allclose(op.adjoint(Y), Y @ A, atol=atol)
    np.testing.assert_allclose(op.to_dense(), A, atol=atol)


@pytest.fixture
def S():
    return scipy.sparse.random(40, 40, density=0.1, random_state=1, format="csr") + (
        scipy.sparse.eye(40)
    )


def test_sparse_matrix_and_npz_file_stay_sparse(S, tmp_path):
    op = Operator.from_linear_map(S, name="S")
    assert op.structure == "sparse" and op.shape == (40, 40)
    _check_against(op, S.toarray())
    _adjoint_test(op)
    s0 = np.linalg.svd(S.toarray(), compute_uv=False)
    _, s, _, info = op.svd_topk(3, n_iter=10)
    assert info["method"] == "rsvd"
    np.testing.assert_allclose(s, s0[:3], rtol=1e-7)
    p = tmp_path / "S.npz"
    scipy.sparse.save_npz(p, S)
    op = load_operator(p)
    assert op.structure == "sparse"
    np.testing.assert_array_equal(op.A, S.toarray())
    np.testing.assert_allclose(op.svd[1], s0, rtol=1e-12)
    bad = S.tolil()
    bad[0, 1] = np.nan
    with pytest.raises(FastinvError, match="NaN"):
        as_operator(bad.tocsr())


def test_scipy_linear_operator(S):
    A = S.toarray() + 0.1 * np.eye(40)
    L = scipy.sparse.linalg.aslinearoperator(A)
    op = as_operator(L, name="L", image_shape=(5, 8))
    assert op.structure == "matrix-free" and op.image_shape == (5, 8)
    _check_against(op, A)
    _adjoint_test(op)
    no_adjoint = scipy.sparse.linalg.LinearOperator((40, 40), matvec=lambda v: A @ v)
    with pytest.raises(FastinvError, match="has no adjoint"):
        as_operator(no_adjoint)
    with pytest.raises(FastinvError, match="cannot use a builtins.dict as an operator"):
        as_operator({})
    with pytest.raises(FastinvError, match=r"image_shape \(5, 7\) has 35 pixels"):
        as_operator(L, image_shape=(5, 7))


def test_pylops_operators():
    pylops = pytest.importorskip("pylops")
    H, W = 6, 7
    D = pylops.FirstDerivative(dims=(H, W), axis=1, dtype="float64")
    op = as_operator(D, name="dx")
    assert op.image_shape == (H, W) and op.shape == (H * W, H * W)
    _check_against(op, D.todense())
    _adjoint_test(op)
    M = np.random.default_rng(0).standard_normal((12, 12))
    op = as_operator(pylops.MatrixMult(M, dtype="float64"))
    assert op.image_shape is None
    _check_against(op, M)
    U, s, Vt, info = op.svd_topk(4, n_iter=10)
    np.testing.assert_allclose(s, np.linalg.svd(M, compute_uv=False)[:4], rtol=1e-8)
    with pytest.raises(FastinvError, match="complex"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyLops warns that it casts to complex
        as_operator(pylops.MatrixMult(M + 1j * M))


class FakeNoise:
    sigma = 0.05


def _fake_physics(torch, *, down: int = 1, holder: bool = False):
    """A deepinv-style LinearPhysics: a 3 x 3 blur (zero padding) then optional downsampling;
    ``holder``: a float32 ``_device_holder`` buffer registered first, as deepinv 0.5 does."""

    class Physics(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if holder:
                self.register_buffer("_device_holder", torch.zeros(1, dtype=torch.float32))
            k = torch.tensor([[1.0, 2.0, 0.5], [0.0, 3.0, 1.0], [0.2, 0.0, 1.5]])
            self.register_buffer("filter", (k / k.sum())[None, None].to(torch.float64))
            self.noise_model = FakeNoise()
            self.img_size = (1, 6, 8)

        def A(self, x):
            y = torch.nn.functional.conv2d(x, self.filter, padding=1)
            return y[..., ::down, ::down]

        def A_adjoint(self, y):
            full = torch.zeros(y.shape[0], 1, 6, 8, dtype=y.dtype)
            full[..., ::down, ::down] = y
            return torch.nn.functional.conv_transpose2d(full, self.filter, padding=1)

    return Physics()


def _dense_of(torch, physics, C, H, W):
    eye = torch.eye(C * H * W, dtype=torch.float64).reshape(-1, C, H, W)
    return physics.A(eye).reshape(C * H * W, -1).T.numpy()


def test_deepinv_style_physics():
    torch = pytest.importorskip("torch")
    physics = _fake_physics(torch)
    op = as_operator(physics, name="blur")
    assert op.shape == (48, 48) and op.image_shape == (6, 8)
    assert op.params["noise_sigma"] == 0.05 and op.params["dtype"] == "float64"
    _check_against(op, _dense_of(torch, physics, 1, 6, 8))
    _adjoint_test(op)
    # rectangular: blur then downsample by 2 (m = 12 < n = 48)
    physics = _fake_physics(torch, down=2)
    op = as_operator(physics, name="sr", image_shape=(6, 8))
    assert op.shape == (12, 48) and op.m == 12 and op.n == 48
    _check_against(op, _dense_of(torch, physics, 1, 6, 8))
    _adjoint_test(op)
    del physics.img_size
    with pytest.raises(FastinvError, match="pass image_shape"):
        as_operator(physics)


def test_private_float32_buffer_does_not_set_the_physics_dtype():
    """deepinv 0.5 registers a float32 ``_device_holder`` before the filter: the float64
    filter decides (else conv2d fails on a dtype mismatch)."""
    torch = pytest.importorskip("torch")
    physics = _fake_physics(torch, holder=True)
    op = as_operator(physics, name="blur")
    assert op.params["dtype"] == "float64"
    _check_against(op, _dense_of(torch, physics, 1, 6, 8))


FACTORY = """
import numpy as np
import scipy.sparse

def make_op(n, scale=1.0):
    return scipy.sparse.diags(scale * np.arange(1.0, n + 1))

def fixed():
    return np.eye(5)

def broken(n):
    raise RuntimeError("no data\\nhere")

SCALE = 2.0
"""


def test_module_function_factories(tmp_path, monkeypatch):
    (tmp_path / "fastinv_test_factory_mod.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    op = make_operator("fastinv_test_factory_mod:make_op", 6, scale=2.0)
    np.testing.assert_array_equal(op.A, np.diag(2.0 * np.arange(1, 7)))
    assert op.name == "fastinv_test_factory_mod:make_op" and op.structure == "sparse"
    assert op.params == {"factory": "fastinv_test_factory_mod:make_op", "scale": 2.0}
    op = make_operator("fastinv_test_factory_mod:fixed")
    assert op.structure == "dense" and op.n == 5
    cases = [
        (("fastinv_test_factory_mod:fixed", 6), "n=6 does not match .* pass n=5"),
        (
            ("fastinv_test_factory_mod:nope", 6),
            "module 'fastinv_test_factory_mod' has no "
            "attribute 'nope'; check the name after the ':'",
        ),
        (("fastinv_test_factory_mod:SCALE", 6), "'SCALE' is a float, not a function"),
        (("fastinv_no_such_module_xyz:f", 6), "cannot import module 'fastinv_no_such_module_xyz'"),
        (("fastinv_test_factory_mod:broken", 6), "factory .* failed: RuntimeError: no data here"),
    ]
    for args, msg in cases:
        with pytest.raises(FastinvError, match=msg) as e:
            make_operator(*args)
        assert "\n" not in str(e.value)


def test_operator_factory_from_a_python_file(tmp_path, monkeypatch):
    """``path/to/ops.py:make_op``: a script's factory, no package or PYTHONPATH needed."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "my_ops.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    op = make_operator("sub/my_ops.py:make_op", 4, scale=3.0)
    np.testing.assert_array_equal(op.A, np.diag(3.0 * np.arange(1, 5)))
    assert op.params == {"factory": "sub/my_ops.py:make_op", "scale": 3.0}
    with pytest.raises(FastinvError) as e:
        make_operator("sub/missing.py:make_op", 4)
    assert str(e.value) == ("Python file 'sub/missing.py' not found; check the path before the ':'")


def test_unreadable_file_gives_one_line(tmp_path, monkeypatch):
    """chmod 000 does not stop root, so the read is made to fail with PermissionError."""
    p = tmp_path / "A.npy"
    np.save(p, np.eye(3))
    q = tmp_path / "A.csv"
    q.write_text("1,0\n0,1\n")

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(a[0]) if a else "")

    monkeypatch.setattr(files, "open", denied, raising=False)  # the header check, csv reader
    for path in (p, q):
        with pytest.raises(FastinvError, match="permission denied; make the file readable") as e:
            load_operator(path)
        assert "\n" not in str(e.value)
    monkeypatch.undo()
    monkeypatch.setattr(files.np, "load", denied)  # past the header: np.load itself
    with pytest.raises(FastinvError, match="permission denied"):
        load_operator(p)
