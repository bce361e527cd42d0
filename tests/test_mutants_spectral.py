"""Tests that kill surviving mutants of fastinv/linalg/spectral.py (issue 15).

Every value is checked against tests/naive.py or a closed form; error messages are checked by
the name of the argument they blame (docs/testing.md, "Mutation testing").
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from naive import naive_filter_factor_matrix, naive_henrici, naive_phi_counts

from fastinv.errors import FastinvError
from fastinv.linalg import spectral as sp

_EPS = float(np.finfo(np.float64).eps)


def _svd(A):
    return np.linalg.svd(A, full_matrices=False)


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------------------------
# filter factors


def test_filter_factor_matrix_and_offdiag_share_match_naive():
    A, M = _rand((6, 4), 0), _rand((4, 6), 1)
    U, s, Vt = _svd(A)
    F = naive_filter_factor_matrix(M, A)
    np.testing.assert_allclose(sp.filter_factor_matrix(M, U, s, Vt), F, rtol=1e-12, atol=1e-12)
    phi, off = sp.filter_factors(M, U, s, Vt)
    np.testing.assert_allclose(phi, np.diag(F), rtol=1e-12)
    G = F - np.diag(np.diag(F))
    assert off == pytest.approx(np.linalg.norm(G) / np.linalg.norm(F), rel=1e-12)


def test_filter_factors_of_zero_and_of_the_pseudo_inverse():
    A = _rand((5, 3), 2)
    U, s, Vt = _svd(A)
    phi, off = sp.filter_factors(np.zeros((3, 5)), U, s, Vt)
    assert off == 0.0
    np.testing.assert_array_equal(phi, np.zeros(3))
    phi, off = sp.filter_factors(np.linalg.pinv(A), U, s, Vt)
    np.testing.assert_allclose(phi, np.ones(3), atol=1e-12)
    assert off == pytest.approx(0.0, abs=1e-12)


def test_filter_factor_matrix_blames_m():
    U, s, Vt = _svd(_rand((4, 3), 3))
    with pytest.raises(FastinvError, match=r"^M must be a 2-D array"):
        sp.filter_factor_matrix(np.ones(3), U, s, Vt)
    with pytest.raises(
        FastinvError,
        match=r"^M has shape \(4, 3\) but A's SVD needs \(3, 4\) "
        r"\(M maps measurements to signals\)$",
    ):
        sp.filter_factor_matrix(np.ones((4, 3)), U, s, Vt)


def test_filter_factors_of_a_truncated_svd_and_of_a_small_matrix():
    A, M = _rand((5, 4), 11), 0.01 * _rand((4, 5), 12)
    U, s, Vt = _svd(A)
    F = naive_filter_factor_matrix(M, A)
    # a top-2 SVD gives F restricted to the two leading directions
    F2 = sp.filter_factor_matrix(M, U[:, :2], s[:2], Vt[:2])
    np.testing.assert_allclose(F2, F[:2, :2], rtol=1e-12, atol=1e-15)
    # ‖F‖_F < 1: the off-diagonal share is still ‖offdiag‖/‖F‖, not 0
    phi, off = sp.filter_factors(M, U, s, Vt)
    assert np.linalg.norm(F) < 1
    G = F - np.diag(np.diag(F))
    assert off == pytest.approx(np.linalg.norm(G) / np.linalg.norm(F), rel=1e-12)


# --------------------------------------------------------------------------------------------
# singular values and their distance


def test_singular_values_match_numpy_and_blame_m():
    M = _rand((5, 3), 4)
    np.testing.assert_allclose(
        sp.singular_values(M), np.linalg.svd(M, compute_uv=False), rtol=1e-12
    )
    with pytest.raises(FastinvError, match=r"^M must be a 2-D array"):
        sp.singular_values(np.ones(3))


def test_singular_values_fall_back_to_gesvd(monkeypatch):
    svd = sp.sla.svd

    def failing_gesdd(M, **kw):
        if kw.get("lapack_driver", "gesdd") == "gesdd":  # scipy's default driver is gesdd
            raise np.linalg.LinAlgError("SVD did not converge")
        return svd(M, **kw)

    monkeypatch.setattr(sp.sla, "svd", failing_gesdd)
    M = _rand((4, 6), 13)
    np.testing.assert_allclose(
        sp.singular_values(M), np.linalg.svd(M, compute_uv=False), rtol=1e-12
    )


def test_sv_distance_values_from_the_definition():
    s1 = np.array([4.0, 2.0, 1.0, 0.0])
    s2 = np.array([2.0, 2.0, 0.5, 0.0])
    out = sp.sv_distance(s1, s2, norm2_diff=2.0, fro_diff=np.sqrt(4.25))
    d = np.abs(np.log10([4.0, 2.0, 1.0]) - np.log10([2.0, 2.0, 0.5]))  # the last pair is 0
    assert out["n_total"] == 4
    assert out["n_compared"] == 3
    assert out["max_log10"] == pytest.approx(np.log10(2.0), rel=1e-12)
    assert out["rms_log10"] == pytest.approx(np.sqrt(np.mean(d * d)), rel=1e-12)
    assert out["max_abs"] == 2.0
    assert out["l2_abs"] == pytest.approx(np.sqrt(4.25), rel=1e-15)
    assert out["weyl_bound"] == 2.0
    assert out["weyl_holds"] is True  # max_abs == bound: <= holds
    assert out["mirsky_bound"] == pytest.approx(np.sqrt(4.25), rel=1e-15)
    assert out["mirsky_holds"] is True


def test_sv_distance_bounds_that_fail_and_absent_bounds():
    s1, s2 = np.array([3.0, 1.0]), np.array([1.0, 1.0])
    out = sp.sv_distance(s1, s2, norm2_diff=1.9, fro_diff=1.9)
    assert out["weyl_holds"] is False
    assert out["mirsky_holds"] is False
    out = sp.sv_distance(s1, s2)
    assert "weyl_bound" not in out and "weyl_holds" not in out
    assert "mirsky_bound" not in out and "mirsky_holds" not in out


def test_sv_distance_tiny_threshold_default_and_given():
    scale, k = 1.0, 3
    tiny = scale * k * _EPS
    # an entry exactly at the default tiny is not compared (strict >), one just above is
    s1 = np.array([1.0, tiny, 2 * tiny])
    s2 = np.array([1.0, 1.0, 1.0])
    out = sp.sv_distance(s1, s2)
    assert out["n_compared"] == 2
    assert out["max_log10"] == pytest.approx(-np.log10(2 * tiny), rel=1e-12)
    # the default scales with the larger first value of both spectra
    out = sp.sv_distance(np.array([1.0, 4 * _EPS]), np.array([2.0, 1.0]))
    assert out["n_compared"] == 1  # tiny = 2 * 2 * eps = 4 eps
    out = sp.sv_distance(np.array([2.0, 4 * _EPS]), np.array([1.0, 1.0]))
    assert out["n_compared"] == 1
    out = sp.sv_distance(s1, s2, tiny=0.5)
    assert out["n_compared"] == 1
    assert out["max_log10"] == 0.0
    assert out["rms_log10"] == 0.0
    out = sp.sv_distance(np.array([1.0, 0.5]), np.array([1.0, 0.5]), tiny=2.0)
    assert out["n_compared"] == 0
    assert out["max_log10"] is None and out["rms_log10"] is None


def test_sv_distance_slack_absorbs_rounding_only():
    k, scale = 2, 1.0
    slack = 10 * k * _EPS * scale
    s1, s2 = np.array([1.0, 0.5]), np.array([1.0, 0.5 - 5 * slack])
    assert sp.sv_distance(s1, s2, norm2_diff=0.0, fro_diff=0.0)["weyl_holds"] is False
    s2 = np.array([1.0, 0.5 - slack / 2])
    out = sp.sv_distance(s1, s2, norm2_diff=0.0, fro_diff=0.0)
    assert out["weyl_holds"] is True and out["mirsky_holds"] is True
    # the relative slack 1e-10: a bound 1e-11 below the difference still holds, 1e-9 not
    s1, s2 = np.array([1.0, 0.0]), np.array([0.0, 0.0])
    assert sp.sv_distance(s1, s2, norm2_diff=1 - 1e-11, fro_diff=1 - 1e-11)["weyl_holds"]
    out = sp.sv_distance(s1, s2, norm2_diff=1 - 1e-9, fro_diff=1 - 1e-9)
    assert out["weyl_holds"] is False and out["mirsky_holds"] is False


@pytest.mark.parametrize(
    ("s1", "s2", "message"),
    [
        (np.ones((2, 2)), np.ones(2), r"^s1 must be a non-empty 1-D array of singular values$"),
        (np.ones(2), np.ones((2, 2)), r"^s2 must be a non-empty 1-D array of singular values$"),
        (np.ones(0), np.ones(2), r"^s1 must be a non-empty 1-D array"),
        ([1.0, np.nan], [1.0, 1.0], r"^s1 contains 1 non-finite"),
        ([1.0, 1.0], [1.0, np.inf], r"^s2 contains 1 non-finite"),
        ([1.0, -0.5], [1.0, 1.0], r"^s1 holds negative values; singular values are >= 0$"),
        ([1.0, 1.0], [1.0, -1e-300], r"^s2 holds negative values"),
        (
            [1.0, 1.0],
            [1.0],
            r"^the spectra have lengths 2 and 1; compare the same number of leading singular "
            r"values$",
        ),
    ],
)
def test_sv_distance_bad_spectra(s1, s2, message):
    with pytest.raises(FastinvError, match=message):
        sp.sv_distance(s1, s2)


def test_sv_distance_accepts_zero_values_and_integer_lists():
    out = sp.sv_distance([2, 0], [1, 0])
    assert out["n_compared"] == 1 and out["max_abs"] == 1.0
    # small unsigned integers are compared as floats (no wrap-around of 1 - 2)
    out = sp.sv_distance(np.array([3, 1], np.uint8), np.array([3, 2], np.uint8))
    assert out["max_abs"] == 1.0 and out["l2_abs"] == 1.0


def test_sv_distance_masks_both_sides_symmetrically():
    tiny = 3 * _EPS
    s1, s2 = np.array([1.0, tiny, 2 * tiny]), np.ones(3)
    assert sp.sv_distance(s2, s1)["n_compared"] == 2
    assert sp.sv_distance(s1, s2)["n_compared"] == 2


def test_sv_distance_rounding_slack_exactly():
    # slack = 10·k·eps·max σ; with k = 2 and max σ = 1 it is 20 eps: a difference of exactly
    # 20 eps with a zero bound still holds (<=), one of 22 eps does not
    s1 = np.array([1.0, 0.5])
    out = sp.sv_distance(s1, np.array([1.0, 0.5 - 20 * _EPS]), norm2_diff=0.0, fro_diff=0.0)
    assert out["max_abs"] == 20 * _EPS
    assert out["weyl_holds"] is True and out["mirsky_holds"] is True
    out = sp.sv_distance(s1, np.array([1.0, 0.5 - 22 * _EPS]), norm2_diff=0.0, fro_diff=0.0)
    assert out["weyl_holds"] is False and out["mirsky_holds"] is False
    # max σ = 2: slack 40 eps (not 10 eps, nor 44 eps)
    s1 = np.array([2.0, 1.0])
    out = sp.sv_distance(s1, np.array([2.0, 1.0 - 38 * _EPS]), norm2_diff=0.0, fro_diff=0.0)
    assert out["weyl_holds"] is True and out["mirsky_holds"] is True
    out = sp.sv_distance(s1, np.array([2.0, 1.0 - 42 * _EPS]), norm2_diff=0.0, fro_diff=0.0)
    assert out["weyl_holds"] is False and out["mirsky_holds"] is False


# --------------------------------------------------------------------------------------------
# spectral gaps (through principal_angles)


def test_principal_angle_gaps_from_the_definition():
    M1 = np.diag([4.0, 3.0, 1.0])
    M2 = np.diag([2.0, 2.0, 0.0])
    out = sp.principal_angles(M1, M2, [1, 2, 3])
    assert out["gap_1"] == [pytest.approx(0.25), pytest.approx(0.5), None]
    assert out["gap_2"] == [0.0, 1.0, None]
    out = sp.principal_angles(np.zeros((3, 3)), M2, [1])
    assert out["gap_1"] == [None]
    out = sp.principal_angles(np.diag([2.0, 0.0, 0.0]), np.diag([1.0, 1.0, 1.0]), [1, 2])
    assert out["gap_1"] == [1.0, 0.0]  # σ_2 = 0 is a gap, not "unavailable"
    assert out["gap_2"] == [0.0, 0.0]


def test_per_k_reads_values_by_k_and_fills_nan():
    a = {"k": [1, 5], "max_deg": [3, 7]}
    out = sp.per_k(a, "max_deg", [5, 2, 1])
    assert out.dtype == np.float64  # NaN must be storable
    np.testing.assert_array_equal(out, [7.0, np.nan, 3.0])
    np.testing.assert_array_equal(sp.per_k(a, "max_deg", [1, 5]), [3.0, 7.0])
    assert sp.per_k(a, "max_deg", [1]).dtype == np.float64
    with pytest.raises(ValueError):  # one value per k, never silently truncated
        sp.per_k({"k": [1, 2], "max_deg": [3.0]}, "max_deg", [1])


# --------------------------------------------------------------------------------------------
# operator distances


def test_operator_distance_from_the_definition():
    M, B = _rand((4, 3), 5), _rand((4, 3), 6)
    out = sp.operator_distance(M, B)
    D = M - B
    s_d, s_b = np.linalg.svd(D, compute_uv=False), np.linalg.svd(B, compute_uv=False)
    assert out["abs_2"] == pytest.approx(s_d[0], rel=1e-12)
    assert out["abs_fro"] == pytest.approx(np.linalg.norm(D), rel=1e-12)
    assert out["norm2_B"] == pytest.approx(s_b[0], rel=1e-12)
    assert out["fro_B"] == pytest.approx(np.linalg.norm(B), rel=1e-12)
    assert out["rel_2"] == pytest.approx(s_d[0] / s_b[0], rel=1e-12)
    assert out["rel_fro"] == pytest.approx(np.linalg.norm(D) / np.linalg.norm(B), rel=1e-12)
    assert set(out) == {"rel_2", "rel_fro", "abs_2", "abs_fro", "norm2_B", "fro_B"}


def test_operator_distance_uses_the_given_norm_and_zero_reference():
    M = np.diag([3.0, 4.0])
    out = sp.operator_distance(M, np.zeros((2, 2)), norm2=lambda D: 7.0)
    assert out["abs_2"] == 7.0 and out["norm2_B"] == 7.0
    assert out["rel_2"] == 1.0
    out = sp.operator_distance(M, np.zeros((2, 2)))
    assert out["abs_2"] == 4.0 and out["abs_fro"] == 5.0
    assert out["rel_2"] is None and out["rel_fro"] is None
    assert out["norm2_B"] == 0.0 and out["fro_B"] == 0.0
    # a reference of norm below 1 still gives relative distances
    out = sp.operator_distance(M, 0.5 * M)
    assert out["rel_2"] == pytest.approx(1.0) and out["rel_fro"] == pytest.approx(1.0)
    out = sp.operator_distance(0.1 * M, 0.05 * M)
    assert out["rel_2"] == pytest.approx(1.0) and out["rel_fro"] == pytest.approx(1.0)
    assert out["norm2_B"] == pytest.approx(0.2) and out["fro_B"] == pytest.approx(0.25)


def test_operator_distance_blames_the_right_argument():
    with pytest.raises(FastinvError, match=r"^M must be a 2-D array"):
        sp.operator_distance(np.ones(2), np.ones((2, 2)))
    with pytest.raises(FastinvError, match=r"^B must be a 2-D array"):
        sp.operator_distance(np.ones((2, 2)), np.ones(2))
    with pytest.raises(FastinvError, match=r"^M has shape \(2, 2\) but B has \(2, 3\)"):
        sp.operator_distance(np.ones((2, 2)), np.ones((2, 3)))


def test_residual_identity_from_the_definition():
    A, M = _rand((5, 3), 7), _rand((3, 5), 8)
    R = M @ A - np.eye(3)
    out = sp.residual_identity(M, A)
    assert out["2"] == pytest.approx(np.linalg.svd(R, compute_uv=False)[0], rel=1e-12)
    assert out["fro"] == pytest.approx(np.linalg.norm(R) / np.sqrt(3), rel=1e-12)
    out = sp.residual_identity(np.zeros((3, 5)), A)
    assert out == {"2": 1.0, "fro": 1.0}
    assert sp.residual_identity(M, A, norm2=lambda D: -3.0)["2"] == -3.0
    with pytest.raises(FastinvError, match=r"^M must be a 2-D array"):
        sp.residual_identity(np.ones(2), A)
    with pytest.raises(FastinvError, match=r"^A must be a 2-D array"):
        sp.residual_identity(M, np.ones(2))
    with pytest.raises(
        FastinvError, match=r"^M has shape \(5, 3\) but A has \(5, 3\); M must be \(3, 5\)$"
    ):
        sp.residual_identity(A, A)


# --------------------------------------------------------------------------------------------
# eigenvalues


def test_henrici_departure_matches_naive_and_blames_m():
    for M in (_rand((5, 5), 9), np.triu(_rand((4, 4), 10)), np.array([[0.0, 1.0], [0.0, 0.0]])):
        assert sp.henrici_departure(M) == pytest.approx(naive_henrici(M), abs=1e-7)
    with pytest.raises(FastinvError, match=r"^M must be a 2-D array"):
        sp.henrici_departure(np.ones(3))
    with pytest.raises(FastinvError, match=r"^M must be square for eigenvalues, got shape"):
        sp.henrici_departure(np.ones((2, 3)))


def test_eigen_report_matches_eigenvalues_by_optimal_assignment():
    M = np.diag([1.0, 2.0, 10.0])
    B = np.diag([9.0, 1.5, 0.0])
    out = sp.eigen_report(M, B)
    # optimal pairing: 10-9, 2-1.5, 1-0 -> |d| = 1, 0.5, 1
    assert out["eig_max_abs_diff"] == pytest.approx(1.0)
    assert out["eig_max_rel_diff"] == pytest.approx(1.0 / 9.0)
    assert out["eig_fro_rel"] == pytest.approx(np.sqrt(2.25) / np.linalg.norm(B))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_eigen_report_refuses_overflowing_eigenvalues():
    M = np.diag([1e308, -1e308])
    B = np.diag([-1e308, 1e308]) * 1.0
    with pytest.raises(
        FastinvError,
        match=r"^the eigenvalues of M and B cannot be compared in float64 \(largest \|λ\| 1e\+308, "
        r"\|μ\| 1e\+308: they or their differences overflow\); rescale the matrices$",
    ):
        sp.eigen_report(M, B)


# --------------------------------------------------------------------------------------------
# φ summary (n_inverted etc.)


def _summary(phi):
    A = np.eye(len(phi))
    comp = sp.compare(np.eye(len(phi)), A)
    return dataclasses.replace(comp, phi=np.asarray(phi, dtype=np.float64)).phi_summary()


def test_phi_summary_counts_at_the_tolerance_edges():
    phi = np.array([1.0, 0.95, 1.1, 0.5, 0.1, 0.3, -0.1, -0.05, -0.2, 1.2])
    out = _summary(phi)
    n_inv, first = naive_phi_counts(phi)
    assert (out["n_inverted"], out["first_suppressed"]) == (n_inv, first) == (2, 4)
    assert out["n_inverted_total"] == 2
    assert out["n_suppressed"] == 3  # 0.1, -0.1, -0.05 (|φ| <= 0.1 inclusive)
    assert out["suppressed_fraction_after"] == pytest.approx(3 / 6)
    assert out["n_amplified"] == 1  # 1.2; 1.1 == 1 + 0.1 is not > 1 + 0.1
    assert out["n_negative"] == 1  # -0.2; -0.1 is not < -0.1
    assert out["dof"] == pytest.approx(phi.sum())
    assert out["min"] == -0.2 and out["max"] == 1.2
    assert out["median"] == pytest.approx(np.median(phi))
    assert out["tol"] == 0.1
    assert out["phi"] == phi.tolist()


def test_phi_summary_all_inverted_none_suppressed_and_long_phi():
    out = _summary(np.ones(3))
    assert out["n_inverted"] == 3 and out["n_inverted_total"] == 3
    assert out["first_suppressed"] is None
    assert out["suppressed_fraction_after"] is None
    assert out["n_suppressed"] == 0
    phi = np.r_[np.ones(40), np.zeros(25)]
    out = _summary(phi)
    assert "phi" not in out
    assert (out["n_inverted"], out["first_suppressed"]) == naive_phi_counts(phi) == (40, 40)
    assert out["suppressed_fraction_after"] == 1.0
    assert "phi" in _summary(np.ones(64))
