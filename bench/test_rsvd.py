"""Randomized SVD (n = 4096, k = 128, float64) against scikit-learn, torch and exact solvers.

Matrices ``M = U diag(s) Vᵀ`` with Haar-random U, V (cached under /tmp, see conftest) on two
spectra: slowly decaying ``s_i = 1/i`` and rapidly decaying ``s_i = exp(-i/20)``.

Same sampling for every randomized method: block ``l = k + 10`` (``n_oversamples=10``) and
``2q + 2`` passes over M (fastinv ``n_iter=q``; sklearn ``randomized_svd(n_iter=q)``: one pass
for the sketch, 2q power passes, one for ``QᵀM``; ``torch.svd_lowrank(q=l, niter=q)``
likewise), for q = 2 and q = 7 (sklearn's "auto" for k < 0.1·n). fastinv is timed with its
default a-posteriori error estimate (5 probes, 2 power steps: ``2·2 + 1`` extra *narrow*
passes with 5 vectors) and without it.

Accuracy: ``max_i |s_i − s*_i| / s*_i`` over the top k, s* the exact spectrum, for the timed
seed 0 and, since it is a random variable whose spread across seeds is wider than the
differences between the methods, its median over seeds 0–11 (untimed runs).

Block Krylov: the smallest ``n_iter`` for which fastinv's block Krylov method reaches 1e-6 on
the top 128 is searched (untimed), then timed against ``scipy.sparse.linalg.svds`` with
``solver="propack"`` (tol 1e-6 and the default, machine precision) and the full LAPACK SVD
(``scipy.linalg.svd``, gesdd).

Targets (issue "Kernels at the limit"): accuracy at least sklearn's with the same oversampling
and passes; ≥ 2× faster than sklearn; no slower than torch.svd_lowrank with the same passes;
block Krylov to 1e-6 on the slow spectrum faster than svds (PROPACK).
"""

from __future__ import annotations

import numpy as np
import pytest

N = 4096
K = 128
P = 10
QS = (2, 7)
KINDS = ("slow", "fast")
TARGET = 1e-6
SEEDS = 12  # accuracy is a random variable: its median over this many seeds is reported too


@pytest.fixture(scope="module")
def mats(spectral_matrix):
    return {kind: spectral_matrix(kind, N) for kind in KINDS}


@pytest.fixture(scope="module")
def rs(rsvd_mod):
    """fastinv's rsvd with the settings shared by every randomized method here."""

    def run(M, q, *, method="hmt", estimate_error=True, seed=0):
        return rsvd_mod.rsvd(
            M, K, n_oversamples=P, n_iter=q, method=method, seed=seed, estimate_error=estimate_error
        )

    return run


@pytest.fixture(scope="module", autouse=True)
def _warm(rsvd_mod):
    """Numba JIT, LAPACK, torch and sklearn code paths at a small size before any timing."""
    import torch
    from sklearn.utils.extmath import randomized_svd

    a = np.random.default_rng(1).standard_normal((600, 500))
    for method in ("hmt", "block_krylov"):
        rsvd_mod.rsvd(a, 20, n_iter=2, method=method)
    randomized_svd(a, 20, n_iter=2, random_state=0)
    torch.svd_lowrank(torch.from_numpy(a), q=30, niter=2)


def _sklearn(M, q, seed=0):
    from sklearn.utils.extmath import randomized_svd

    return randomized_svd(M, K, n_oversamples=P, n_iter=q, random_state=seed)


def _torch(Mt, q, seed=0):
    import torch

    torch.manual_seed(seed)
    return torch.svd_lowrank(Mt, q=K + P, niter=q)


def _seed_median(err0: float, errs_fn) -> float:
    """Median error over seeds 0..SEEDS-1 (seed 0's error already known); untimed."""
    errs = [err0] + [errs_fn(sd) for sd in range(1, SEEDS)]
    return float(np.median(errs))


def _record(benchmark, *, group, label, role, err, passes=None):
    benchmark.extra_info.update(label=label, role=role, max_rel_err=err)
    if passes is not None:
        benchmark.extra_info["passes"] = int(passes)


# ------------------------------------------------------------------------------ same passes
@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["bound", "fastinv", "fastinv_noest", "sklearn", "torch"])
def test_randomized_same_passes(benchmark, mats, rs, topk_err, kind, q, impl):
    M, s = mats[kind]
    benchmark.group = f"rsvd n={N} k={K} p={P}, {kind} spectrum, q={q} ({2 * q + 2} passes)"
    rounds = 7
    if impl == "bound":
        # the 2q + 2 products with an l-vector block that every method here makes, and
        # nothing else (no orthonormalisation, no small SVD): the floor for this number of
        # passes. Blocks as C-ordered rows (l, n), the faster layout for OpenBLAS here
        # (6 passes: 0.32-0.34 s against 0.43-0.47 s for M @ X with X of shape (n, l))
        blk = np.random.default_rng(0).standard_normal((K + P, N))
        Mt = M.T

        def bare():
            y = blk @ Mt
            for _ in range(q):
                y = (y @ M) @ Mt
            return y @ M

        benchmark.pedantic(bare, rounds=rounds, iterations=1)
        benchmark.extra_info.update(
            label=f"bound: {2 * q + 2} bare products M @ X, Mᵀ @ Y with {K + P} columns",
            role="bound",
            passes=2 * q + 2,
        )
        return
    if impl in ("fastinv", "fastinv_noest"):
        est = impl == "fastinv"
        res = benchmark.pedantic(lambda: rs(M, q, estimate_error=est), rounds=rounds, iterations=1)
        assert res.n_passes == 2 * q + 2
        label = "fastinv.rsvd hmt" + (" (+ error estimate)" if est else " (estimate_error=False)")
        err = topk_err(res.s, s, K)
        _record(
            benchmark,
            group=benchmark.group,
            label=label,
            role="fastinv" if est else "fastinv-variant",
            err=err,
            passes=res.n_passes,
        )
        if est:
            benchmark.extra_info["err_median_seeds"] = _seed_median(
                err, lambda sd: topk_err(rs(M, q, estimate_error=False, seed=sd).s, s, K)
            )
    elif impl == "sklearn":
        _, sv, _ = benchmark.pedantic(lambda: _sklearn(M, q), rounds=rounds, iterations=1)
        err = topk_err(sv, s, K)
        _record(
            benchmark,
            group=benchmark.group,
            label=f"sklearn randomized_svd(n_iter={q})",
            role="peer",
            err=err,
            passes=2 * q + 2,
        )
        benchmark.extra_info["err_median_seeds"] = _seed_median(
            err, lambda sd: topk_err(_sklearn(M, q, sd)[1], s, K)
        )
    else:
        import torch

        Mt = torch.from_numpy(M)
        _, sv, _ = benchmark.pedantic(lambda: _torch(Mt, q), rounds=rounds, iterations=1)
        err = topk_err(sv.numpy(), s, K)
        _record(
            benchmark,
            group=benchmark.group,
            label=f"torch.svd_lowrank(q={K + P}, niter={q})",
            role="peer",
            err=err,
            passes=2 * q + 2,
        )
        benchmark.extra_info["err_median_seeds"] = _seed_median(
            err, lambda sd: topk_err(_torch(Mt, q, sd)[1].numpy(), s, K)
        )


# ------------------------------------------------------------------------------ to 1e-6
_Q_CANDIDATES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26)


@pytest.fixture(scope="module")
def krylov_q(mats, rs, topk_err):
    """Smallest n_iter in _Q_CANDIDATES for which block Krylov reaches TARGET (per spectrum)."""
    found = {}
    for kind in KINDS:
        M, s = mats[kind]
        found[kind] = None
        for q in _Q_CANDIDATES:
            res = rs(M, q, method="block_krylov", estimate_error=False)
            if res.n_iter < q:  # capped so that the Krylov basis fits: no larger q possible
                break
            if topk_err(res.s, s, K) <= TARGET:
                found[kind] = q
                break
    return found


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["krylov", "krylov_noest", "svds_tol", "svds", "gesdd"])
def test_to_tolerance(benchmark, mats, rs, topk_err, krylov_q, kind, impl):
    import scipy.linalg
    import scipy.sparse.linalg

    M, s = mats[kind]
    benchmark.group = (
        f"top-{K} singular values to {TARGET:g} relative error, n={N}, {kind} spectrum"
    )
    if impl.startswith("krylov"):
        q = krylov_q[kind]
        if q is None:
            pytest.skip(f"block Krylov did not reach {TARGET:g} with n_iter <= {_Q_CANDIDATES[-1]}")
        est = impl == "krylov"
        res = benchmark.pedantic(
            lambda: rs(M, q, method="block_krylov", estimate_error=est),
            rounds=5,
            iterations=1,
        )
        _record(
            benchmark,
            group=benchmark.group,
            label=f"fastinv.rsvd block_krylov n_iter={q}, p={P}"
            + (" (+ error estimate)" if est else " (estimate_error=False)"),
            role="fastinv" if est else "fastinv-variant",
            err=topk_err(res.s, s, K),
            passes=res.n_passes,
        )
    elif impl.startswith("svds"):
        tol = TARGET if impl == "svds_tol" else 0.0

        def run():
            return scipy.sparse.linalg.svds(M, k=K, solver="propack", tol=tol, random_state=0)

        _, sv, _ = benchmark.pedantic(run, rounds=3, iterations=1)
        _record(
            benchmark,
            group=benchmark.group,
            label=f"scipy svds(k={K}, solver='propack', tol={tol:g})",
            role="peer",
            err=topk_err(np.sort(sv)[::-1], s, K),
        )
    else:
        sv = benchmark.pedantic(
            lambda: scipy.linalg.svd(M, full_matrices=False, lapack_driver="gesdd")[1],
            rounds=2,
            iterations=1,
        )
        _record(
            benchmark,
            group=benchmark.group,
            label="scipy.linalg.svd (gesdd, full)",
            role="peer",
            err=topk_err(sv, s, K),
        )
