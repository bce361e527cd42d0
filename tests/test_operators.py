"""Tests for fastinv.problem.operators: the catalogue against its published definitions, the loader,
and the error messages."""

from __future__ import annotations

import json
import math

import naive
import numpy as np
import pytest
import scipy.io
import scipy.linalg
import scipy.sparse

from fastinv.errors import FastinvError
from fastinv.problem.operators import (
    Operator,
    list_operators,
    load_operator,
    make_operator,
    random_singular_values,
)

ALL = [
    "shaw",
    "deriv2",
    "heat",
    "phillips",
    "baart",
    "foxgood",
    "gravity",
    "wing",
    "blur1d",
    "blur2d",
    "superres",
    "inpaint",
    "random",
    "identity",
]


# --------------------------------------------------------------------------------------
# against literal transcriptions of the MATLAB code
# --------------------------------------------------------------------------------------

HANSEN_CASES = [
    ("shaw", {}, [2, 4, 10, 32]),
    ("deriv2", {"example": 1}, [1, 3, 10, 17]),
    ("deriv2", {"example": 2}, [1, 5, 16]),
    ("deriv2", {"example": 3}, [2, 10, 16]),
    ("heat", {}, [2, 4, 20, 40]),
    ("heat", {"kappa": 5.0}, [6, 30]),
    ("phillips", {}, [4, 8, 20, 32]),
    ("baart", {}, [2, 4, 10, 32]),
    ("foxgood", {}, [1, 7, 32]),
    ("gravity", {"example": 1}, [1, 9, 32]),
    ("gravity", {"example": 2}, [1, 2, 3, 8, 31]),
    ("gravity", {"example": 3}, [1, 8, 31]),
    ("gravity", {"example": 1, "a": -0.5, "b": 1.5, "d": 0.1}, [12]),
    ("wing", {}, [1, 9, 32]),
    ("wing", {"t1": 0.1, "t2": 0.45}, [20]),
]


@pytest.mark.parametrize("name,params,ns", HANSEN_CASES)
def test_matches_literal_matlab_transcription(name, params, ns):
    for n in ns:
        op = make_operator(name, n, **params)
        A, b, x = getattr(naive, name)(n, **params)
        scale = np.abs(A).max()
        np.testing.assert_allclose(op.A, A, rtol=1e-13, atol=1e-15 * scale, err_msg=f"{name} {n}")
        np.testing.assert_allclose(op.x, x, rtol=1e-13, atol=1e-15 * np.abs(x).max())
        np.testing.assert_allclose(op.b, b, rtol=1e-12, atol=1e-14 * np.abs(b).max())


def test_shaw_is_bitwise_the_matlab_loop():
    for n in (2, 6, 16):
        np.testing.assert_array_equal(make_operator("shaw", n).A, naive.shaw(n)[0])


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n", [4, 16, 36])
def test_shape_dtype_layout(name, n):
    op = make_operator(name, n)
    m = n // 4 if name == "superres" else n  # every 2nd pixel of a square image kept
    assert op.A.shape == (m, n)
    assert op.A.dtype == np.float64
    assert op.A.flags.c_contiguous
    assert op.n == n and op.name == name
    assert np.isfinite(op.A).all()
    if name == "random":
        assert op.x is None and op.b is None
    else:
        assert op.x.shape == (n,) and op.b.shape == (m,)
        assert op.x.dtype == np.float64 and op.b.dtype == np.float64


@pytest.mark.parametrize("name", ["shaw", "deriv2", "phillips", "foxgood", "gravity", "blur1d"])
def test_symmetric_problems_are_exactly_symmetric(name):
    A = make_operator(name, 64).A
    np.testing.assert_array_equal(A, A.T)


@pytest.mark.parametrize("name", ["baart", "wing", "heat", "random"])
def test_nonsymmetric_problems(name):
    A = make_operator(name, 64).A
    assert np.abs(A - A.T).max() > 1e-3 * np.abs(A).max()


def test_gravity_symmetric_toeplitz_only_on_unit_interval():
    A = make_operator("gravity", 40).A
    np.testing.assert_allclose(A, scipy.linalg.toeplitz(A[0]), rtol=1e-14)  # to rounding
    B = make_operator("gravity", 40, a=-0.5, b=1.5).A
    assert not np.allclose(B, B.T)


# --------------------------------------------------------------------------------------
# hand-computed small cases and derivable facts
# --------------------------------------------------------------------------------------


def test_shaw_n2_by_hand():
    # h = pi/2, t = -pi/4, pi/4: cos t = sqrt(2)/2 both, u = pi (sin s + sin t).
    # A11 = h (2 cos)^2 (sin u/u)^2 with u = -pi sqrt 2; A12 = h (2 cos)^2 (the u -> 0 limit).
    h = math.pi / 2
    u = -math.pi * math.sqrt(2)
    a11 = h * 2.0 * (math.sin(u) / u) ** 2
    a12 = h * 2.0
    op = make_operator("shaw", 2)
    np.testing.assert_allclose(op.A, [[a11, a12], [a12, a11]], rtol=1e-14)
    t = np.array([-math.pi / 4, math.pi / 4])
    x = 2 * np.exp(-6 * (t - 0.8) ** 2) + np.exp(-2 * (t + 0.5) ** 2)
    np.testing.assert_allclose(op.x, x, rtol=1e-14)


def test_shaw_persymmetric():
    A = make_operator("shaw", 20).A
    np.testing.assert_array_equal(A, A[::-1, ::-1])


def test_heat_small_by_hand():
    # n = 2: h = 1/2, t = 1/4, 3/4; k(t) = h/(2 sqrt(pi)) t^-1.5 exp(-1/(4t)); lower Toeplitz.
    def k(t, kappa=1.0):
        return 0.5 / (2 * kappa * math.sqrt(math.pi)) * t**-1.5 * math.exp(-1 / (4 * kappa**2 * t))

    op = make_operator("heat", 2)
    np.testing.assert_allclose(op.A, [[k(0.25), 0.0], [k(0.75), k(0.25)]], rtol=1e-14)
    # x_1: t_1 = 20 * 1/2 = 10 >= 3 -> 0.75 exp(-2 * 7); second half zero
    np.testing.assert_allclose(op.x, [0.75 * math.exp(-14), 0.0], rtol=1e-14)

    op = make_operator("heat", 4, kappa=2.0)
    h = 0.25
    col = [
        h / (2 * 2.0 * math.sqrt(math.pi)) * t**-1.5 * math.exp(-1 / (16 * t))
        for t in (0.125, 0.375, 0.625, 0.875)
    ]
    np.testing.assert_allclose(op.A, scipy.linalg.toeplitz(col, np.r_[col[0], 0, 0, 0]))


def test_heat_lower_triangular_toeplitz_and_solution():
    op = make_operator("heat", 40)
    A = op.A
    assert np.array_equal(A, np.tril(A))
    assert np.array_equal(A, scipy.linalg.toeplitz(A[:, 0], np.r_[A[0, 0], np.zeros(39)]))
    # the solution: first half built from t = 20 i / n, second half zero; values at the kinks
    x = op.x
    assert np.all(x[20:] == 0)
    np.testing.assert_allclose(x[3], 0.75 * 2.0**2 / 4)  # t = 2 -> second branch = 0.75
    np.testing.assert_allclose(x[5], 0.75)  # t = 3 -> third branch = 0.75
    assert x.max() == pytest.approx(1.0, abs=0.01)  # 0.75 + 1/4 at t = 2.5


def test_heat_large_n_underflows_to_singular_like_matlab():
    # k(h/2) = c (h/2)^-1.5 exp(-2n/4): exp(-1024) underflows to 0 for n = 2048.
    A = make_operator("heat", 2048).A
    assert A[0, 0] == 0.0
    assert np.isfinite(A).all()


def test_deriv2_negative_definite_with_known_eigenvalues():
    # Green's function of u'' on [0,1]: eigenvalues -1/(k pi)^2. Galerkin with box functions
    # shifts them by about h^2/12.
    errs = []
    for n in (50, 100, 200):
        lam = np.linalg.eigvalsh(make_operator("deriv2", n).A)
        assert lam.max() < 0
        k = np.arange(1, 4)
        err = np.abs(lam[:3] + 1 / (k * np.pi) ** 2)
        assert np.all(err <= 1.01 / (12 * n**2))
        errs.append(err[0])
    assert errs[0] > 3.5 * errs[1] > 3.5**2 * errs[2]
    assert abs(np.abs(lam).max() - 1 / np.pi**2) < 1e-5


def test_deriv2_example1_is_galerkin_exact():
    for n in (8, 64, 256):
        op = make_operator("deriv2", n, example=1)
        assert np.linalg.norm(op.A @ op.x - op.b) <= 1e-13 * np.linalg.norm(op.b)


@pytest.mark.parametrize("name", ["shaw", "heat", "gravity", "blur1d"])
def test_b_is_A_times_x(name):
    op = make_operator(name, 48)
    np.testing.assert_array_equal(op.b, op.A @ op.x)


def test_identity():
    op = make_operator("identity", 5)
    np.testing.assert_array_equal(op.A, np.eye(5))
    np.testing.assert_array_equal(op.b, op.x)
    assert op.cond == 1.0 and not op.singular


@pytest.mark.parametrize(
    "name,params",
    [
        ("deriv2", {"example": 2}),
        ("deriv2", {"example": 3}),
        ("phillips", {}),
        ("baart", {}),
        ("foxgood", {}),
        ("wing", {}),
    ],
)
def test_analytic_rhs_approximated_second_order(name, params):
    # b is the discretised continuous right-hand side: A x - b is a discretisation error,
    # O(h^2) for these problems (n multiples of 12 keep wing's jumps on cell edges).
    rel = []
    for n in (24, 48, 96):
        op = make_operator(name, n, **params)
        rel.append(np.linalg.norm(op.A @ op.x - op.b) / np.linalg.norm(op.b))
    assert rel[0] < 0.05
    assert rel[0] / rel[1] > 3.5 and rel[1] / rel[2] > 3.5


def test_phillips_structure():
    n = 32
    op = make_operator("phillips", n)
    A = op.A
    assert np.array_equal(A, scipy.linalg.toeplitz(A[0]))
    assert np.all(A[0, n // 4 + 1 :] == 0) and A[0, n // 4] != 0  # support |s - t| < 3
    assert np.all(op.x[: n // 4] == 0) and np.all(op.x[3 * n // 4 :] == 0)
    np.testing.assert_array_equal(op.x, op.x[::-1])
    np.testing.assert_array_equal(op.b, op.b[::-1])
    # x holds exact box averages of f = 1 + cos(pi t/3) on [-3, 3] (times sqrt h): total 6
    h = 12 / n
    assert np.sum(op.x) * math.sqrt(h) == pytest.approx(6.0, rel=1e-13)


def test_baart_solution_box_averages():
    n = 40
    op = make_operator("baart", n)
    # x_j = (1/sqrt(ht)) * integral of sin over the j-th box; total integral of sin on [0, pi] = 2
    assert np.sum(op.x) * math.sqrt(math.pi / n) == pytest.approx(2.0, rel=1e-13)
    assert np.all(op.A > 0)


def test_foxgood_entries():
    n = 10
    op = make_operator("foxgood", n)
    t = (np.arange(n) + 0.5) / n
    assert op.A[2, 7] == pytest.approx(math.sqrt(t[2] ** 2 + t[7] ** 2) / n, rel=1e-15)
    np.testing.assert_allclose(op.x, t)


def test_gravity_example_solutions_by_hand():
    # n = 8: nt = round(8/3) = 3, nn = round(7) = 7
    x2 = make_operator("gravity", 8, example=2).x
    np.testing.assert_allclose(x2, [2 / 3, 4 / 3, 2, 7 / 4, 6 / 4, 5 / 4, 1, 0], rtol=1e-15)
    x3 = make_operator("gravity", 8, example=3).x
    np.testing.assert_array_equal(x3, [2, 2, 2, 1, 1, 1, 1, 1])
    # n = 12: round(4) = 4, round(10.5) = 11 (MATLAB rounds halves away from zero)
    x2 = make_operator("gravity", 12, example=2).x
    assert x2[3] == pytest.approx(2.0) and x2[10] == pytest.approx(1.0) and x2[11] == 0.0


def test_gravity_entries_and_depth():
    n = 16
    op = make_operator("gravity", n, d=0.5)
    t = (np.arange(n) + 0.5) / n
    assert op.A[3, 9] == pytest.approx(0.5 / n / (0.25 + (t[3] - t[9]) ** 2) ** 1.5, rel=1e-14)
    s_shallow = np.linalg.svd(make_operator("gravity", 32, d=0.25).A, compute_uv=False)
    s_deep = np.linalg.svd(make_operator("gravity", 32, d=0.5).A, compute_uv=False)
    assert s_deep[10] / s_deep[0] < s_shallow[10] / s_shallow[0]  # larger d: faster decay


def test_wing_solution_support():
    n = 30
    op = make_operator("wing", n)
    t = (np.arange(n) + 0.5) / n
    inside = (t > 1 / 3) & (t < 2 / 3)
    np.testing.assert_allclose(op.x[inside], math.sqrt(1 / n))
    assert np.all(op.x[~inside] == 0)
    assert op.A[4, 7] == pytest.approx(t[7] * math.exp(-t[4] * t[7] ** 2) / n, rel=1e-14)


def test_blur1d_definition():
    n = 12
    op = make_operator("blur1d", n)
    assert op.params == {"band": 3, "sigma": 0.7, "boundary": "zero"}
    np.testing.assert_allclose(op.A, naive.blur1d(n), rtol=1e-15)
    i, j = np.indices((n, n))
    assert np.all(op.A[np.abs(i - j) >= 3] == 0)
    assert op.A[0, 0] == pytest.approx(1 / (math.sqrt(2 * math.pi) * 0.7))
    op = make_operator("blur1d", n, sigma=2.0)
    assert op.params["band"] == 8  # default max(3, ceil(4 sigma))
    np.testing.assert_allclose(op.A, naive.blur1d(n, band=8, sigma=2.0), rtol=1e-15)
    op = make_operator("blur1d", 4, band=10, sigma=1.0)
    assert op.params["band"] == 4 and np.all(op.A > 0)
    assert np.isfinite(op.cond) and not op.singular


# --------------------------------------------------------------------------------------
# random
# --------------------------------------------------------------------------------------


def test_random_singular_values_exact_and_reproducible():
    n = 40
    op = make_operator("random", n, cond=1e4, seed=3)
    s = op.svd[1]
    want = np.geomspace(1, 1e-4, n)
    np.testing.assert_allclose(s, want, rtol=1e-11)
    assert op.cond == pytest.approx(1e4, rel=1e-10)
    np.testing.assert_array_equal(op.A, make_operator("random", n, cond=1e4, seed=3).A)
    assert not np.allclose(op.A, make_operator("random", n, cond=1e4, seed=4).A)
    assert op.x is None and op.b is None
    assert op.params == {"cond": 1e4, "spectrum": "geometric", "decay": 1.0, "seed": 3}


def test_random_algebraic_and_haar_factors():
    n = 30
    op = make_operator("random", n, spectrum="algebraic", decay=2.0, seed=1)
    np.testing.assert_allclose(op.svd[1], np.arange(1, n + 1) ** -2.0, rtol=1e-11)
    np.testing.assert_allclose(
        random_singular_values(n, cond=10, spectrum="algebraic", decay=2.0),
        np.arange(1, n + 1) ** -2.0,
    )
    with pytest.raises(FastinvError, match="cond applies only"):
        make_operator("random", n, spectrum="algebraic", cond=10)
    # cond = 1: an orthogonal matrix
    Q = make_operator("random", n, cond=1).A
    np.testing.assert_allclose(Q @ Q.T, np.eye(n), atol=1e-13)
    assert make_operator("random", 1).A.shape == (1, 1)


# --------------------------------------------------------------------------------------
# SVD, cond, singular, to_dict
# --------------------------------------------------------------------------------------


def test_svd_cached_and_reconstructs():
    op = make_operator("baart", 20)
    first = op.svd
    assert op.svd is first
    U, s, Vt = first
    assert np.all(np.diff(s) <= 0)
    np.testing.assert_allclose((U * s) @ Vt, op.A, atol=1e-13 * s[0])
    assert op.cond == pytest.approx(s[0] / s[-1]) or op.cond == math.inf


def test_svd_falls_back_to_gesvd(monkeypatch):
    calls = []
    real = scipy.linalg.svd

    def fake(a, **kw):
        calls.append(kw["lapack_driver"])
        if kw["lapack_driver"] == "gesdd":
            raise np.linalg.LinAlgError("SVD did not converge")
        return real(a, **kw)

    monkeypatch.setattr(scipy.linalg, "svd", fake)
    op = make_operator("shaw", 8)
    U, s, Vt = op.svd
    assert calls == ["gesdd", "gesvd"]
    np.testing.assert_allclose((U * s) @ Vt, op.A, atol=1e-13)


def test_singular_and_cond():
    A = np.array([[1.0, 2.0], [2.0, 4.0]])
    op = Operator.from_array(A)
    assert op.singular and op.cond == math.inf
    op = Operator.from_array(np.diag([2.0, 0.5]))
    assert not op.singular and op.cond == pytest.approx(4.0)
    assert Operator.from_array(np.zeros((3, 3))).singular


def test_to_dict_json():
    op = make_operator("gravity", 16, example=2)
    d = op.to_dict()
    assert set(d) == {"name", "n", "params", "cond"}
    assert d["name"] == "gravity" and d["n"] == 16
    assert d["params"] == {"example": 2, "a": 0.0, "b": 1.0, "d": 0.25}
    json.dumps(d)
    assert "gravity" in repr(op)


def test_from_array_copies_and_validates():
    A = np.eye(3)
    op = Operator.from_array(A, name="mine")
    A[0, 0] = 5
    assert op.A[0, 0] == 1 and op.name == "mine"
    assert Operator.from_array(np.ones((2, 3))).shape == (2, 3)  # rectangular: m = 2, n = 3
    with pytest.raises(FastinvError, match="must be a 2-D array"):
        Operator.from_array(np.ones(3))
    with pytest.raises(FastinvError, match="x must have shape"):
        Operator.from_array(np.eye(3), x=np.ones(4))


# --------------------------------------------------------------------------------------
# catalogue, names, n and params
# --------------------------------------------------------------------------------------


def test_list_operators_describes_and_builds():
    entries = list_operators()
    assert [e["name"] for e in entries] == ALL
    valid_n = {"phillips": 8, "blur2d": 9, "superres": 16}
    for e in entries:
        assert {"name", "description", "params", "constraint"} <= set(e)
        assert isinstance(e["description"], str) and e["description"]
        json.dumps(e)
        op = make_operator(e["name"], valid_n.get(e["name"], 6), **e["params"])
        assert op.n == valid_n.get(e["name"], 6)
    by_name = {e["name"]: e for e in entries}
    assert by_name["gravity"]["params"] == {"example": 1, "a": 0.0, "b": 1.0, "d": 0.25}
    assert by_name["wing"]["params"] == {"t1": 1 / 3, "t2": 2 / 3}
    assert by_name["heat"]["params"] == {"kappa": 1.0}
    assert by_name["phillips"]["constraint"] == "n a multiple of 4"


def test_builds_at_large_n():
    for name in ALL:
        if name == "random":
            continue  # a 1024 x 1024 QR pair is slow on a shared 2-core runner
        op = make_operator(name, 1024)
        m = 256 if name == "superres" else 1024  # 32 x 32 kept every 2nd pixel: 16 x 16
        assert op.A.shape == (m, 1024) and np.isfinite(op.A).all()


def test_names_are_case_insensitive_and_params_coerced():
    op = make_operator("Shaw", 4)
    assert op.name == "shaw"
    op = make_operator("heat", 8, kappa="5")
    assert op.params == {"kappa": 5.0}
    op = make_operator("deriv2", np.int64(6), example=2.0)
    assert op.params == {"example": 2} and op.n == 6


@pytest.mark.parametrize(
    "name,n,params,msg",
    [
        ("shaw", 63, {}, "shaw needs an even n, got 63: use 62 or 64"),
        ("shaw", 1, {}, "shaw needs an even n, got 1: use 2"),
        ("baart", 9, {}, "baart needs an even n, got 9: use 8 or 10"),
        ("heat", 7, {}, "heat needs an even n, got 7: use 6 or 8"),
        ("phillips", 63, {}, "phillips needs n a multiple of 4, got 63: use 60 or 64"),
        ("phillips", 2, {}, "use 4"),
        ("deriv2", 5, {"example": 3}, "deriv2 needs an even n for example 3, got 5"),
        ("deriv2", 6, {"example": 4}, "example must be 1, 2 or 3, got 4"),
        ("gravity", 6, {"example": 0}, "example must be 1, 2 or 3"),
        ("gravity", 6, {"d": 0}, "parameter d must be > 0"),
        ("heat", 6, {"kappa": -1}, "parameter kappa must be > 0"),
        ("heat", 6, {"kappa": "abc"}, "kappa must be a number"),
        ("heat", 6, {"kappa": float("nan")}, "kappa must be finite"),
        ("wing", 6, {"t1": 0.7, "t2": 0.2}, "wing needs t1 < t2"),
        ("blur1d", 6, {"sigma": 0}, "sigma must be > 0"),
        ("blur1d", 6, {"band": 0}, "band must be >= 1"),
        ("blur1d", 6, {"band": 2.5}, "band must be an integer"),
        ("random", 6, {"cond": 0.5}, "cond must be >= 1"),
        ("random", 6, {"spectrum": "linear"}, "spectrum must be 'geometric' or 'algebraic'"),
        ("random", 6, {"seed": -1}, "seed must be a non-negative integer"),
        ("random", 6, {"decay": 0}, "decay must be > 0"),
    ],
)
def test_bad_n_or_params(name, n, params, msg):
    with pytest.raises(FastinvError) as e:
        make_operator(name, n, **params)
    assert msg in str(e.value)


def test_unknown_name_lists_known_names():
    with pytest.raises(FastinvError) as e:
        make_operator("shawx", 16)
    for name in ALL:
        assert name in str(e.value)


def test_unknown_params_name_allowed_ones():
    with pytest.raises(FastinvError) as e:
        make_operator("gravity", 16, depth=1)
    assert "depth" in str(e.value) and "example, a, b, d" in str(e.value)
    with pytest.raises(FastinvError, match="allowed: none"):
        make_operator("shaw", 16, kappa=1)


@pytest.mark.parametrize("n", [0, -4, 16.0, True, "16", None])
def test_bad_n(n):
    with pytest.raises(FastinvError, match="n"):
        make_operator("foxgood", n)


def test_n_one_where_allowed():
    for name in ["foxgood", "gravity", "wing", "blur1d", "random", "identity", "deriv2"]:
        assert make_operator(name, 1).A.shape == (1, 1)


# --------------------------------------------------------------------------------------
# loading a user's matrix
# --------------------------------------------------------------------------------------


@pytest.fixture
def M(rng):
    return rng.standard_normal((5, 5))


def _check(op, M, name):
    np.testing.assert_array_equal(op.A, M)
    assert op.n == 5 and op.name == name and op.x is None and op.b is None
    json.dumps(op.to_dict())


def test_load_npy(tmp_path, M):
    p = tmp_path / "A.npy"
    np.save(p, M)
    _check(load_operator(p), M, "A.npy")
    _check(make_operator(str(p)), M, "A.npy")
    _check(make_operator(p, 5), M, "A.npy")
    np.save(p, M.astype(np.float32))
    np.testing.assert_array_equal(load_operator(p).A, M.astype(np.float32).astype(np.float64))
    np.save(p, np.arange(9).reshape(3, 3))  # integers are fine
    assert load_operator(p).A.dtype == np.float64


def test_load_npz(tmp_path, M):
    p = tmp_path / "one.npz"
    np.savez(p, M)
    _check(load_operator(p), M, "one.npz")
    p = tmp_path / "two.npz"
    np.savez(p, A=M, x=np.ones(5))
    op = load_operator(p, key="A")
    _check(op, M, "two.npz")
    assert op.params["key"] == "A"
    _check(make_operator(str(p), key="A"), M, "two.npz")
    with pytest.raises(FastinvError) as e:
        load_operator(p)
    assert "several arrays (A, x)" in str(e.value) and "key=" in str(e.value)
    with pytest.raises(FastinvError, match="has no array 'B'; its arrays are A, x"):
        load_operator(p, key="B")
    with pytest.raises(FastinvError, match="must be a 2-D array"):
        load_operator(p, key="x")


def test_load_sparse_npz_and_mat(tmp_path, M):
    S = scipy.sparse.csr_matrix(np.where(np.abs(M) > 0.5, M, 0))
    p = tmp_path / "s.npz"
    scipy.sparse.save_npz(p, S)
    np.testing.assert_array_equal(load_operator(p).A, S.toarray())
    q = tmp_path / "s.mat"
    scipy.io.savemat(q, {"S": S})
    np.testing.assert_array_equal(load_operator(q).A, S.toarray())


def test_load_mat(tmp_path, M):
    p = tmp_path / "A.mat"
    scipy.io.savemat(p, {"K": M})
    op = load_operator(p)  # __header__, __version__, __globals__ ignored
    _check(op, M, "A.mat")
    assert op.params["key"] == "K"
    p = tmp_path / "B.mat"
    scipy.io.savemat(p, {"K": M, "other": np.eye(2)})
    with pytest.raises(FastinvError, match=r"several arrays \(K, other\)"):
        load_operator(p)
    _check(load_operator(p, key="K"), M, "B.mat")
    np.testing.assert_array_equal(make_operator(str(p), key="other").A, np.eye(2))
    p = tmp_path / "cell.mat"
    scipy.io.savemat(p, {"c": np.array([["a", "b"], ["c", "d"]], dtype=object)})
    with pytest.raises(FastinvError, match="real numbers|non-numeric"):
        load_operator(p)


def test_load_csv_and_txt(tmp_path, M):
    p = tmp_path / "A.csv"
    np.savetxt(p, M, delimiter=",", fmt="%.17g")
    _check(load_operator(p), M, "A.csv")
    q = tmp_path / "A.txt"
    np.savetxt(q, M, fmt="%.17g", header="my matrix")  # whitespace, '#' comment header
    _check(make_operator(str(q)), M, "A.txt")
    r = tmp_path / "one.txt"
    r.write_text("2.5\n")
    assert load_operator(r).A.tolist() == [[2.5]]


def test_singular_file_is_allowed(tmp_path):
    p = tmp_path / "sing.npy"
    np.save(p, np.ones((4, 4)))
    op = load_operator(p)
    assert op.singular and op.cond == math.inf
    json.dumps(op.to_dict(), allow_nan=True)


def test_n_must_match_file(tmp_path, M):
    p = tmp_path / "A.npy"
    np.save(p, M)
    with pytest.raises(FastinvError, match="n=6 does not match .* pass n=5"):
        make_operator(str(p), 6)
    with pytest.raises(FastinvError, match="only key= is allowed"):
        make_operator(str(p), kappa=1)


def test_load_errors(tmp_path):
    def err(path, **kw):
        with pytest.raises(FastinvError) as e:
            load_operator(path, **kw)
        msg = str(e.value)
        assert "\n" not in msg
        return msg

    assert "no such file" in err(tmp_path / "missing.npy")
    with pytest.raises(FastinvError, match="no such file"):
        make_operator(str(tmp_path / "missing.npy"))
    assert "unsupported file type .dat" in err(tmp_path / "A.dat")

    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"this is not a numpy file at all")
    assert "cannot read" in err(bad)
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, np.eye(50))
    trunc.write_bytes(trunc.read_bytes()[:300])
    assert "cannot read" in err(trunc)
    badz = tmp_path / "corrupt.npz"
    badz.write_bytes(b"PK\x03\x04garbage")
    assert "cannot read" in err(badz)
    junkz = tmp_path / "junk.npz"
    junkz.write_bytes(b"junk")
    assert "not a NumPy .npz (zip) file" in err(junkz)
    assert "not a NumPy .npy file" in err(bad)
    badm = tmp_path / "corrupt.mat"
    badm.write_bytes(b"\x00" * 10)
    assert "cannot read" in err(badm)
    v73 = tmp_path / "v73.mat"  # a MATLAB v7.3 (HDF5) header: major version 2, 'IM'
    v73.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + b"\x00" * 8 + b"\x00\x02IM" + b"\x00" * 512)
    assert "v7.3 (HDF5)" in err(v73) and "-v7" in err(v73)

    p = tmp_path / "v.npy"
    np.save(p, np.ones(4))
    assert "must be a 2-D array (m, n), got shape (4,)" in err(p)
    np.save(p, np.ones((2, 2, 2)))
    assert "got shape (2, 2, 2)" in err(p)
    np.save(p, np.ones((0, 4)))
    assert "is empty (shape (0, 4)); supply a non-empty (m, n) matrix" in err(p)
    np.save(p, np.ones((3, 4)))  # rectangular: loaded, audited against A⁺
    assert load_operator(p).shape == (3, 4)
    A = np.eye(3)
    A[1, 2] = np.nan
    np.save(p, A)
    assert "non-finite" in err(p) and "(1, 2)" in err(p)
    A[1, 2] = np.inf
    np.save(p, A)
    assert "non-finite" in err(p)
    np.save(p, np.eye(3) * (1 + 1j))
    assert "must be real" in err(p)
    np.save(p, np.array([["a", "b"], ["c", "d"]]))
    assert "must hold real numbers" in err(p)
    np.save(p, np.array([[1, "b"], [None, 2]], dtype=object), allow_pickle=True)
    assert "non-numeric" in err(p)
    np.save(p, np.zeros((0, 0)))
    assert "empty" in err(p)
    assert "key= applies only to .npz and .mat" in err(p, key="A")

    e = tmp_path / "empty.csv"
    e.write_text("")
    assert "empty" in err(e)
    h = tmp_path / "header.csv"
    h.write_text("a,b\n1,2\n3,4\n")
    assert "cannot parse" in err(h) and "#" in err(h)
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("1 2\n3\n")
    assert "cannot parse" in err(ragged)
    nan_csv = tmp_path / "nan.csv"
    nan_csv.write_text("1,nan\n2,3\n")
    assert "non-finite" in err(nan_csv)

    z = tmp_path / "empty.npz"
    np.savez(z)
    assert "holds no arrays" in err(z)
    d = tmp_path / "dir.npy"
    d.mkdir()
    assert "is a directory" in err(d)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_mat_reader_crash_is_one_clear_error(tmp_path, monkeypatch):
    """scipy's MAT reader can die of SIGBUS/SIGSEGV on a damaged file (the fuzz test found
    one): it runs in a forked child, and its death becomes a FastinvError, not a crash."""
    import os
    import signal

    import scipy.io

    p = tmp_path / "A.mat"
    scipy.io.savemat(p, {"A": np.eye(3)})
    assert load_operator(p).shape == (3, 3)
    monkeypatch.setattr(scipy.io, "loadmat", lambda *a, **k: os.kill(os.getpid(), signal.SIGBUS))
    with pytest.raises(FastinvError, match=r"the MAT-file reader crashed on it \(signal 7\)"):
        load_operator(p)
