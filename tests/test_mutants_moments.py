"""Tests that kill surviving mutants of fastinv/linalg/moments.py and surrogate.py (issue 15).

Every value is checked against tests/naive.py (two-pass moments, lstsq, the direct R²) or a
closed form; error messages by what they blame.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from naive import centred_moments, lstsq_fit, r2_direct

from fastinv.errors import FastinvError
from fastinv.linalg.moments import LinearFit, MomentAccumulator
from fastinv.linalg.surrogate import fit_linear, fit_surrogate, holdout_mask, surrogate_moments


def _data(seed, N, n_in, n_out, *, offset=0.0, noise=0.3):
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((N, n_in)) + offset
    C0 = rng.standard_normal((n_out, n_in))
    b0 = 3.0 + rng.standard_normal(n_out)
    X = Y @ C0.T + b0 + noise * rng.standard_normal((N, n_out))
    return Y, X


def _acc(Y, X, chunk=25):
    acc = MomentAccumulator(Y.shape[1], X.shape[1])
    for a in range(0, Y.shape[0], chunk):
        acc.update(Y[a : a + chunk], X[a : a + chunk])
    return acc


def _check_moments(acc, Y, X, rtol=1e-10):
    my, mx, Myy, Mxy, txx = centred_moments(Y, X)
    m = acc.moments()
    assert m["n"] == Y.shape[0]
    np.testing.assert_allclose(m["mean_y"], my, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(m["mean_x"], mx, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(acc.mean_x, mx, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(m["M_yy"], Myy, rtol=0, atol=rtol * np.abs(Myy).max())
    np.testing.assert_allclose(m["M_xy"], Mxy, rtol=0, atol=rtol * np.abs(Mxy).max())
    assert m["trace_M_xx"] == pytest.approx(txx, rel=rtol)


def _check_fit(fit, Y, X, *, intercept=True, rtol=1e-9):
    C, b = lstsq_fit(Y, X, intercept=intercept)
    np.testing.assert_allclose(fit.C, C, rtol=0, atol=rtol * max(1.0, np.abs(C).max()))
    np.testing.assert_allclose(fit.b, b, rtol=0, atol=rtol * max(1.0, np.abs(b).max()))
    r2 = r2_direct(Y, X, C, b)
    assert 1 - fit.r2 == pytest.approx(1 - r2, rel=1e-6)
    assert fit.r2_insample == fit.r2


# --------------------------------------------------------------------------------------------
# merges: all three paths against one two-pass computation


@pytest.mark.parametrize(
    ("offset_a", "offset_b"),
    [(0.0, 0.0), (5.0, -5.0), (0.0, 40.0), (1e6, 1e6 + 3.0), (-20.0, 0.0)],
)
def test_merge_moments_and_fit_equal_two_pass(offset_a, offset_b):
    Ya, Xa = _data(1, 90, 4, 3, offset=offset_a)
    Yb, Xb = _data(2, 60, 4, 3, offset=offset_b)
    Xb = Xb + 2.0 * offset_b  # the outputs' means differ too: the between-group term counts
    Y, X = np.vstack([Ya, Yb]), np.vstack([Xa, Xb])
    acc = _acc(Ya, Xa).merge(_acc(Yb, Xb, chunk=17))
    rtol = 1e-10 if max(abs(offset_a), abs(offset_b)) < 1e3 else 1e-6
    _check_moments(acc, Y, X, rtol=rtol)
    fit = acc.solve()
    C, b = lstsq_fit(Y, X)
    np.testing.assert_allclose(fit.C, C, rtol=0, atol=rtol * 100 * np.abs(C).max())
    assert 1 - fit.r2 == pytest.approx(1 - r2_direct(Y, X, C, b), rel=1e-5)
    # merging the other way round gives the same
    acc2 = _acc(Yb, Xb).merge(_acc(Ya, Xa))
    _check_moments(acc2, Y, X, rtol=rtol)
    # and a merged accumulator keeps accumulating correctly
    Yc, Xc = _data(3, 30, 4, 3, offset=offset_b)
    acc.update(Yc, Xc)
    _check_moments(acc, np.vstack([Y, Yc]), np.vstack([X, Xc]), rtol=rtol)


def test_merge_with_equal_shifts_adds_the_sums():
    # centred data: every column's shift is 0 in both parts, so the sums simply add
    rng = np.random.default_rng(21)
    Y = rng.standard_normal((120, 3))
    X = Y @ rng.standard_normal((2, 3)).T + 0.5 * rng.standard_normal((120, 2))
    X -= X.mean(0)
    Y -= Y.mean(0)
    a, b = _acc(Y[:70], X[:70]), _acc(Y[70:], X[70:])
    assert not (a._shift_y.any() or a._shift_x.any() or b._shift_y.any() or b._shift_x.any())
    acc = a.merge(b)
    _check_moments(acc, Y, X)
    _check_fit(acc.solve(), Y, X)
    _check_moments(b, Y[70:], X[70:])  # the merged-in accumulator is unchanged


def test_merge_into_empty_and_of_empty():
    Y, X = _data(4, 50, 3, 2, offset=7.0)
    full = _acc(Y, X)
    empty = MomentAccumulator(3, 2)
    assert empty.merge(full) is empty
    _check_moments(empty, Y, X)
    # the source is unchanged and independent of the copy
    empty.update(Y[:5], X[:5])
    _check_moments(full, Y, X)
    assert full.merge(MomentAccumulator(3, 2)) is full
    _check_moments(full, Y, X)
    # a merged-into-empty accumulator merges on with others
    Y2, X2 = _data(5, 40, 3, 2, offset=-2.0)
    acc = MomentAccumulator(3, 2).merge(_acc(Y, X)).merge(_acc(Y2, X2))
    _check_moments(acc, np.vstack([Y, Y2]), np.vstack([X, X2]))


def test_merge_refusals_say_why():
    a = MomentAccumulator(3, 2)
    with pytest.raises(FastinvError, match=r"^can only merge a MomentAccumulator, got dict$"):
        a.merge({})
    with pytest.raises(
        FastinvError,
        match=r"^cannot merge an accumulator of shape \(3, 4\) into one of shape \(3, 2\)",
    ):
        a.merge(MomentAccumulator(3, 4))
    with pytest.raises(FastinvError, match=r"shape \(2, 2\) into one of shape \(3, 2\)"):
        a.merge(MomentAccumulator(2, 2))
    Y, X = _data(6, 20, 3, 2)
    used = _acc(Y, X)
    used.solve(in_place=True)
    with pytest.raises(FastinvError, match=r"^this accumulator was consumed by an in-place"):
        a.merge(used)
    with pytest.raises(FastinvError, match=r"^this accumulator was consumed"):
        used.merge(a)
    with pytest.raises(FastinvError, match=r"^this accumulator was consumed"):
        used.update(Y, X)
    with pytest.raises(FastinvError, match=r"^this accumulator was consumed"):
        used.moments()
    with pytest.raises(FastinvError, match=r"^the accumulator holds no samples; call update"):
        _ = MomentAccumulator(3, 2).mean_x
    with pytest.raises(
        FastinvError, match=r"^the accumulator holds no samples; call update\(\) first$"
    ):
        MomentAccumulator(3, 2).moments()


# --------------------------------------------------------------------------------------------
# solve


@pytest.mark.parametrize("offset", [0.0, 4.0])
def test_solve_without_intercept_uses_raw_moments(offset):
    Y, X = _data(7, 80, 5, 3, offset=offset)
    fit = _acc(Y, X).solve(intercept=False)
    C, _ = lstsq_fit(Y, X, intercept=False)
    np.testing.assert_allclose(fit.C, C, rtol=0, atol=1e-9 * np.abs(C).max())
    np.testing.assert_array_equal(fit.b, np.zeros(3))
    assert fit.intercept is False
    assert 1 - fit.r2 == pytest.approx(1 - r2_direct(Y, X, C, np.zeros(3)), rel=1e-7)


def test_solve_in_place_equals_copy_and_keeps_state():
    Y, X = _data(8, 70, 4, 4, offset=-3.0)
    acc = _acc(Y, X)
    f1 = acc.solve()
    _check_moments(acc, Y, X)  # state unchanged by a default solve
    f2 = acc.solve()
    np.testing.assert_array_equal(f1.C, f2.C)
    f3 = acc.solve(in_place=True)
    np.testing.assert_allclose(f3.C, f1.C, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f3.b, f1.b, rtol=0, atol=1e-12)
    _check_fit(f1, Y, X)
    assert (f1.n_samples, f1.rank, f1.method, f1.min_norm) == (70, 4, "cholesky", False)
    assert f1.r2_heldout is None and f1.n_heldout == 0 and f1.ridge == 0.0


def test_constant_targets_give_nan_r2():
    Y, _ = _data(9, 30, 2, 1)
    X = np.full((30, 2), 5.0)
    fit = _acc(Y, X).solve()
    assert math.isnan(fit.r2)
    np.testing.assert_allclose(fit.b, [5.0, 5.0], atol=1e-12)
    assert fit.to_dict()["r2"] is None


def test_min_norm_warnings_say_why():
    Y, X = _data(10, 3, 5, 2)
    with pytest.warns(UserWarning) as rec:
        _acc(Y, X).solve()
    assert str(rec[0].message) == (
        "only N = 3 samples for n = 5 input dimensions plus an intercept: the fit is the "
        "minimum-norm solution, of rank <= N (rank 2); use at least 6 samples for a unique fit"
    )
    with pytest.warns(UserWarning) as rec:
        _acc(Y, X).solve(intercept=False)
    assert str(rec[0].message).startswith("only N = 3 samples for n = 5 input dimensions: ")
    assert "(rank 3); use at least 5 samples" in str(rec[0].message)
    Y, X = _data(11, 40, 3, 2)
    Y = np.hstack([Y, Y[:, :1]])
    with pytest.warns(UserWarning) as rec:
        _acc(Y, X).solve()
    assert str(rec[0].message) == (
        "the inputs are numerically rank-deficient (rank 3 of n = 4, N = 40 samples): the fit "
        "is the minimum-norm solution"
    )


# --------------------------------------------------------------------------------------------
# LinearFit: predict, score, to_dict


def test_predict_includes_the_intercept_in_both_dtypes():
    Y, X = _data(12, 60, 3, 2, offset=2.0)
    fit = fit_linear(Y, X)
    ref = Y @ fit.C.T + fit.b
    np.testing.assert_allclose(fit.predict(Y), ref, rtol=1e-13)
    with pytest.raises(FastinvError, match=r"^Y must have shape \(m, 3\), got \(60, 2\)$"):
        fit.predict(Y[:, :2])
    np.testing.assert_allclose(fit.predict(Y.astype(np.float32)), ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        fit.predict(Y.astype(np.int64)), Y.astype(np.int64) @ fit.C.T + fit.b
    )


def test_score_is_r2_on_new_data_in_any_chunking():
    Y, X = _data(13, 120, 4, 3, noise=1.0)
    fit = fit_linear(Y[:60], X[:60])
    r2 = r2_direct(Y[60:], X[60:], fit.C, fit.b)
    for chunk in (None, 1, 7, 60):
        assert fit.score(Y[60:], X[60:], chunk_size=chunk) == pytest.approx(r2, abs=1e-12)
    with pytest.raises(FastinvError, match=r"^X has 5 rows but Y has 6; pass one target row"):
        fit.score(Y[:6], X[:5])
    with pytest.raises(FastinvError, match=r"^Y must have shape \(m, 4\)"):
        fit.score(Y[:, :3], X)
    with pytest.raises(FastinvError, match=r"^X must have shape \(m, 3\)"):
        fit.score(Y, X[:, :2])
    assert math.isnan(fit.score(Y, np.ones_like(X)))


def test_to_dict_values():
    Y, X = _data(14, 50, 3, 2)
    fit = fit_linear(Y, X, ridge=0.25)
    d = fit.to_dict()
    assert d == {
        "n_in": 3,
        "n_out": 2,
        "r2": fit.r2,
        "r2_heldout": None,
        "r2_insample": fit.r2,
        "rank": 3,
        "n_samples": 50,
        "n_heldout": 0,
        "min_norm": False,
        "cond": fit.cond,
        "method": "cholesky",
        "ridge": 0.25,
        "intercept": True,
        "C_fro_norm": pytest.approx(np.linalg.norm(fit.C)),
        "b_norm": pytest.approx(np.linalg.norm(fit.b)),
    }
    fit.cond = float("inf")
    fit.r2_heldout = float("nan")
    d = fit.to_dict()
    assert d["cond"] == float("inf") and d["r2_heldout"] is None


def test_linear_fit_defaults():
    fit = LinearFit(
        C=np.eye(2), b=np.zeros(2), r2=0.5, r2_heldout=None, rank=2, n_samples=3,
        min_norm=False, cond=1.0, method="cholesky", ridge=0.0, intercept=True,
    )  # fmt: skip
    assert math.isnan(fit.r2_insample) and fit.n_heldout == 0
    assert (fit.n_in, fit.n_out) == (2, 2)


# --------------------------------------------------------------------------------------------
# fit_linear / fit_surrogate: the holdout path and the reported R²


def test_holdout_fit_reports_the_heldout_r2_and_counts():
    Y, X = _data(15, 200, 3, 3, noise=1.0, offset=1.5)
    fit = fit_linear(Y, X, holdout=0.2, seed=5, chunk_size=33)
    held = np.zeros(200, dtype=bool)
    held[np.random.default_rng(5).choice(200, size=40, replace=False)] = True
    C, b = lstsq_fit(Y[~held], X[~held])
    np.testing.assert_allclose(fit.C, C, atol=1e-10)
    np.testing.assert_allclose(fit.b, b, atol=1e-10)
    r2h = r2_direct(Y[held], X[held], C, b)
    assert fit.r2 == pytest.approx(r2h, abs=1e-12)
    assert fit.r2_heldout == pytest.approx(r2h, abs=1e-12)
    assert fit.r2_insample == pytest.approx(r2_direct(Y[~held], X[~held], C, b), abs=1e-12)
    assert (fit.n_samples, fit.n_heldout) == (160, 40)
    with pytest.raises(FastinvError, match=r"^holdout=0.9 of N=3 rows leaves 3 held-out and 0"):
        fit_linear(Y[:3], X[:3], holdout=0.9)
    with pytest.warns(UserWarning, match="minimum-norm"):  # 1 training row: allowed
        assert fit_linear(Y[:3], X[:3], holdout=0.5).n_heldout == 2
    with pytest.raises(FastinvError, match=r"^holdout=0.2 of N=5 rows leaves 1 held-out and 4"):
        fit_linear(Y[:5], X[:5], holdout=0.2)
    with pytest.warns(UserWarning, match="minimum-norm"):
        assert fit_linear(Y[:4], X[:4], holdout=0.5).n_heldout == 2


def test_fit_surrogate_of_an_affine_callable_recovers_it():
    rng = np.random.default_rng(16)
    C0, b0 = rng.standard_normal((4, 4)), rng.standard_normal(4)
    Y = rng.standard_normal((80, 4))

    def f(y):
        return y @ C0.T + b0 + 0.1 * np.sin(7 * y)

    X = f(Y)
    fit = fit_surrogate(f, Y, holdout=0.25, seed=1, chunk_size=9, batch_size=4)
    held = np.zeros(80, dtype=bool)
    held[np.random.default_rng(1).choice(80, size=20, replace=False)] = True
    C, b = lstsq_fit(Y[~held], X[~held])
    np.testing.assert_allclose(fit.C, C, atol=1e-10)
    np.testing.assert_allclose(fit.b, b, atol=1e-10)
    assert fit.r2 == pytest.approx(r2_direct(Y[held], X[held], C, b), abs=1e-12)
    fit = fit_surrogate(f, Y, intercept=False)
    C, _ = lstsq_fit(Y, X, intercept=False)
    np.testing.assert_allclose(fit.C, C, atol=1e-10)
    with pytest.raises(FastinvError, match=r"^Y must have at least one row and one column"):
        fit_surrogate(f, np.zeros((0, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_surrogate(f, Y, ridge=0.5)


# --------------------------------------------------------------------------------------------
# surrogate_moments, fit_surrogate(moments=...) and the probes' checks (data-parallel entry)


def _recorder(M=None, c=0.0):
    """An affine model y -> y Mᵀ + c that records the rows of each call."""
    calls = []

    def f(y):
        calls.append(y.shape[0])
        return y if M is None else y @ M.T + c

    return f, calls


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f: fit_surrogate(f, np.ones(3)), "Y must be a 2-D array, got shape (3,)"),
        (lambda f: surrogate_moments(f, np.ones(3)), "Y must be a 2-D array, got shape (3,)"),
        (lambda f: fit_surrogate(f, np.ones((4, 3)), n_out=0),
         "n_out must be a positive integer, got 0"),
        (lambda f: fit_surrogate(f, np.ones((4, 3)), batch_size=0),
         "batch_size must be a positive integer, got 0"),
        (lambda f: surrogate_moments(f, np.ones((4, 3)), start=-1),
         "start must be an integer >= 0, got -1"),
        (lambda f: surrogate_moments(f, np.ones((4, 3)), total=0),
         "total must be a positive integer, got 0"),
        (lambda f: surrogate_moments(f, np.ones((0, 3)), n_out=0),
         "n_out must be a positive integer, got 0"),
        (lambda f: surrogate_moments(f, np.ones((0, 0))),
         "Y must have at least one row and one column, got shape (0, 0)"),
        (lambda f: fit_surrogate(f, np.ones((4, 3)), moments="all"),
         "moments must be a MomentAccumulator (from surrogate_moments), got str"),
        (lambda f: fit_surrogate(f, np.ones((4, 3)), moments=MomentAccumulator(3, 2)),
         "moments are of inputs of width 3 and outputs of width 2, but the probes have 3 "
         "columns and the model 3 outputs; accumulate them from the same probes and model"),
        (lambda f: fit_surrogate(f, np.ones((4, 3)), moments=MomentAccumulator(3, 3)),
         "moments hold 0 rows, but 4 probes with 0 held out leave 4 to fit; accumulate them "
         "with surrogate_moments over parts that tile all the probes, with the same holdout "
         "and seed"),
    ],
)  # fmt: skip
def test_surrogate_argument_messages(call, message):
    f, _ = _recorder()
    with pytest.raises(FastinvError) as err:
        call(f)
    assert str(err.value) == message


def test_surrogate_smallest_valid_sizes():
    """One input column, one output, one row per batch, a probe set of one row."""
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((30, 1))
    f, calls = _recorder(np.array([[2.5]]), 1.0)
    fit = fit_surrogate(f, Y, batch_size=1)
    assert calls == [1] * 30
    np.testing.assert_allclose(fit.C, [[2.5]], rtol=1e-12)
    np.testing.assert_allclose(fit.b, [1.0], atol=1e-12)
    M = rng.standard_normal((1, 3))
    g, _ = _recorder(M)
    Y3 = rng.standard_normal((20, 3))
    np.testing.assert_allclose(fit_surrogate(g, Y3, n_out=1).C, M, rtol=1e-10)
    one = surrogate_moments(f, Y[:1], total=1)
    assert (one.n_in, one.n_out, one.n_samples) == (1, 1, 1)


def test_surrogate_moments_of_an_empty_part():
    f, calls = _recorder()
    acc = surrogate_moments(f, np.ones((0, 4)), start=3, total=10, n_out=6)
    assert (acc.n_in, acc.n_out, acc.n_samples, calls) == (4, 6, 0, [])
    acc = surrogate_moments(f, np.ones((0, 1)), total=10)
    assert (acc.n_in, acc.n_out, acc.n_samples) == (1, 1, 0)


def test_surrogate_moments_honours_chunks_batches_and_defaults():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((50, 3))
    M = rng.standard_normal((3, 3))
    f, calls = _recorder(np.tanh(M))
    surrogate_moments(f, Y, chunk_size=8, batch_size=3)
    assert calls == [3, 3, 2] * 6 + [2]  # 6 chunks of 8, one of 2; batches of 3 inside
    calls.clear()
    surrogate_moments(f, Y, chunk_size=8)
    assert calls == [8] * 6 + [2]
    # the defaults (start 0, seed 0) are fit_surrogate's: its one-pass fit is reproduced
    nonlin = np.tanh
    one = fit_surrogate(nonlin, Y, holdout=0.2)
    via = fit_surrogate(nonlin, Y, holdout=0.2, moments=surrogate_moments(nonlin, Y, holdout=0.2))
    np.testing.assert_allclose(via.C, one.C, rtol=1e-12, atol=1e-14)
    assert via.r2 == pytest.approx(one.r2, abs=1e-14)


def test_surrogate_moments_name_bad_rows_by_their_number_in_the_whole_set():
    Y = np.ones((20, 3))
    Y[7, 1] = np.nan
    f, _ = _recorder()
    with pytest.raises(FastinvError, match=r"row 57\b"):
        surrogate_moments(f, Y, start=50, total=100, chunk_size=4)

    def nan_at_row_4(y):
        out = y.copy()
        if y.shape[0] > 4:
            out[4] = np.nan
        return out

    with pytest.raises(FastinvError, match=r"first: input row 54\)"):
        surrogate_moments(nan_at_row_4, np.ones((20, 3)), start=50, total=100, chunk_size=8)


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a CPU-only machine"
)
def test_surrogate_moments_honours_the_device():
    f, _ = _recorder()
    with pytest.raises(FastinvError, match="CUDA"):
        surrogate_moments(f, np.ones((4, 3)), device="cuda")


def test_score_names_bad_rows_by_number():
    Y, X = _data(3, 40, 3, 2)
    fit = fit_linear(Y, X)
    X[9, 0] = np.inf
    with pytest.raises(FastinvError, match=r"row 9\b"):
        fit.score(Y, X, chunk_size=4)


def test_r2_of_one_row_and_of_small_outputs():
    """Held-out R² of a single row is undefined (no spread about its own mean): NaN; outputs
    of size 1e-3 have Σ‖x − x̄‖² < 1 and still a defined R²."""
    Y, X = _data(4, 60, 3, 2)
    X = 1e-3 * X
    fit = fit_linear(Y[:40], X[:40])
    assert math.isnan(fit.score(Y[40:41], X[40:41]))
    C, b = lstsq_fit(Y[:40], X[:40])
    assert fit.score(Y[40:], X[40:]) == pytest.approx(r2_direct(Y[40:], X[40:], C, b), abs=1e-10)


def _heldout_problem():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((40, 3))
    X = Y @ np.ones((3, 2)) + 0.1 * rng.standard_normal((40, 2))
    mask = holdout_mask(40, 0.25, 0)
    return Y, X, mask, int(np.flatnonzero(mask)[1])


def test_bad_held_out_rows_are_named_by_array_and_row():
    """Held-out rows are first read in the scoring pass: NaN/Inf there is named by array,
    row and column, and squares that overflow by the rows of their chunk."""
    Y, X, mask, r = _heldout_problem()
    Yb = Y.copy()
    Yb[r, 1] = np.nan
    with pytest.raises(FastinvError) as err:
        fit_linear(Yb, X, holdout=0.25, seed=0, chunk_size=8)
    assert str(err.value) == (
        f"Y has a non-finite value (nan) at row {r}, column 1; remove or replace NaN/Inf entries"
    )
    Xb = X.copy()
    Xb[r, 0] = np.inf
    with pytest.raises(FastinvError) as err:
        fit_linear(Y, Xb, holdout=0.25, seed=0, chunk_size=8)
    assert str(err.value) == (
        f"X has a non-finite value (inf) at row {r}, column 0; remove or replace NaN/Inf entries"
    )
    Xb[r, 0] = 1e200
    held = np.flatnonzero(mask[:8])
    with pytest.raises(FastinvError) as err:
        fit_linear(Y, Xb, holdout=0.25, seed=0, chunk_size=8)
    assert str(err.value) == (
        f"the residuals of rows {held[0]}..{held[-1]} overflowed; rescale the data"
    )


def test_a_model_failing_on_a_held_out_row_is_named_by_that_row():
    Y, X, mask, r = _heldout_problem()
    marker = Y[r, 0]

    def f(y):
        out = 2.0 * y
        out[y[:, 0] == marker] = np.nan
        return out

    with pytest.raises(FastinvError, match=rf"\(first: input row {r}\)"):
        fit_surrogate(f, Y, holdout=0.25, seed=0, chunk_size=8)


def test_score_messages_name_the_array():
    Y, X, _, _ = _heldout_problem()
    fit = fit_linear(Y, X)
    Yb = Y.copy()
    Yb[9, 0] = np.nan
    with pytest.raises(FastinvError) as err:
        fit.score(Yb, X, chunk_size=4)
    assert str(err.value) == (
        "Y has a non-finite value (nan) at row 9, column 0; remove or replace NaN/Inf entries"
    )
    Xb = X.copy()
    Xb[9, 1] = -np.inf
    with pytest.raises(FastinvError) as err:
        fit.score(Y, Xb, chunk_size=4)
    assert str(err.value) == (
        "X has a non-finite value (-inf) at row 9, column 1; remove or replace NaN/Inf entries"
    )


@pytest.mark.parametrize("h", [-0.1, 1.0, 1.5])
def test_holdout_fraction_message(h):
    Y, X, _, _ = _heldout_problem()
    with pytest.raises(FastinvError) as err:
        fit_linear(Y, X, holdout=h)
    assert str(err.value) == f"holdout must be a finite number in [0, 1), got {h}"


def test_fit_linear_messages_name_the_array():
    Y, X, _, _ = _heldout_problem()
    Yb = Y.copy()
    Yb[5, 2] = np.nan
    with pytest.raises(FastinvError) as err:
        fit_linear(Yb, X, chunk_size=4)
    assert str(err.value) == (
        "Y has a non-finite value (nan) at row 5, column 2; remove or replace NaN/Inf entries"
    )


def test_moments_given_to_fit_surrogate_are_used_up():
    """The merged moments are solved in place (no second n x n copy): the accumulator is
    consumed, as the docstring says."""
    Y, _, _, _ = _heldout_problem()
    acc = surrogate_moments(np.tanh, Y)
    fit_surrogate(np.tanh, Y, moments=acc)
    with pytest.raises(FastinvError, match="consumed by an in-place solve"):
        acc.update(Y, np.tanh(Y))


def test_the_min_norm_warning_points_at_the_caller():
    Y, X, _, _ = _heldout_problem()
    with pytest.warns(UserWarning) as rec:
        fit_linear(Y[:2], X[:2])
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning) as rec:
        fit_surrogate(np.tanh, Y[:2])
    assert rec[0].filename == __file__


def test_solve_messages_and_small_outputs():
    acc = MomentAccumulator(2, 2)
    with pytest.raises(FastinvError) as err:
        acc.solve()
    assert str(err.value) == (
        "the accumulator holds no samples; call update() with data before solve()"
    )
    Y, X, _, _ = _heldout_problem()
    acc.update(Y[:, :2], X)
    with pytest.raises(FastinvError) as err:
        acc.solve(ridge=-1)
    assert str(err.value) == "ridge must be a finite number >= 0, got -1"
    # outputs of size 1e-3: Σ‖x − x̄‖² < 1, and R² is still defined (against lstsq)
    small = MomentAccumulator(3, 2).update(Y, 1e-3 * X).solve()
    C, b = lstsq_fit(Y, 1e-3 * X)
    assert small.r2 == pytest.approx(r2_direct(Y, 1e-3 * X, C, b), abs=1e-10)


def test_the_solve_warning_points_at_the_caller():
    Y, X, _, _ = _heldout_problem()
    few = MomentAccumulator(3, 2).update(Y[:2], X[:2])
    with pytest.warns(UserWarning) as rec:
        few.solve()
    assert rec[0].filename == __file__  # the caller of solve(), not moments.py


def test_holdout_and_part_messages_in_full():
    with pytest.raises(FastinvError) as err:
        holdout_mask(5, 0.2, 0)
    assert str(err.value) == (
        "holdout=0.2 of N=5 rows leaves 1 held-out and 4 training rows; use more rows or a "
        "holdout fraction that leaves at least 2 of each"
    )
    with pytest.raises(FastinvError) as err:
        surrogate_moments(np.tanh, np.ones((40, 3)), start=30, total=60)
    assert str(err.value) == (
        "Y holds rows 30 .. 70 of a probe set of total = 60 rows; give start and total so that "
        "the part lies inside the set"
    )
