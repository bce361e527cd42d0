"""Tests of fastinv.linalg.surrogate (streamed least squares, Jacobians) against tests/naive.py."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from fastinv.kernels import moments as K
from naive import (
    centred_moments,
    colsums,
    jacobian_fd,
    lstsq_fit,
    lstsq_fit_centred,
    r2_direct,
    raw_moment_fit,
    resid_sums,
    ridge_fit,
    sym_from_lower,
    sym_from_upper,
)

from fastinv.errors import FastinvError
from fastinv.linalg.jacobians import jacobians, mean_jacobian
from fastinv.linalg.moments import LinearFit, MomentAccumulator
from fastinv.linalg.surrogate import fit_linear, fit_surrogate, holdout_mask, surrogate_moments


def _data(rng, N, n_in, n_out, *, noise=0.1, dtype=np.float64, offset=0.0):
    Y = rng.standard_normal((N, n_in)) + offset
    C0 = rng.standard_normal((n_out, n_in))
    b0 = rng.standard_normal(n_out)
    X = Y @ C0.T + b0 + noise * rng.standard_normal((N, n_out))
    return Y.astype(dtype), X.astype(dtype), C0, b0


def _close(a, b, rtol):
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


# ---------------------------------------------------------------------------------------
# kernels vs naive


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 300), (7, 513)])
def test_kernels_colsums_and_shift_copy(rng, dtype, shape):
    a = rng.standard_normal(shape).astype(dtype)
    shift = rng.standard_normal(shape[1])
    s, q = np.zeros(shape[1]), np.zeros(shape[1])
    K._colsums(a, shift, s, q)
    s0, q0 = colsums(a, shift)
    np.testing.assert_allclose(s, s0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(q, q0, rtol=1e-12)
    out = np.empty(shape)
    s, q = np.zeros(shape[1]), np.zeros(shape[1])
    K._shift_copy(a, shift, out, s, q)
    np.testing.assert_array_equal(out, a.astype(np.float64) - shift)
    np.testing.assert_allclose(q, q0, rtol=1e-12)
    # Fortran-ordered and strided inputs give the same sums
    s2, q2 = np.zeros(shape[1]), np.zeros(shape[1])
    K._colsums(np.asfortranarray(a), shift, s2, q2)
    np.testing.assert_allclose(s2, s0, rtol=1e-12, atol=1e-12)


def test_kernels_resid_sym_norm(rng):
    x = rng.standard_normal((9, 4))
    p = rng.standard_normal((9, 4))
    b, xbar = rng.standard_normal(4), rng.standard_normal(4)
    outs = [np.zeros(4) for _ in range(3)]
    K._resid_sums(x, p, b, xbar, *outs)
    for got, want in zip(outs, resid_sums(x, p, b, xbar), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    for n in (1, 3, 64, 130):
        a = np.asfortranarray(rng.standard_normal((n, n)))
        a0 = a.copy()
        K._sym_fill(a, True)
        np.testing.assert_array_equal(a, sym_from_upper(a0))
        a = a0.copy(order="F")
        K._sym_fill(a, False)
        np.testing.assert_array_equal(a, sym_from_lower(a0))
        out = np.empty(n)
        K._abs_colsums(a, out)
        np.testing.assert_allclose(out, np.abs(a).sum(0), rtol=1e-14)


# ---------------------------------------------------------------------------------------
# fit_linear vs lstsq


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "N,n_in,n_out", [(50, 1, 1), (60, 1, 3), (80, 4, 1), (200, 7, 5), (300, 16, 16), (500, 9, 20)]
)
def test_fit_linear_matches_lstsq(rng, dtype, N, n_in, n_out):
    Y, X, _, _ = _data(rng, N, n_in, n_out, dtype=dtype)
    fit = fit_linear(Y, X, chunk_size=37)
    C, b = lstsq_fit(Y, X)  # float64 lstsq of the same (possibly float32) numbers
    _close(fit.C, C, 1e-10)
    _close(fit.b, b, 1e-10)
    assert fit.C.shape == (n_out, n_in) and fit.C.dtype == np.float64
    assert fit.C.flags.c_contiguous
    assert fit.r2 == pytest.approx(r2_direct(Y, X, C, b), abs=1e-12)
    assert fit.method == "cholesky" and fit.rank == n_in and not fit.min_norm
    assert fit.n_samples == N and fit.r2_heldout is None
    # without intercept
    fit0 = fit_linear(Y, X, intercept=False, chunk_size=64)
    C0, _ = lstsq_fit(Y, X, intercept=False)
    _close(fit0.C, C0, 1e-10)
    assert np.all(fit0.b == 0)
    assert fit0.r2 == pytest.approx(r2_direct(Y, X, C0, 0.0), abs=1e-12)


def test_fit_linear_random_data_equals_lstsq(rng):
    """Pure noise (no linear relation): still the lstsq answer, R² near 0."""
    Y = rng.standard_normal((400, 12))
    X = rng.standard_normal((400, 6))
    fit = fit_linear(Y, X)
    C, b = lstsq_fit(Y, X)
    _close(fit.C, C, 1e-10)
    _close(fit.b, b, 1e-10)
    assert fit.r2 == pytest.approx(r2_direct(Y, X, C, b), abs=1e-12)
    assert 0 <= fit.r2 < 0.1


def test_layouts_and_dtypes_agree(rng):
    Y, X, _, _ = _data(rng, 120, 6, 4)
    ref = fit_linear(Y, X, chunk_size=50)
    for Yv, Xv in [
        (np.asfortranarray(Y), np.asfortranarray(X)),
        (np.repeat(Y, 2, axis=1)[:, ::2], X),  # non-contiguous view
        (Y, X.tolist()),
    ]:
        f = fit_linear(Yv, Xv, chunk_size=50)
        _close(f.C, ref.C, 1e-12)
        _close(f.b, ref.b, 1e-12)
    Yi = rng.integers(-5, 5, (100, 3))
    Xi = rng.integers(-5, 5, (100, 2))
    f = fit_linear(Yi, Xi)
    C, b = lstsq_fit(Yi, Xi)
    _close(f.C, C, 1e-10)


@pytest.mark.parametrize("chunk", [1, 3, 64, 1000])
def test_chunk_size_invariance(rng, chunk):
    Y, X, _, _ = _data(rng, 150, 5, 3, offset=3.0)
    ref = fit_linear(Y, X, chunk_size=150)
    f = fit_linear(Y, X, chunk_size=chunk)
    _close(f.C, ref.C, 1e-12)
    _close(f.b, ref.b, 1e-12)
    assert f.r2 == pytest.approx(ref.r2, abs=1e-12)


# ---------------------------------------------------------------------------------------
# underdetermined and singular


@pytest.mark.parametrize(
    "N,n,intercept",
    [(3, 8, True), (3, 8, False), (10, 25, True), (10, 25, False), (1, 4, False)],
)  # (1, n, True): C = 0, see test_single_sample_with_intercept
def test_fewer_samples_than_dims_is_min_norm(rng, intercept, N, n):
    Y, X, _, _ = _data(rng, N, n, n)
    with pytest.warns(UserWarning, match=rf"N = {N} .*n = {n}.*minimum-norm.*rank <= N"):
        fit = fit_linear(Y, X, intercept=intercept)
    # intercept not penalised: min-norm over C = lstsq on centred data
    C, b = lstsq_fit_centred(Y, X) if intercept else lstsq_fit(Y, X, intercept=False)
    _close(fit.C, C, 1e-9)
    _close(fit.b, b, 1e-9)
    assert fit.min_norm and fit.method == "eigh"
    assert fit.rank == (N - 1 if intercept else N)
    if N > 1:
        assert fit.r2 == pytest.approx(1.0, abs=1e-9)  # interpolates the training data


def test_single_sample_with_intercept(rng):
    Y, X = rng.standard_normal((1, 3)), rng.standard_normal((1, 3))
    fit = _quiet(fit_linear, Y, X)
    assert fit.rank == 0 and np.all(fit.C == 0)
    np.testing.assert_allclose(fit.b, X[0])


@pytest.mark.parametrize("n_out", [3, 60])  # 60: the eigh workspace does not fit in M_yy
def test_rank_deficient_duplicated_columns(rng, n_out):
    Y = rng.standard_normal((200, 5))
    Y = np.hstack([Y, Y[:, :2]])  # 7 columns, rank 5
    X = Y @ rng.standard_normal((n_out, 7)).T + 0.01 * rng.standard_normal((200, n_out))
    with pytest.warns(UserWarning, match="rank-deficient"):
        fit = fit_linear(Y, X)
    C, b = lstsq_fit(Y, X)  # the null space does not involve the intercept here
    _close(fit.C, C, 1e-9)
    _close(fit.b, b, 1e-9)
    assert fit.method == "eigh" and fit.rank == 5 and fit.min_norm
    assert fit.cond > 1e12
    np.testing.assert_allclose(fit.C[:, 0], fit.C[:, 5], atol=1e-9)  # split evenly
    assert fit.r2 == pytest.approx(r2_direct(Y, X, C, b), abs=1e-10)


def test_constant_inputs(rng):
    Y = np.ones((20, 2))
    X = rng.standard_normal((20, 2))
    fit = _quiet(fit_linear, Y, X)
    assert fit.rank == 0 and np.all(fit.C == 0)
    np.testing.assert_allclose(fit.b, X.mean(0), atol=1e-14)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kw)


# ---------------------------------------------------------------------------------------
# stability


def test_huge_mean_keeps_digits(rng):
    N, n, k = 2000, 6, 4
    Y = 1e8 + rng.standard_normal((N, n))
    C0 = rng.standard_normal((k, n))
    b0 = rng.standard_normal(k)
    X = Y @ C0.T + b0  # exactly affine (up to the rounding of X itself, ~1e-8)
    fit = fit_linear(Y, X, chunk_size=300)
    np.testing.assert_allclose(fit.C, C0, atol=1e-6)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    # the textbook raw-moment formula loses every digit on the same data
    assert np.max(np.abs(raw_moment_fit(Y, X) - C0)) > 1e-2
    # the moments themselves are accurate
    acc = MomentAccumulator(n, k)
    for a in range(0, N, 300):
        acc.update(Y[a : a + 300], X[a : a + 300])
    my, mx, Myy, Mxy, txx = centred_moments(Y, X)
    mom = acc.moments()
    np.testing.assert_allclose(mom["M_yy"], Myy, rtol=1e-9, atol=1e-9 * N)
    np.testing.assert_allclose(mom["M_xy"], Mxy, rtol=1e-9, atol=1e-8 * N)
    np.testing.assert_allclose(mom["mean_y"], my, rtol=1e-14)


# ---------------------------------------------------------------------------------------
# merge


@pytest.mark.parametrize(
    "offset,offset_b",
    [(0.0, 0.0), (1e8, 0.0), (0.0, 10.0)],
    ids=["same-shift", "huge-mean", "shifted-half"],
)
def test_merge_equals_one_pass(rng, offset, offset_b):
    Y, X, _, _ = _data(rng, 400, 6, 3, offset=offset)
    Y[250:] += offset_b * rng.standard_normal(6)  # second part elsewhere: Chan formula
    X[250:] -= offset_b / 3
    one = MomentAccumulator(6, 3)
    for a in range(0, 400, 50):
        one.update(Y[a : a + 50], X[a : a + 50])
    acc_a, acc_b = MomentAccumulator(6, 3), MomentAccumulator(6, 3)
    for a in range(0, 250, 50):
        acc_a.update(Y[a : a + 50], X[a : a + 50])
    for a in range(250, 400, 50):
        acc_b.update(Y[a : a + 50], X[a : a + 50])
    same_shift = np.array_equal(acc_a._shift_y, acc_b._shift_y)
    assert same_shift == (offset == offset_b == 0.0)
    merged = acc_a.merge(acc_b)
    assert merged is acc_a and merged.count == 400
    m1, m2 = one.moments(), merged.moments()
    for key in ("mean_y", "mean_x"):
        np.testing.assert_allclose(m2[key], m1[key], rtol=1e-15, atol=1e-12)
    for key in ("M_yy", "M_xy"):
        np.testing.assert_allclose(m2[key], m1[key], rtol=0, atol=1e-12 * np.abs(m1[key]).max())
    f1, f2 = one.solve(), merged.solve()
    _close(f2.C, f1.C, 1e-12)
    _close(f2.b, f1.b, 1e-12 * max(1.0, offset))
    # Σ‖x − x̄‖² and R² need the merge's between-group term w·(x̄_b − x̄_a)²: check both
    # against the two-pass reference (means, M_yy, M_xy and C do not involve it)
    *_, txx = centred_moments(Y, X)
    assert m2["trace_M_xx"] == pytest.approx(txx, rel=1e-9)
    assert m1["trace_M_xx"] == pytest.approx(txx, rel=1e-9)
    r2 = r2_direct(Y, X, f1.C, f1.b)  # compare 1 − R² (R² is near 1 here)
    assert 1 - f2.r2 == pytest.approx(1 - r2, rel=1e-6)
    assert 1 - f1.r2 == pytest.approx(1 - r2, rel=1e-6)
    # merging continues to work after more updates
    merged.update(Y[:10], X[:10])
    one.update(Y[:10], X[:10])
    _close(merged.solve().C, one.solve().C, 1e-11)


def test_merge_edge_cases(rng):
    Y, X, _, _ = _data(rng, 60, 3, 2)
    a, b = MomentAccumulator(3, 2), MomentAccumulator(3, 2)
    b.update(Y, X)
    a.merge(MomentAccumulator(3, 2))  # empty into empty
    a.merge(b)  # into empty
    _close(a.solve().C, b.solve().C, 1e-14)
    with pytest.raises(FastinvError, match="same n_in"):
        a.merge(MomentAccumulator(4, 2))
    with pytest.raises(FastinvError, match="itself"):
        a.merge(a)
    with pytest.raises(FastinvError, match="no samples"):
        MomentAccumulator(3, 2).solve()


def test_merge_across_backends(rng):
    Y, X, _, _ = _data(rng, 300, 5, 4, offset=50.0)
    a = MomentAccumulator(5, 4)
    b = MomentAccumulator(5, 4, backend="torch", device="cpu")
    a.update(Y[:100], X[:100])
    b.update(torch.from_numpy(Y[100:]), torch.from_numpy(X[100:]))
    c = MomentAccumulator(5, 4, backend="torch", device="cpu").merge(b).merge(a)
    a.merge(b)
    ref = fit_linear(Y, X)
    _close(a.solve().C, ref.C, 1e-11)
    _close(c.solve().C, ref.C, 1e-11)


# ---------------------------------------------------------------------------------------
# ridge, holdout, predict/score, to_dict


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("ridge", [1e-3, 0.5, 10.0])
def test_ridge_matches_formula(rng, intercept, ridge):
    Y, X, _, _ = _data(rng, 150, 8, 5, offset=2.0)
    fit = fit_linear(Y, X, ridge=ridge, intercept=intercept, chunk_size=40)
    C, b = ridge_fit(Y, X, ridge, intercept=intercept)
    _close(fit.C, C, 1e-10)
    _close(fit.b, b, 1e-10)
    assert fit.r2 == pytest.approx(r2_direct(Y, X, C, b), abs=1e-11)
    assert fit.ridge == ridge


def test_ridge_makes_underdetermined_unique(rng):
    Y, X, _, _ = _data(rng, 5, 12, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_linear(Y, X, ridge=0.1)
    C, b = ridge_fit(Y, X, 0.1)
    _close(fit.C, C, 1e-10)
    assert fit.method == "cholesky" and not fit.min_norm


def test_holdout_r2_is_out_of_sample(rng):
    Y, X, _, _ = _data(rng, 500, 6, 4, noise=0.5, offset=1.0)
    fit = fit_linear(Y, X, holdout=0.25, seed=3, chunk_size=64)
    mask = holdout_mask(500, 0.25, 3)
    assert mask.sum() == 125 and fit.n_heldout == 125 and fit.n_samples == 375
    C, b = lstsq_fit(Y[~mask], X[~mask])
    _close(fit.C, C, 1e-10)
    assert fit.r2_heldout == pytest.approx(r2_direct(Y[mask], X[mask], C, b), abs=1e-12)
    assert fit.r2 == fit.r2_heldout
    assert fit.r2_insample == pytest.approx(r2_direct(Y[~mask], X[~mask], C, b), abs=1e-12)
    assert fit.score(Y[mask], X[mask], chunk_size=7) == pytest.approx(fit.r2_heldout, abs=1e-12)
    # same seed, same split
    assert fit_linear(Y, X, holdout=0.25, seed=3).r2 == pytest.approx(fit.r2, abs=1e-14)
    for bad in (-0.1, 1.0, 0.001):
        with pytest.raises(FastinvError, match="holdout"):
            fit_linear(Y, X, holdout=bad)


def test_predict_and_to_dict(rng):
    Y, X, _, _ = _data(rng, 100, 4, 3)
    fit = fit_linear(Y, X)
    np.testing.assert_allclose(fit.predict(Y), Y @ fit.C.T + fit.b, rtol=1e-14)
    assert fit.predict(Y.astype(np.float32)).dtype == np.float32
    d = fit.to_dict()
    json.dumps(d)
    assert d["rank"] == 4 and d["method"] == "cholesky" and d["r2_heldout"] is None
    assert isinstance(fit, LinearFit)


def test_bad_inputs(rng):
    Y, X, _, _ = _data(rng, 30, 3, 2)
    Yn = Y.copy()
    Yn[17, 1] = np.nan
    with pytest.raises(FastinvError, match="row 17, column 1"):
        fit_linear(Yn, X, chunk_size=8)
    Xn = X.copy()
    Xn[4, 0] = np.inf
    with pytest.raises(FastinvError, match="X has a non-finite value"):
        fit_linear(Y, Xn)
    with pytest.raises(FastinvError, match="rows"):
        fit_linear(Y, X[:-1])
    with pytest.raises(FastinvError, match="2-D"):
        fit_linear(Y[:, 0], X)
    with pytest.raises(FastinvError, match="ridge"):
        fit_linear(Y, X, ridge=-1)
    with pytest.raises(FastinvError, match="chunk_size"):
        fit_linear(Y, X, chunk_size=0)
    # a NaN in a held-out row is found by the held-out pass, named by its absolute row
    mask = holdout_mask(30, 0.3, 0)
    row = int(np.flatnonzero(mask)[-1])
    Xh = X.copy()
    Xh[row, 1] = np.nan
    with pytest.raises(FastinvError, match=rf"X has a non-finite value \(nan\) at row {row},"):
        fit_linear(Y, Xh, holdout=0.3, seed=0, chunk_size=8)
    row = int(np.flatnonzero(~mask)[-1])
    with pytest.raises(FastinvError, match=rf"at row {row}, column 0"):
        Yh = Y.copy()
        Yh[row, 0] = np.inf
        fit_linear(Yh, X, holdout=0.3, seed=0, chunk_size=8)
    with pytest.raises(FastinvError, match=r"Y has a non-finite value \(inf\) at row"):
        fit_surrogate(np.tanh, Yh)
    acc = MomentAccumulator(3, 2)
    with pytest.raises(FastinvError, match=r"shape \(m, 3\)"):
        acc.update(X, X)
    acc.update(Y, X)  # a failed update left no trace
    _close(acc.solve().C, fit_linear(Y, X).C, 1e-13)


# ---------------------------------------------------------------------------------------
# torch backend


def _torch_acc_fit(Y, X, device, chunk, **kw):
    acc = MomentAccumulator(Y.shape[1], X.shape[1], backend="torch", device=device)
    Yt, Xt = torch.from_numpy(Y).to(device), torch.from_numpy(X).to(device)
    for a in range(0, Y.shape[0], chunk):
        acc.update(Yt[a : a + chunk], Xt[a : a + chunk])
    return acc.solve(**kw)


@pytest.mark.parametrize(
    "N,n_in,n_out,kw",
    [
        (200, 7, 5, {}),
        (200, 7, 5, {"intercept": False}),
        (200, 7, 5, {"ridge": 0.3}),
        (50, 1, 2, {}),
    ],
)
def test_torch_backend_equals_numpy(rng, device, N, n_in, n_out, kw):
    Y, X, _, _ = _data(rng, N, n_in, n_out, offset=5.0)
    ref = fit_linear(Y, X, chunk_size=33, **kw)
    f = _torch_acc_fit(Y, X, device, 33, **kw)
    _close(f.C, ref.C, 1e-10)
    _close(f.b, ref.b, 1e-10)
    assert f.r2 == pytest.approx(ref.r2, abs=1e-10)
    assert (f.method, f.rank) == (ref.method, ref.rank)


def test_torch_backend_min_norm_and_huge_mean(rng, device):
    Y, X, _, _ = _data(rng, 6, 10, 3)
    ref = _quiet(fit_linear, Y, X)
    with pytest.warns(UserWarning, match="minimum-norm"):
        f = _torch_acc_fit(Y, X, device, 4)
    _close(f.C, ref.C, 1e-10)
    assert f.min_norm and f.rank == 5 and f.method == "eigh"
    Y = 1e8 + rng.standard_normal((500, 4))
    C0 = rng.standard_normal((2, 4))
    X = Y @ C0.T + 1.0
    np.testing.assert_allclose(_torch_acc_fit(Y, X, device, 100).C, C0, atol=1e-6)


def test_fit_linear_tensor_input_uses_torch(rng, device):
    Y, X, _, _ = _data(rng, 120, 4, 4)
    ref = fit_linear(Y, X, holdout=0.2, seed=1)
    f = fit_linear(
        torch.from_numpy(Y).to(device), torch.from_numpy(X).to(device), holdout=0.2, seed=1
    )
    _close(f.C, ref.C, 1e-10)
    assert f.r2_heldout == pytest.approx(ref.r2_heldout, abs=1e-10)


# ---------------------------------------------------------------------------------------
# fit_surrogate


def test_surrogate_of_exact_affine_module(rng, device):
    n = 9
    lin = torch.nn.Linear(n, n).double().to(device)
    Y = rng.standard_normal((300, n)) * 3 + 1
    fit = fit_surrogate(lin, Y, chunk_size=64, batch_size=20, holdout=0.2)
    W = lin.weight.detach().cpu().numpy()
    bb = lin.bias.detach().cpu().numpy()
    np.testing.assert_allclose(fit.C, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit.b, bb, rtol=1e-10, atol=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.r2_insample == pytest.approx(1.0, abs=1e-12)
    # float32 module: exact to float32 rounding
    lin32 = torch.nn.Linear(n, n).to(device)
    fit32 = fit_surrogate(lin32, Y.astype(np.float32))
    tol = 1e-5 if device == "cpu" else 5e-3  # CUDA: TF32 may have been enabled globally
    np.testing.assert_allclose(fit32.C, lin32.weight.detach().cpu().numpy(), atol=tol)


def test_surrogate_numpy_callable_and_tensor_probes(rng):
    n = 6
    M = rng.standard_normal((n, n))
    c = rng.standard_normal(n)
    Y = rng.standard_normal((200, n))
    fit = fit_surrogate(lambda y: y @ M.T + c, Y, chunk_size=50)
    np.testing.assert_allclose(fit.C, M, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit.b, c, rtol=1e-10, atol=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    fit_t = fit_surrogate(lambda y: y @ M.T + c, torch.from_numpy(Y))
    np.testing.assert_allclose(fit_t.C, M, rtol=1e-10, atol=1e-12)
    # a nonlinear model: the fit is the least-squares fit of its outputs
    f = np.tanh
    fit = fit_surrogate(f, Y, holdout=0.3, seed=2)
    mask = holdout_mask(200, 0.3, 2)
    C, b = lstsq_fit(Y[~mask], f(Y[~mask]))
    _close(fit.C, C, 1e-10)
    assert fit.r2 == pytest.approx(r2_direct(Y[mask], f(Y[mask]), C, b), abs=1e-12)
    assert 0.5 < fit.r2 < 1


def test_surrogate_bad_models(rng):
    Y = rng.standard_normal((40, 4))
    with pytest.raises(FastinvError, match=r"model output has shape \(40, 3\) for input \(40, 4\)"):
        fit_surrogate(lambda y: y[:, :3], Y)

    def nan_at_row_25(y):
        out = y.copy()
        out[np.all(y == Y[25], axis=1)] = np.nan
        return out

    with pytest.raises(FastinvError, match=r"NaN or Inf.*rows 20\.\.39 \(first: input row 25\)"):
        fit_surrogate(nan_at_row_25, Y, chunk_size=20)

    def boom(y):
        raise RuntimeError("kaput")

    with pytest.raises(FastinvError, match=r"the model raised RuntimeError: kaput on a batch of"):
        fit_surrogate(boom, Y)
    lin = torch.nn.Linear(4, 5).double()
    with pytest.raises(FastinvError, match=r"model output has shape \(40, 5\)"):
        fit_surrogate(lin, Y)
    bad = torch.nn.Linear(3, 4).double()
    with pytest.raises(FastinvError, match="the model raised RuntimeError"):
        fit_surrogate(bad, Y)
    with pytest.raises(FastinvError, match="callable"):
        fit_surrogate(42, Y)


# ---------------------------------------------------------------------------------------
# Jacobians


def test_jacobians_linear_module_exact(rng, device):
    lin = torch.nn.Linear(5, 3).double().to(device)
    Y = rng.standard_normal((7, 5))
    J = jacobians(lin, Y, batch_size=3)
    assert J.shape == (7, 3, 5) and J.dtype == np.float64
    W = lin.weight.detach().cpu().numpy()
    for Ji in J:
        np.testing.assert_array_equal(Ji, W)
    np.testing.assert_allclose(mean_jacobian(lin, Y, batch_size=2), W, rtol=1e-15, atol=1e-16)


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_jacobians_match_finite_differences(rng, mode):
    torch.manual_seed(0)
    n = 6
    net = torch.nn.Sequential(
        torch.nn.Linear(n, 16), torch.nn.Tanh(), torch.nn.Linear(16, n)
    ).double()
    Y = rng.standard_normal((5, n))

    def f(y):
        with torch.no_grad():
            return net(torch.from_numpy(y)).numpy()

    J = jacobians(net, Y, batch_size=2, mode=mode)
    for i in range(5):
        np.testing.assert_allclose(J[i], jacobian_fd(f, Y[i]), atol=1e-7)
    np.testing.assert_allclose(
        mean_jacobian(net, Y, batch_size=4, mode=mode), J.mean(0), atol=1e-14
    )
    # float32 module: float32 Jacobians returned as float64
    J32 = jacobians(net.float(), Y.astype(np.float32))
    assert J32.dtype == np.float64
    np.testing.assert_allclose(J32, J, atol=1e-5)


def test_surrogate_torch_backend_path_on_cpu(rng, monkeypatch):
    """The CUDA code path of fit_surrogate (outputs kept as tensors), exercised on torch CPU."""
    import fastinv.linalg.surrogate as S

    monkeypatch.setattr(S, "_resolve_backend", lambda f, Y, device: ("torch", torch.device("cpu")))
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5))
    Y = rng.standard_normal((120, 5))
    fit = fit_surrogate(net, Y, chunk_size=32, batch_size=10, holdout=0.25, seed=4)
    monkeypatch.undo()
    ref = fit_surrogate(net, Y, chunk_size=32, batch_size=10, holdout=0.25, seed=4)
    _close(fit.C, ref.C, 1e-10)
    assert fit.r2 == pytest.approx(ref.r2, abs=1e-10)


def test_jacobians_refuse_when_too_big(rng, monkeypatch):
    import fastinv.linalg.jacobians as S

    monkeypatch.setattr(S, "_available_bytes", lambda: 1000.0)
    lin = torch.nn.Linear(4, 4).double()
    with pytest.raises(FastinvError, match="mean_jacobian"):
        jacobians(lin, rng.standard_normal((10, 4)))
    np.testing.assert_allclose(
        mean_jacobian(lin, rng.standard_normal((10, 4))), lin.weight.detach().numpy(), rtol=1e-15
    )


@pytest.mark.parametrize("holdout", [0.0, 0.3])
def test_surrogate_moments_of_parts_merge_to_the_one_pass_fit(rng, holdout):
    """Parts that tile the probe set (one of them entirely held out or empty), accumulated
    apart and merged, give the fit of one pass: C, b, R² against lstsq on the fitted rows."""
    N, n, m = 90, 5, 7  # a rectangular model: (N, 5) -> (N, 7)
    W = rng.standard_normal((m, n))

    def f(y):
        return np.tanh(y @ W.T) + 0.5

    Y = rng.standard_normal((N, n))
    one = fit_surrogate(f, Y, holdout=holdout, seed=4, n_out=m)
    merged = MomentAccumulator(n, m)
    for lo, hi in ((0, 31), (31, 31), (31, 60), (60, 90)):
        part = surrogate_moments(
            f, Y[lo:hi], start=lo, total=N, holdout=holdout, seed=4, n_out=m, chunk_size=8
        )
        merged.merge(part)
    fit = fit_surrogate(f, Y, holdout=holdout, seed=4, n_out=m, moments=merged)
    mask = holdout_mask(N, holdout, 4)
    keep = np.ones(N, bool) if mask is None else ~mask
    C, b = lstsq_fit(Y[keep], f(Y[keep]))
    _close(fit.C, C, 1e-10)
    _close(fit.C, one.C, 1e-10)
    np.testing.assert_allclose(fit.b, b, rtol=1e-10, atol=1e-12)
    assert fit.n_samples == keep.sum() == one.n_samples
    held = ~keep if mask is not None else keep
    assert fit.r2 == pytest.approx(r2_direct(Y[held], f(Y[held]), C, b), abs=1e-12)
    assert fit.r2 == pytest.approx(one.r2, abs=1e-12)


def test_fit_surrogate_with_moments_runs_the_model_only_on_held_out_rows(rng):
    Y = rng.standard_normal((60, 4))
    calls = []

    def f(y):
        calls.append(y.shape[0])
        return 2.0 * y

    acc = surrogate_moments(f, Y, holdout=0.25, seed=1)
    assert sum(calls) == 45
    calls.clear()
    fit = fit_surrogate(f, Y, holdout=0.25, seed=1, moments=acc)
    assert sum(calls) == 15 and fit.n_heldout == 15
    _close(fit.C, 2.0 * np.eye(4), 1e-12)


def test_surrogate_moments_refusals(rng):
    Y = rng.standard_normal((40, 4))

    def f(y):
        return y

    with pytest.raises(FastinvError, match=r"rows 30 \.\. 70 of a probe set of total = 60"):
        surrogate_moments(f, Y, start=30, total=60)
    part = surrogate_moments(f, Y[:20], total=40, holdout=0.25, seed=0)
    with pytest.raises(FastinvError, match="moments hold 1[0-9] rows, but 40 probes with 10 held"):
        fit_surrogate(f, Y, holdout=0.25, seed=0, moments=part)
    with pytest.raises(FastinvError, match="inputs of width 4 and outputs of width 4, but the"):
        fit_surrogate(f, Y[:, :3], moments=surrogate_moments(f, Y))
    with pytest.raises(FastinvError, match="moments must be a MomentAccumulator"):
        fit_surrogate(f, Y, moments="all of them")
