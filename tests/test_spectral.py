"""Spectral comparisons (SCIENCE.md §3) against tests/naive.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg as sla
from naive import (
    gaussian_blur,
    naive_filter_factor_matrix,
    naive_henrici,
    naive_phi_counts,
    naive_principal_angles,
)

from fastinv.errors import FastinvError
from fastinv.linalg import estimators as E
from fastinv.linalg import spectral as S


def random_matrix(rng, m, n, smin=0.1, smax=1.0):
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * np.logspace(np.log10(smax), np.log10(smin), r)) @ V.T


# ------------------------------------------------------------------------------------------
# filter factors


@pytest.mark.parametrize("shape", [(12, 12), (15, 9), (9, 15)])
def test_filter_factor_matrix_against_naive(rng, shape):
    A = rng.standard_normal(shape)
    M = rng.standard_normal((shape[1], shape[0]))
    U, s, Vt = E.thin_svd(A)
    F = S.filter_factor_matrix(M, U, s, Vt)
    Fn = naive_filter_factor_matrix(M, A)
    # singular vectors are defined up to sign: compare |F| and the invariant diag
    np.testing.assert_allclose(np.abs(F), np.abs(Fn), rtol=1e-10, atol=1e-12)
    phi, off = S.filter_factors(M, U, s, Vt)
    np.testing.assert_allclose(phi, np.diag(F), rtol=1e-14)
    d = F - np.diag(np.diag(F))
    assert off == pytest.approx(np.linalg.norm(d) / np.linalg.norm(F), rel=1e-12)


def test_filter_factors_of_zero_and_inverse(rng):
    A = random_matrix(rng, 10, 10)
    U, s, Vt = E.thin_svd(A)
    phi, off = S.filter_factors(np.zeros((10, 10)), U, s, Vt)
    assert np.all(phi == 0) and off == 0.0
    phi, off = S.filter_factors(np.linalg.inv(A), U, s, Vt)
    np.testing.assert_allclose(phi, 1.0, atol=1e-12)
    assert off < 1e-12


# ------------------------------------------------------------------------------------------
# singular values: Weyl and Mirsky


@pytest.mark.parametrize("shape", [(10, 10), (14, 8)])
def test_weyl_and_mirsky_hold_on_random_pairs(rng, shape):
    for trial in range(10):
        M1 = rng.standard_normal(shape)
        M2 = M1 + 10.0 ** (-trial % 4) * rng.standard_normal(shape)
        s1, s2 = S.singular_values(M1), S.singular_values(M2)
        np.testing.assert_allclose(s1, np.linalg.svd(M1, compute_uv=False), rtol=1e-12)
        D = M1 - M2
        out = S.sv_distance(s1, s2, norm2_diff=np.linalg.norm(D, 2), fro_diff=np.linalg.norm(D))
        assert out["weyl_holds"] and out["mirsky_holds"]
        assert out["max_abs"] <= np.linalg.norm(D, 2) * (1 + 1e-12)
        assert out["l2_abs"] <= np.linalg.norm(D) * (1 + 1e-12)
        d = np.abs(np.log10(s1) - np.log10(s2))
        assert out["max_log10"] == pytest.approx(d.max(), rel=1e-12)
        assert out["rms_log10"] == pytest.approx(np.sqrt(np.mean(d**2)), rel=1e-12)
    # the checks can fail: a claimed norm too small is flagged
    out = S.sv_distance(np.array([2.0, 1.0]), np.array([1.0, 1.0]), norm2_diff=0.5, fro_diff=0.5)
    assert not out["weyl_holds"] and not out["mirsky_holds"]


def test_sv_distance_log_scale_and_tiny():
    out = S.sv_distance(np.array([10.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0]))
    assert out["max_log10"] == pytest.approx(1.0)
    assert out["n_compared"] == 2 and out["n_total"] == 3
    assert "weyl_holds" not in out


# ------------------------------------------------------------------------------------------
# principal angles


def test_principal_angles_basic(rng):
    M = rng.standard_normal((12, 12))
    for side in ("left", "right"):
        out = S.principal_angles(M, M, [1, 3, 12], side=side)
        assert max(out["max_deg"]) < 1e-6
        # invariant to scaling either matrix
        sc = S.principal_angles(M, -7.5 * M, [1, 3], side=side)
        assert max(sc["max_deg"]) < 1e-6
    # orthogonal top-2 subspaces
    M1 = np.diag([5.0, 4.0, 1.0, 0.5, 0.1])
    M2 = np.diag([1.0, 0.5, 5.0, 4.0, 0.1])
    out = S.principal_angles(M1, M2, [1, 2])
    np.testing.assert_allclose(out["max_deg"], 90.0, atol=1e-10)
    np.testing.assert_allclose(out["angles_deg"][1], [90.0, 90.0], atol=1e-10)
    # scaling M2 does not change the angles
    out2 = S.principal_angles(3.0 * M1, 0.01 * M2, [1, 2])
    assert out2["max_deg"] == out["max_deg"]
    assert out["gap_1"][1] == pytest.approx((4.0 - 1.0) / 5.0)


def test_principal_angles_against_naive(rng):
    M1 = rng.standard_normal((15, 15))
    M2 = M1 + 0.3 * rng.standard_normal((15, 15))
    out = S.principal_angles(M1, M2, [2, 5], side="right")
    V1 = np.linalg.svd(M1)[2].T
    V2 = np.linalg.svd(M2)[2].T
    for j, k in enumerate([2, 5]):
        np.testing.assert_allclose(
            out["angles_deg"][j], naive_principal_angles(V1[:, :k], V2[:, :k]), atol=1e-6
        )
        np.testing.assert_allclose(
            np.radians(out["angles_deg"][j]),
            sla.subspace_angles(V1[:, :k], V2[:, :k]),
            rtol=1e-8,
            atol=1e-12,
        )
    base = S.principal_angles(M1, M2, [2, 5], side="right")
    scaled = S.principal_angles(1e3 * M1, 1e-3 * M2, [2, 5], side="right")
    np.testing.assert_allclose(scaled["max_deg"], base["max_deg"], atol=1e-8)


# ------------------------------------------------------------------------------------------
# distances and eigenvalues


def test_operator_distance_and_residual(rng):
    A = random_matrix(rng, 8, 8)
    B = np.linalg.inv(A)
    M = B + 1e-3 * rng.standard_normal((8, 8))
    d = S.operator_distance(M, B)
    assert d["rel_2"] == pytest.approx(np.linalg.norm(M - B, 2) / np.linalg.norm(B, 2))
    assert d["rel_fro"] == pytest.approx(np.linalg.norm(M - B) / np.linalg.norm(B))
    r = S.residual_identity(B, A)
    assert r["2"] < 1e-12 and r["fro"] < 1e-12
    r0 = S.residual_identity(np.zeros((8, 8)), A)
    assert r0["2"] == pytest.approx(1.0) and r0["fro"] == pytest.approx(1.0)
    assert S.operator_distance(M, np.zeros((8, 8)))["rel_2"] is None


def test_eigenvalue_trap():
    """C = I and I − N (N nilpotent) share all eigenvalues but are ‖N‖₂ apart."""
    n = 8
    Nil = np.triu(np.full((n, n), 0.5), 1)
    C, B = np.eye(n), np.eye(n) - Nil
    rep = S.eigen_report(C, B)
    assert rep["eig_max_abs_diff"] < 1e-12
    assert rep["departure_M"] < 1e-14
    assert rep["departure_B"] > 0.5
    assert rep["departure_B"] == pytest.approx(np.linalg.norm(Nil) / np.linalg.norm(B))
    assert rep["eigenvalues_meaningful"] is False
    od = rep["operator_distance"]
    assert od["rel_2"] == pytest.approx(np.linalg.norm(Nil, 2) / np.linalg.norm(B, 2), rel=1e-12)
    assert od["rel_2"] > 0.5  # reported as far apart
    json.dumps(rep, allow_nan=False)


def test_henrici_departure(rng):
    Q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    Ssym = rng.standard_normal((10, 10))
    Ssym = Ssym + Ssym.T
    for normal in (Q, Ssym, np.diag(rng.standard_normal(10))):
        assert S.henrici_departure(normal) < 1e-12
    rep = S.eigen_report(Ssym, Ssym + 1e-3 * np.diag(np.arange(10.0)))
    assert rep["eigenvalues_meaningful"] is True
    for _ in range(5):
        M = rng.standard_normal((10, 10))
        assert S.henrici_departure(M) == pytest.approx(naive_henrici(M), rel=1e-6)
    # complex eigenvalue pairs (2 × 2 blocks of the real Schur form) are handled exactly
    R = np.array([[0.0, -2.0], [0.5, 0.0]])
    assert S.henrici_departure(R) == pytest.approx(naive_henrici(R), rel=1e-12)
    assert S.henrici_departure(np.array([[0.0, -1.0], [1.0, 0.0]])) < 1e-15
    assert S.henrici_departure(np.triu(np.ones((5, 5)), 1)) == pytest.approx(1.0)
    assert S.henrici_departure(np.zeros((3, 3))) == 0.0


# ------------------------------------------------------------------------------------------
# compare()


def test_compare_inverse_is_perfect(rng):
    A = random_matrix(rng, 20, 20, smin=0.05)
    c = S.compare(np.linalg.inv(A), A, ks=(1, 5, 10))
    np.testing.assert_allclose(c.phi, 1.0, atol=1e-12)
    assert c.offdiag_share < 1e-12
    d = c.distances["A_inv"]
    assert d["rel_2"] < 1e-12 and d["rel_fro"] < 1e-12
    assert c.residual["2"] < 1e-12
    for key in ("A_inv_left", "A_inv_right"):
        assert max(c.angles[key]["max_deg"]) < 1e-5
    assert c.sv_distances["A_inv"]["max_log10"] < 1e-12
    assert c.eigen is not None and c.eigen["eig_max_rel_diff"] < 1e-10
    summ = c.to_dict()
    json.dumps(summ, allow_nan=False)
    assert summ["phi_summary"]["n_inverted"] == 20
    assert summ["phi_summary"]["first_suppressed"] is None


def test_compare_with_references_and_arrays(rng):
    A = gaussian_blur(40, 1.5)
    svd = E.thin_svd(A)
    lam = 1e-4
    Ct = E.tikhonov(A, lam, svd=svd)
    refs = {"tik": Ct, "tsvd": E.tsvd(A, 10, svd=svd)}
    c = S.compare(Ct, svd, references=refs, ks=(1, 5, 10, 40))
    assert set(c.distances) == {"A_inv", "tik", "tsvd"}
    assert c.distances["tik"]["rel_2"] < 1e-12
    np.testing.assert_allclose(c.phi, svd[1] ** 2 / (svd[1] ** 2 + lam), atol=1e-12)
    np.testing.assert_allclose(c.phi_refs["tik"], c.phi, atol=1e-12)
    assert c.offdiag_share < 1e-12
    for name in c.distances:
        assert c.sv_distances[name]["weyl_holds"] and c.sv_distances[name]["mirsky_holds"]
    # TSVD with k = 10 has rank 10: its top-40 subspace is undefined, reported as NaN
    aa = c.angles_arrays()
    assert aa["tsvd_left"].shape == (4,) and np.isnan(aa["tsvd_left"][-1])
    assert not np.isnan(aa["tsvd_left"][0])
    summ = c.to_dict()
    json.dumps(summ, allow_nan=False)
    ps = summ["phi_summary"]
    # Tikhonov's φ = σ²/(σ² + λ) in closed form: the counts follow by plain loops
    phi_exact = svd[1] ** 2 / (svd[1] ** 2 + lam)
    k_inv, k_sup = naive_phi_counts(phi_exact)
    assert 0 < k_inv < k_sup < 40  # a non-trivial case
    assert (ps["n_inverted"], ps["first_suppressed"]) == (k_inv, k_sup)
    assert ps["n_inverted_total"] == int(np.sum(np.abs(phi_exact - 1) <= 0.1))
    assert ps["n_suppressed"] == int(np.sum(np.abs(phi_exact) <= 0.1))
    assert ps["dof"] == pytest.approx(phi_exact.sum(), rel=1e-10)
    assert ps["suppressed_fraction_after"] == 1.0  # Tikhonov φ is monotone
    arr = c.arrays()
    assert arr["phi"].shape == (40,) and arr["sv_ref_tik"].shape == (40,)
    assert arr["angles_max_deg_A_inv_left"].shape == (4,)


def test_compare_topk_with_svd_fn(rng):
    A = random_matrix(rng, 30, 30, smin=1e-3)
    M = np.linalg.inv(A) + 1e-2 * rng.standard_normal((30, 30))
    calls = []

    def svd_fn(X, k):
        calls.append(k)
        U, s, Vt = np.linalg.svd(X)
        return U[:, :k], s[:k], Vt[:k], {"method": "test"}

    c = S.compare(M, A, ks=(1, 3), topk=5, svd_fn=svd_fn, eig=False)
    full = S.compare(M, A, ks=(1, 3))
    assert c.singular_values.shape == (5,)
    np.testing.assert_allclose(c.singular_values, full.singular_values[:5], rtol=1e-12)
    np.testing.assert_allclose(c.sv_A_inv, full.sv_A_inv[:5], rtol=1e-12)
    assert c.distances["A_inv"]["rel_2"] == pytest.approx(full.distances["A_inv"]["rel_2"])
    assert c.info["exact"] is False and c.eigen is None and "eigen" in c.info
    assert 1 in calls and 5 in calls
    np.testing.assert_allclose(
        c.angles["A_inv_left"]["max_deg"], full.angles["A_inv_left"]["max_deg"], atol=1e-6
    )


def test_compare_singular_operator(rng):
    A = random_matrix(rng, 12, 12)
    A[:, -1] = 0.0  # rank 11
    M = np.linalg.pinv(A)
    c = S.compare(M, A, ks=(1, 11, 12))
    assert c.rank_A == 11
    assert c.sv_A_inv[-1] == 0.0
    assert c.distances["A_inv"]["rel_2"] < 1e-10
    assert np.isnan(c.angles_arrays()["A_inv_left"][-1])
    json.dumps(c.to_dict(), allow_nan=False)


# ------------------------------------------------------------------------------------------
# bad input


def test_bad_inputs(rng):
    A = random_matrix(rng, 6, 6)
    U, s, Vt = E.thin_svd(A)
    M = rng.standard_normal((6, 6))
    bad = M.copy()
    bad[0, 0] = np.nan
    cases = [
        lambda: S.filter_factors(np.ones((5, 6)), U, s, Vt),
        lambda: S.filter_factors(bad, U, s, Vt),
        lambda: S.filter_factors(M, U, s[::-1], Vt),
        lambda: S.sv_distance(np.ones(3), np.ones(4)),
        lambda: S.sv_distance(np.array([1.0, -1.0]), np.ones(2)),
        lambda: S.principal_angles(M, M, [0]),
        lambda: S.principal_angles(M, M, [7]),
        lambda: S.principal_angles(M, M, [1], side="up"),
        lambda: S.principal_angles(M, np.ones((5, 6)), [1]),
        lambda: S.operator_distance(M, np.ones((6, 5))),
        lambda: S.residual_identity(np.ones((5, 6)), A),
        lambda: S.henrici_departure(np.ones((3, 4))),
        lambda: S.eigen_report(M, M, threshold=-1.0),
        lambda: S.compare(np.ones((5, 6)), A),
        lambda: S.compare(M, A, ks=(0, 1)),
        lambda: S.compare(M, A, topk=7),
        lambda: S.compare(M, A, references={"x": np.ones((5, 5))}),
        lambda: S.compare(bad, A),
    ]
    for case in cases:
        with pytest.raises(FastinvError):
            case()
