"""Tests that kill surviving mutants of fastinv/linalg/spectral.py (issue 15).

Every value is checked against tests/naive.py or a closed form; error messages are checked by
the name of the argument they blame (docs/testing.md, "Mutation testing").
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from naive import (
    naive_filter_factor_matrix,
    naive_henrici,
    naive_phi_counts,
    naive_principal_angles,
)

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


# --------------------------------------------------------------------------------------------
# eigenvalues: _schur_eigs, eigen_report, _eigen_pair


def _naive_eig_match(lam, mu):
    """|λ_i − μ_π(i)| for the permutation π minimising Σ|λ_i − μ_π(i)|, by brute force."""
    best = None
    for perm in itertools.permutations(range(len(mu))):
        d = np.abs(lam - mu[list(perm)])
        if best is None or d.sum() < best.sum():
            best = d
    return best


def _real_normal_form(lam):
    """A real normal matrix with eigenvalues ``lam`` (pairs x ± iy as blocks [[x, y], [−y, x]])."""
    blocks, done = [], set()
    for i, z in enumerate(lam):
        if i in done:
            continue
        if abs(z.imag) > 0:
            j = next(j for j in range(i + 1, len(lam)) if abs(lam[j] - z.conjugate()) < 1e-12)
            done.add(j)
            blocks.append(np.array([[z.real, z.imag], [-z.imag, z.real]]))
        else:
            blocks.append(np.array([[z.real]]))
    out = np.zeros((len(lam), len(lam)))
    i = 0
    for b in blocks:
        out[i : i + len(b), i : i + len(b)] = b
        i += len(b)
    return out


def test_eigen_report_with_complex_pairs_matches_brute_force():
    # both matrices have two complex pairs with non-zero real part (2 × 2 Schur blocks)
    M, B = _rand((6, 6), 3), _rand((6, 6), 4)
    lam, mu = np.linalg.eigvals(M), np.linalg.eigvals(B)
    assert np.sum(np.abs(lam.imag) > 0.1) == 4 and np.sum(np.abs(mu.imag) > 0.1) == 4
    assert np.min(np.abs(lam[np.abs(lam.imag) > 0.1].real)) > 1.0
    d = _naive_eig_match(lam, mu)
    out = sp.eigen_report(M, B, threshold=0.25)
    assert out["eig_max_abs_diff"] == pytest.approx(d.max(), rel=1e-10)
    assert out["eig_max_rel_diff"] == pytest.approx(d.max() / np.abs(mu).max(), rel=1e-10)
    assert out["eig_fro_rel"] == pytest.approx(
        np.sqrt(np.sum(d * d)) / np.linalg.norm(B), rel=1e-10
    )
    assert out["departure_M"] == pytest.approx(naive_henrici(M), rel=1e-8)
    assert out["departure_B"] == pytest.approx(naive_henrici(B), rel=1e-8)
    # every eigenvalue itself: against a normal matrix with exactly numpy's eigenvalues
    for X, ev in ((M, lam), (B, mu)):
        out = sp.eigen_report(X, _real_normal_form(ev))
        assert out["eig_max_abs_diff"] == pytest.approx(0.0, abs=1e-12)
        assert out["departure_B"] == pytest.approx(0.0, abs=1e-14)


def test_eigen_report_of_1x1_matrices():
    out = sp.eigen_report(np.array([[2.0]]), np.array([[-3.0]]))
    assert out["eig_max_abs_diff"] == 5.0
    assert out["eig_max_rel_diff"] == pytest.approx(5 / 3, rel=1e-15)
    assert out["eig_fro_rel"] == pytest.approx(5 / 3, rel=1e-15)
    assert out["departure_M"] == 0.0 and out["departure_B"] == 0.0
    assert sp.henrici_departure(np.array([[-7.0]])) == 0.0


def test_eigen_report_threshold_is_strict_for_both_matrices():
    J = np.array([[1.0, 2.0], [0.0, 3.0]])  # triangular: departure ‖offdiag‖_F/‖J‖_F = 2/√14
    dep = sp.henrici_departure(J)
    assert dep == pytest.approx(2 / np.sqrt(14), rel=1e-12)
    I2 = np.eye(2)
    assert sp.eigen_report(J, I2, threshold=dep)["eigenvalues_meaningful"] is False
    assert sp.eigen_report(I2, J, threshold=dep)["eigenvalues_meaningful"] is False
    above = dep * (1 + 1e-12)
    assert sp.eigen_report(J, I2, threshold=above)["eigenvalues_meaningful"] is True
    assert sp.eigen_report(I2, J, threshold=above)["eigenvalues_meaningful"] is True
    assert sp.eigen_report(J, I2)["note"] == (
        "at least one matrix is far from normal (Henrici departure >= threshold): its "
        "eigenvalues do not describe its action; use singular values and the operator "
        "distance"
    )


def test_eigen_report_fields_norm2_and_a_given_distance():
    M, B = np.diag([1.0, 2.0]), 0.5 * np.eye(2)
    out = sp.eigen_report(M, B, threshold=0.25)
    # both μ are 0.5: |d| = 0.5, 1.5; max|μ| = 0.5 and ‖B‖_F = √0.5 are below 1 and still divide
    assert out["eig_max_abs_diff"] == 1.5
    assert out["eig_max_rel_diff"] == 3.0
    assert out["eig_fro_rel"] == pytest.approx(np.sqrt(2.5 / 0.5), rel=1e-15)
    assert out["threshold"] == 0.25
    assert out["eigenvalues_meaningful"] is True
    assert out["note"] == (
        "both matrices are nearly normal: eigenvalues describe their action; the operator "
        "distance still decides how close they are"
    )
    assert out["operator_distance"] == pytest.approx(
        {
            "rel_2": 3.0,
            "rel_fro": np.sqrt(5.0),
            "abs_2": 1.5,
            "abs_fro": np.sqrt(2.5),
            "norm2_B": 0.5,
            "fro_B": np.sqrt(0.5),
        },
        rel=1e-14,
    )
    od = sp.eigen_report(M, B, norm2=lambda D: 7.0)["operator_distance"]
    assert od["abs_2"] == 7.0 and od["norm2_B"] == 7.0 and od["rel_2"] == 1.0
    given = {"abs_2": 1.25}
    od = sp.eigen_report(M, B, norm2=lambda D: 7.0, distance=given)["operator_distance"]
    assert od == {"abs_2": 1.25} and od is not given
    # B = 0: no relative differences
    out = sp.eigen_report(M, np.zeros((2, 2)))
    assert out["eig_max_abs_diff"] == 2.0
    assert out["eig_max_rel_diff"] is None and out["eig_fro_rel"] is None


@pytest.mark.parametrize(
    ("M", "B", "kw", "message"),
    [
        (np.ones(3), np.eye(2), {}, r"^M must be a 2-D array"),
        (np.eye(2), np.ones(3), {}, r"^B must be a 2-D array"),
        (np.ones((2, 3)), np.eye(2), {}, r"^M must be square for eigenvalues, got shape \(2, 3\)$"),
        (np.eye(2), np.ones((3, 2)), {}, r"^B must be square for eigenvalues, got shape \(3, 2\)$"),
        (np.eye(2), np.eye(3), {}, r"^M has shape \(2, 2\) but B has \(3, 3\); they must match$"),
        (
            np.eye(2),
            np.eye(2),
            {"threshold": 0.0},
            r"^threshold must be a positive number, got 0.0$",
        ),
        (np.eye(2), np.eye(2), {"threshold": np.inf}, r"^threshold must be a positive number"),
    ],
)
def test_eigen_report_blames_the_right_argument(M, B, kw, message):
    with pytest.raises(FastinvError, match=message):
        sp.eigen_report(M, B, **kw)


# --------------------------------------------------------------------------------------------
# principal angles: _subspace_angles, principal_angles, _ks, angles_within_rank


def _frame_angles(c, s):
    """principal_angles (degrees) between span(e_1..e_k) and the span of the columns
    c_j e_j + s_j e_{k+j}: exactly the angles atan2(s_j, c_j)."""
    k = len(c)
    Q1 = np.eye(2 * k)[:, :k]
    Q2 = np.zeros((2 * k, k))
    Q2[np.arange(k), np.arange(k)] = c
    Q2[k + np.arange(k), np.arange(k)] = s
    rest = (np.arange(k, 0, -1.0), np.eye(k))
    return sp.principal_angles(None, None, [k], svd1=(Q1, *rest), svd2=(Q2, *rest))["angles_deg"][0]


def test_subspace_angles_stay_accurate_near_90_and_near_0_degrees():
    # 50° and 90° − 1e-9 rad: both from arccos (cos² < 0.5), 90° − 1e-9 rad not rounded to 90°
    c, s = np.array([np.cos(np.radians(50.0)), 1e-9]), np.array([np.sin(np.radians(50.0)), 1.0])
    np.testing.assert_allclose(
        _frame_angles(c, s), np.degrees(np.arctan2(s, c))[::-1], rtol=1e-13, atol=0
    )
    # 40° and 1e-9 rad: both from arcsin (cos² >= 0.5), 1e-9 rad not rounded to 0
    c, s = np.array([np.cos(np.radians(40.0)), 1.0]), np.array([np.sin(np.radians(40.0)), 1e-9])
    np.testing.assert_allclose(
        _frame_angles(c, s), np.degrees(np.arctan2(s, c)), rtol=1e-10, atol=0
    )


def test_subspace_angles_of_a_shared_and_an_orthogonal_direction():
    # angles 90° and 0°; for these seeds rounding puts a cosine or sine at 1 + 1 ulp, which the
    # clips to [-1, 1] must keep out of arccos/arcsin (NaN)
    for seed in (8, 14, 16, 23, 29):
        H = np.linalg.qr(_rand((6, 6), seed))[0]
        rest = (np.array([2.0, 1.0]), np.eye(2))
        out = sp.principal_angles(
            None, None, [2], svd1=(H[:, [0, 1]], *rest), svd2=(H[:, [0, 2]], *rest)
        )
        np.testing.assert_allclose(out["angles_deg"][0], [90.0, 0.0], rtol=0, atol=1e-6)


def test_principal_angles_both_sides_match_naive_for_unequal_shapes():
    # left: same row count, different column counts; right: the other way round
    for side, M1, M2 in (
        ("left", _rand((4, 3), 50), _rand((4, 5), 51)),
        ("right", _rand((4, 3), 52), _rand((6, 3), 53)),
    ):
        out = sp.principal_angles(M1, M2, [1, 2], side=side)
        assert out["side"] == side and out["k"] == [1, 2]
        U1, _, V1t = np.linalg.svd(M1)
        U2, _, V2t = np.linalg.svd(M2)
        for j, k in enumerate([1, 2]):
            B1, B2 = (U1[:, :k], U2[:, :k]) if side == "left" else (V1t[:k].T, V2t[:k].T)
            ref = naive_principal_angles(B1, B2)
            # arccos (the naive reference) is good to ~sqrt(eps) rad ≈ 1e-6° near 0°, where
            # the sines fastinv uses are exact (two planes in R³ share a line: an angle of 0)
            np.testing.assert_allclose(out["angles_deg"][j], ref, atol=2e-6)
            assert out["max_deg"][j] == pytest.approx(ref.max(), abs=2e-6)
            assert out["mean_deg"][j] == pytest.approx(ref.mean(), abs=2e-6)
    # an integer k is one subspace dimension
    M1, M2 = _rand((4, 3), 50), _rand((4, 5), 51)
    out = sp.principal_angles(M1, M2, 2)
    U1, U2 = np.linalg.svd(M1)[0], np.linalg.svd(M2)[0]
    assert out["k"] == [2]
    np.testing.assert_allclose(
        out["angles_deg"][0], naive_principal_angles(U1[:, :2], U2[:, :2]), atol=1e-9
    )


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        (
            (np.eye(3), np.eye(3), [1]),
            {"side": "up"},
            r"^side must be 'left' or 'right', got 'up'$",
        ),
        ((None, np.eye(3), [1]), {}, r"^give M1 or its SVD$"),
        ((np.eye(3), None, [1]), {}, r"^give M2 or its SVD$"),
        ((np.ones(3), np.eye(3), [1]), {}, r"^M1 must be a 2-D array"),
        ((np.eye(3), np.ones(3), [1]), {}, r"^M2 must be a 2-D array"),
        (
            (np.ones((4, 3)), np.ones((5, 3)), [1]),
            {},
            r"^the left singular vectors live in spaces of dimension 4 and 5; the matrices must "
            r"have the same shape$",
        ),
        (
            (np.ones((4, 3)), np.ones((4, 5)), [1]),
            {"side": "right"},
            r"^the right singular vectors live in spaces of dimension 3 and 5; the matrices must "
            r"have the same shape$",
        ),
        (
            (np.eye(3), np.eye(3), None),
            {},
            r"^ks must be an integer or a list of integers, got None$",
        ),
        ((np.eye(3), np.eye(3), []), {}, r"^ks is empty; give at least one subspace dimension$"),
        (
            (np.ones((4, 3)), np.ones((4, 3)), [0, 4]),
            {},
            r"^subspace dimensions must lie in \[1, 3\], got \[0, 4\]$",
        ),
    ],
)
def test_principal_angles_blames_the_right_argument(args, kw, message):
    with pytest.raises(FastinvError, match=message):
        sp.principal_angles(*args, **kw)


def test_angles_within_rank_keeps_k_up_to_the_rank_on_both_sides():
    # two 5 × 4 matrices of rank 2: k = 2 is kept, k = 3 lies beyond the rank
    M1 = _rand((5, 2), 20) @ _rand((2, 4), 21)
    M2 = _rand((5, 2), 22) @ _rand((2, 4), 23)
    svd1, svd2 = _svd(M1), _svd(M2)
    out = sp.angles_within_rank(svd1, svd2, [1, 2, 3], M1.shape)
    assert set(out) == {"left", "right"}
    for side in ("left", "right"):
        a = out[side]
        assert a["side"] == side and a["k"] == [1, 2]
        for j, k in enumerate([1, 2]):
            if side == "left":
                B1, B2 = svd1[0][:, :k], svd2[0][:, :k]
            else:
                B1, B2 = svd1[2][:k].T, svd2[2][:k].T
            np.testing.assert_allclose(
                a["angles_deg"][j], naive_principal_angles(B1, B2), atol=1e-8
            )
    out = sp.angles_within_rank(svd1, svd2, [3, 4], M1.shape, sides=("right", "left"))
    assert out == {
        "right": {"side": "right", "k": [], "max_deg": [], "mean_deg": []},
        "left": {"side": "left", "k": [], "max_deg": [], "mean_deg": []},
    }


# --------------------------------------------------------------------------------------------
# float64 throughout: split_filter_matrix, phi_summary


def test_split_filter_matrix_computes_in_float64():
    F32 = _rand((4, 4), 24).astype(np.float32)
    F = F32.astype(np.float64)
    phi, off = sp.split_filter_matrix(F32)
    np.testing.assert_array_equal(phi, np.diag(F))
    G = F - np.diag(np.diag(F))
    assert off == pytest.approx(
        math.sqrt(math.fsum((G * G).ravel()) / math.fsum((F * F).ravel())), rel=1e-14
    )


def test_phi_summary_computes_in_float64():
    phi32 = np.array([1.0, 1.1, 0.9, 0.1, 0.3, 0.7], dtype=np.float32)
    phi = phi32.astype(np.float64)  # float32(1.1) = 1.10000002: above 1 + 0.1 in float64
    out = sp.phi_summary(phi32)
    assert out["n_amplified"] == int(np.sum(phi > 1.1)) == 1
    assert out["dof"] == pytest.approx(math.fsum(phi), rel=1e-15)
    assert out["median"] == pytest.approx((phi[2] + phi[5]) / 2, rel=1e-15)


# --------------------------------------------------------------------------------------------
# compare and its plumbing


def _n2(D):
    return float(np.linalg.svd(D, compute_uv=False)[0])


def _svd_tuple(m, n, s, seed):
    """(U, s, Vt) of an m × n matrix with the given singular values and random vectors."""
    U = np.linalg.qr(_rand((m, len(s)), seed))[0]
    V = np.linalg.qr(_rand((n, len(s)), seed + 1))[0]
    return U, np.asarray(s, dtype=np.float64), V.T


def _doubling_svd_fn(X, k):
    """An exact top-k SVD that reports twice the singular values: every 2-norm and spectrum
    that goes through it comes out doubled, which shows where compare uses it."""
    U, s, Vt = np.linalg.svd(X)
    return U[:, :k], 2 * s[:k], Vt[:k], {"method": "doubled"}


def test_compare_rectangular_operator_given_by_its_svd():
    # A (8 × 4) given by its SVD; σ_4 = 6 eps lies below the rank cutoff max(m, n)·eps·σ_1 =
    # 8 eps (not below n·eps·σ_1 = 4 eps): rank 3
    U, s, Vt = _svd_tuple(8, 4, [1.0, 0.5, 0.25, 6 * _EPS], 30)
    A = (U * s) @ Vt
    M = _rand((4, 8), 32)
    c = sp.compare(M, (U, s, Vt))
    assert (c.n, c.m, c.rank_A) == (4, 8, 3)
    np.testing.assert_array_equal(c.s_A, s)
    R = M @ A - np.eye(4)
    assert c.residual["2"] == pytest.approx(_n2(R), rel=1e-12)
    assert c.residual["fro"] == pytest.approx(np.linalg.norm(R) / 2, rel=1e-12)
    # A⁺'s spectrum straight from A's: 1/σ ascending, zero beyond the rank
    np.testing.assert_array_equal(c.sv_A_inv, [4.0, 2.0, 1.0, 0.0])
    np.testing.assert_array_equal(c.ref_singular_values["A_inv"], [4.0, 2.0, 1.0, 0.0])
    P = (Vt[:3].T / s[:3]) @ U[:, :3].T
    assert c.distances["A_inv"] == pytest.approx(
        {
            "rel_2": _n2(M - P) / 4.0,
            "rel_fro": np.linalg.norm(M - P) / np.sqrt(21.0),
            "abs_2": _n2(M - P),
            "abs_fro": np.linalg.norm(M - P),
            "norm2_B": 4.0,
            "fro_B": np.sqrt(21.0),
        },
        rel=1e-12,
    )
    np.testing.assert_allclose(c.singular_values, np.linalg.svd(M, compute_uv=False), rtol=1e-12)
    assert c.ks == [1, 2]
    assert c.eigen is None
    assert c.info == {
        "svd": "full LAPACK SVD",
        "exact": True,
        "topk": 4,
        "eigen": "skipped: M is not square",
    }
    assert sp.compare(M, (U, s, Vt), ks=[1], eig=True).info["eigen"] == "skipped: M is not square"


def test_compare_routes_2_norms_and_spectra_through_svd_fn():
    A, X = _rand((6, 6), 40), _rand((6, 6), 41)
    P = np.linalg.inv(A)
    M = P + 0.1 * _rand((6, 6), 42)
    sA = np.linalg.svd(A, compute_uv=False)
    c = sp.compare(
        M,
        A,
        references={"x": X},
        topk=3,
        ks=[1, 2],
        svd_fn=_doubling_svd_fn,
        eig=True,
        eig_threshold=0.25,
    )
    assert c.info == {"svd": "svd_fn (top-k)", "exact": False, "topk": 3}
    np.testing.assert_allclose(
        c.singular_values, 2 * np.linalg.svd(M, compute_uv=False)[:3], rtol=1e-12
    )
    np.testing.assert_allclose(
        c.ref_singular_values["x"], 2 * np.linalg.svd(X, compute_uv=False)[:3], rtol=1e-12
    )
    # A⁺'s spectrum and 2-norm come from A's SVD, not from svd_fn
    np.testing.assert_allclose(c.ref_singular_values["A_inv"], 1 / sA[::-1][:3], rtol=1e-12)
    dx, dA = c.distances["x"], c.distances["A_inv"]
    assert dx["abs_2"] == pytest.approx(2 * _n2(M - X), rel=1e-12)
    assert dx["norm2_B"] == pytest.approx(2 * _n2(X), rel=1e-12)
    assert dx["abs_fro"] == pytest.approx(np.linalg.norm(M - X), rel=1e-12)
    assert dA["abs_2"] == pytest.approx(2 * _n2(M - P), rel=1e-10)
    assert dA["norm2_B"] == pytest.approx(1 / sA[-1], rel=1e-12)
    assert c.residual["2"] == pytest.approx(2 * _n2(M @ A - np.eye(6)), rel=1e-10)
    # the eigenvalue report quotes the same (svd_fn) distance and the given threshold
    assert c.eigen["operator_distance"]["abs_2"] == pytest.approx(2 * _n2(M - P), rel=1e-10)
    assert c.eigen["operator_distance"] == dA
    assert c.eigen["threshold"] == 0.25
    # topk = 1 is allowed
    c = sp.compare(M, A, topk=1, ks=[1])
    np.testing.assert_allclose(c.singular_values, [_n2(M)], rtol=1e-12)


def test_compare_default_ks_and_the_eigenvalue_step():
    A, M = _rand((5, 5), 45), _rand((5, 5), 46)
    c = sp.compare(M, A)
    assert c.ks == [1, 2, 5]  # DEFAULT_KS up to min(k, rank) = 5, inclusive
    assert "eigen" not in c.info
    d = _naive_eig_match(np.linalg.eigvals(M), np.linalg.eigvals(np.linalg.inv(A)))
    assert c.eigen["eig_max_abs_diff"] == pytest.approx(d.max(), rel=1e-9)
    # a rank-1 A: only k = 1
    assert sp.compare(M, np.outer(_rand(5, 47), _rand(5, 48))).ks == [1]
    # given ks: sorted, unique, an integer is one k
    assert sp.compare(M, A, ks=(2, 1, 2)).ks == [1, 2]
    assert sp.compare(M, A, ks=2).ks == [2]
    # eig="auto" runs up to eig_max_n inclusive
    c = sp.compare(M, A, ks=[1], eig_max_n=5)
    assert c.eigen["eig_max_abs_diff"] == pytest.approx(d.max(), rel=1e-9)
    c = sp.compare(M, A, ks=[1], eig_max_n=4)
    assert c.eigen is None and c.info["eigen"] == "skipped: n = 5 > eig_max_n = 4"
    c = sp.compare(M, A, ks=[1], eig=False)
    assert c.eigen is None and c.info["eigen"] == "skipped (eig=False)"


def _diagonal_svd_fn(X, k):
    """Exact top-k SVD of a diagonal matrix (cheap at n = 1025)."""
    d = np.diag(X).copy()
    assert np.count_nonzero(X - np.diag(d)) == 0
    idx = np.argsort(-np.abs(d), kind="stable")[:k]
    U = np.zeros((X.shape[0], k))
    U[idx, np.arange(k)] = np.where(d[idx] < 0, -1.0, 1.0)
    Vt = np.zeros((k, X.shape[1]))
    Vt[np.arange(k), idx] = 1.0
    return U, np.abs(d[idx]), Vt


def test_compare_skips_eigenvalues_above_1024_by_default():
    n = 1025
    s = np.linspace(2.0, 1.0, n)
    I = np.eye(n)
    c = sp.compare(np.diag(1.5 / s), (I, s, I), ks=[1], svd_fn=_diagonal_svd_fn)
    assert c.eigen is None and c.info["eigen"] == "skipped: n = 1025 > eig_max_n = 1024"
    assert c.distances["A_inv"]["rel_2"] == pytest.approx(0.5, rel=1e-12)


def test_compare_of_a_zero_operator():
    M = np.diag([3.0, 2.0, 1.0])
    c = sp.compare(M, np.zeros((3, 3)))
    assert c.rank_A == 0 and c.ks == [1]
    np.testing.assert_array_equal(c.sv_A_inv, np.zeros(3))
    assert c.distances["A_inv"] == {
        "rel_2": None,
        "rel_fro": None,
        "abs_2": 3.0,
        "abs_fro": pytest.approx(np.sqrt(14.0), rel=1e-15),
        "norm2_B": 0.0,
        "fro_B": 0.0,
    }
    assert c.angles["A_inv_left"] == {"side": "left", "k": [], "max_deg": [], "mean_deg": []}


def test_compare_with_a_supplied_pseudo_inverse_keeps_its_place():
    A, X, P = _rand((4, 4), 60), _rand((4, 4), 61), _rand((4, 4), 62)
    M = _rand((4, 4), 63)
    c = sp.compare(M, A, references={"x": X, "A_inv": P}, ks=[1])
    assert list(c.distances) == ["x", "A_inv"]
    assert c.distances["A_inv"]["abs_fro"] == pytest.approx(np.linalg.norm(M - P), rel=1e-12)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"M": np.ones(6)}, r"^M must be a 2-D array"),
        (
            {"M": np.ones((5, 6))},
            r"^M has shape \(5, 6\) but A has shape \(6, 6\); M must be \(6, 6\)$",
        ),
        ({"topk": 0}, r"^topk must be an integer in \[1, 6\], got 0$"),
        ({"topk": 7}, r"^topk must be an integer in \[1, 6\], got 7$"),
        ({"ks": (1, 2, 7)}, r"^ks must lie in \[1, 6\], got \[1, 2, 7\]$"),
        ({"ks": (0, 2, 3)}, r"^ks must lie in \[1, 6\], got \[0, 2, 3\]$"),
        ({"ks": ()}, r"^ks must lie in \[1, 6\], got \[\]$"),
        ({"references": {"x": np.ones(6)}}, r"^reference 'x' must be a 2-D array"),
        (
            {"references": {"x": np.ones((5, 5))}},
            r"^reference 'x' has shape \(5, 5\); it must be \(6, 6\)$",
        ),
    ],
)
def test_compare_blames_the_right_argument(kw, message):
    kw = {"M": _rand((6, 6), 64), **kw}
    with pytest.raises(FastinvError, match=message):
        sp.compare(kw.pop("M"), _rand((6, 6), 65), **kw)


# --------------------------------------------------------------------------------------------
# top_svd, spectral_norm and _call_svd_fn


def test_top_svd_and_spectral_norm_with_an_svd_fn():
    M = _rand((5, 4), 70)
    U0, s0, Vt0 = np.linalg.svd(M, full_matrices=False)

    def three(X, k):  # no info entry, more triplets than asked for
        return np.linalg.svd(X, full_matrices=False)

    U, s, Vt = sp.top_svd(M, 2, svd_fn=three)
    np.testing.assert_allclose(s, s0[:2], rtol=1e-14)
    np.testing.assert_allclose(np.abs(U.T @ U0[:, :2]), np.eye(2), atol=1e-12)
    np.testing.assert_allclose(np.abs(Vt @ Vt0[:2].T), np.eye(2), atol=1e-12)
    U, s, Vt = sp.top_svd(M, 2, svd_fn=_doubling_svd_fn)  # four parts in, three out
    np.testing.assert_allclose(s, 2 * s0[:2], rtol=1e-14)
    assert sp.spectral_norm(M, svd_fn=three) == pytest.approx(s0[0], rel=1e-14)
    for bad in (lambda X, k: (U0, s0), lambda X, k: {"U": U0}):
        with pytest.raises(
            FastinvError, match=r"^svd_fn must return \(U, s, Vt\) or \(U, s, Vt, info\)$"
        ):
            sp.spectral_norm(M, svd_fn=bad)


def test_compare_takes_float32_svd_fn_output_as_float64():
    M, A = _rand((5, 5), 71), _rand((5, 5), 72)

    def f32(X, k):
        U, s, Vt = np.linalg.svd(X)
        return U[:, :k].astype(np.float32), s[:k].astype(np.float32), Vt[:k].astype(np.float32)

    c = sp.compare(M, A, ks=[1], svd_fn=f32, eig=False)
    s32 = np.linalg.svd(M, compute_uv=False).astype(np.float32).astype(np.float64)
    # the condition number is divided in float64, not float32
    assert c.to_dict()["singular_values"]["cond"] == pytest.approx(s32[0] / s32[-1], rel=1e-14)


# --------------------------------------------------------------------------------------------
# Comparison: to_dict, _singular_value_summary, _reference_summary, arrays


def test_comparison_to_dict_fields():
    A, X = _rand((4, 4), 80), _rand((4, 4), 81)
    M = np.linalg.inv(A) + 0.1 * _rand((4, 4), 82)
    c = sp.compare(M, A, references={"x": X}, ks=[1, 2])
    d = c.to_dict()
    assert set(d) == {
        "n",
        "m",
        "rank_A",
        "offdiag_share",
        "phi_summary",
        "singular_values",
        "references",
        "principal_angles",
        "residual_identity",
        "eigen",
        "info",
    }
    assert (d["n"], d["m"], d["rank_A"]) == (4, 4, 4)
    F = naive_filter_factor_matrix(M, A)
    G = F - np.diag(np.diag(F))
    assert d["offdiag_share"] == pytest.approx(np.linalg.norm(G) / np.linalg.norm(F), rel=1e-10)
    R = M @ A - np.eye(4)
    assert d["residual_identity"] == pytest.approx(
        {"2": _n2(R), "fro": np.linalg.norm(R) / 2}, rel=1e-10
    )
    assert d["info"] == {"svd": "full LAPACK SVD", "exact": True, "topk": 4}
    lam, mu = np.linalg.eigvals(M), np.linalg.eigvals(np.linalg.inv(A))
    assert d["eigen"]["eig_max_abs_diff"] == pytest.approx(_naive_eig_match(lam, mu).max())
    assert list(d["references"]) == ["A_inv", "x"]
    assert d["references"]["x"]["abs_fro"] == pytest.approx(np.linalg.norm(M - X), rel=1e-12)
    pa = d["principal_angles"]
    assert set(pa) == {"ks", "A_inv_left", "A_inv_right", "x_left", "x_right"}
    assert pa["ks"] == [1, 2]
    U1, _, V1t = np.linalg.svd(M)
    U2, _, V2t = np.linalg.svd(X)
    for key, B1, B2 in (("x_left", U1, U2), ("x_right", V1t.T, V2t.T)):
        assert set(pa[key]) == {"side", "k", "max_deg", "mean_deg", "gap_1", "gap_2"}
        ref = naive_principal_angles(B1[:, :2], B2[:, :2])
        assert pa[key]["max_deg"][1] == pytest.approx(ref.max(), abs=1e-9)
    assert d["singular_values"]["max"] == pytest.approx(_n2(M), rel=1e-12)
    assert d["phi_summary"]["dof"] == pytest.approx(np.trace(F), rel=1e-10)


def _with(**fields):
    comp = sp.compare(np.eye(3), np.eye(3), ks=[1])
    return dataclasses.replace(comp, **fields)


def test_singular_value_summary_from_the_values():
    sv = np.array([4.0, 2.0, 0.5])
    out = _with(singular_values=sv, sv_A_inv=np.array([5.0, 3.0])).to_dict()["singular_values"]
    assert out == {
        "k": 3,
        "max": 4.0,
        "min_of_k": 0.5,
        "cond": 8.0,
        "A_inv_max": 5.0,
        "values": [4.0, 2.0, 0.5],
    }
    # a zero last value: no condition number; an empty A⁺ spectrum: no maximum
    out = _with(singular_values=np.array([2.0, 1.0, 0.0]), sv_A_inv=np.zeros(0)).to_dict()
    assert out["singular_values"]["cond"] is None
    assert out["singular_values"]["A_inv_max"] is None
    # the method itself gives None, not inf (which only to_dict's JSON conversion maps to None)
    comp = _with(singular_values=np.array([2.0, 1.0, 0.0]))
    assert comp._singular_value_summary()["cond"] is None
    # a single value (topk = 1): condition number 1
    assert _with(singular_values=np.array([2.0])).to_dict()["singular_values"]["cond"] == 1.0
    # values are listed up to 64 of them
    sv64 = np.arange(64, 0, -1.0)
    assert _with(singular_values=sv64).to_dict()["singular_values"]["values"] == sv64.tolist()
    out = _with(singular_values=np.arange(65, 0, -1.0)).to_dict()["singular_values"]
    assert "values" not in out and out["cond"] == 65.0


def test_reference_summary_from_the_parts():
    comp = _with(
        phi=np.array([1.0, 0.5, 0.0]),
        distances={"x": {"rel_2": 0.5}, "y": {"rel_2": 1.0}},
        sv_distances={"x": {"max_log10": 0.25}},
        phi_refs={"x": np.array([0.5, 0.5, 1.0])},
        ref_offdiag={"x": 0.125},
    )
    refs = comp.to_dict()["references"]
    assert refs == {
        "x": {
            "rel_2": 0.5,
            "sv": {"max_log10": 0.25},
            "phi_max_abs_diff": 1.0,
            "phi_rms_diff": pytest.approx(np.sqrt(1.25 / 3), rel=1e-15),
            "ref_offdiag_share": 0.125,
        },
        "y": {"rel_2": 1.0},
    }


def test_comparison_arrays_hold_the_fields():
    A, X = _rand((4, 4), 90), _rand((4, 4), 91)
    M = _rand((4, 4), 92)
    c = sp.compare(M, A, references={"x": X}, ks=[1, 2])
    arr = c.arrays()
    keys = {"s_A", "phi", "sv", "sv_A_inv", "ks", "phi_ref_A_inv", "phi_ref_x", "sv_ref_A_inv"}
    keys |= {"sv_ref_x"} | {
        f"angles_{w}_deg_{r}_{s}"
        for w in ("max", "mean")
        for r in ("A_inv", "x")
        for s in ("left", "right")
    }
    assert set(arr) == keys
    sA = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(arr["s_A"], sA, rtol=1e-12)
    np.testing.assert_allclose(arr["sv"], np.linalg.svd(M, compute_uv=False), rtol=1e-12)
    np.testing.assert_allclose(arr["sv_A_inv"], 1 / sA[::-1], rtol=1e-12)
    np.testing.assert_array_equal(arr["ks"], [1, 2])
    np.testing.assert_allclose(arr["phi"], np.diag(naive_filter_factor_matrix(M, A)), atol=1e-12)
    np.testing.assert_allclose(
        arr["phi_ref_x"], np.diag(naive_filter_factor_matrix(X, A)), atol=1e-12
    )
    np.testing.assert_allclose(arr["sv_ref_x"], np.linalg.svd(X, compute_uv=False), rtol=1e-12)
    U1, U2 = np.linalg.svd(M)[0], np.linalg.svd(X)[0]
    ref = [naive_principal_angles(U1[:, :k], U2[:, :k]) for k in (1, 2)]
    np.testing.assert_allclose(arr["angles_max_deg_x_left"], [a.max() for a in ref], atol=1e-9)
    np.testing.assert_allclose(arr["angles_mean_deg_x_left"], [a.mean() for a in ref], atol=1e-9)


def test_subspace_angles_mixed_above_and_below_45_degrees_stay_accurate():
    """Angles of 60° and 1e-8 rad together: the small one must come from its sine (from the
    cosine, 1 − 5e-17 rounds to 1 and the angle to 0)."""
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    e1, e2, f1, f2 = Q.T[:4]
    th = np.array([np.pi / 3, 1e-8])
    Q1 = np.column_stack([e1, e2])
    Q2 = np.column_stack(
        [np.cos(th[0]) * e1 + np.sin(th[0]) * f1, np.cos(th[1]) * e2 + np.sin(th[1]) * f2]
    )
    got = sp.principal_angles(None, None, [2], svd1=(Q1, [2.0, 1.0], np.eye(2)),
                              svd2=(Q2, [2.0, 1.0], np.eye(2)))  # fmt: skip
    np.testing.assert_allclose(np.radians(got["angles_deg"][0]), th, rtol=1e-7)
