"""blur2d ``apply`` and ``svd_topk`` at n = 65536 (256 × 256) against what a user would use
instead (issue 12, "Done when": bench/).

Operators (``fastinv.make_operator("blur2d", ...)``):

- periodic Gaussian blur, sigma = 2 (2-D FFT; exact SVD from the FFT);
- zero-boundary disk blur, radius 3 (matrix-free; spectra by the randomized SVD). Its peer
  is the exact ``scipy.sparse`` CSR matrix of the same map (29 nonzeros a row, built from
  shifted identities; checked equal to fastinv's product before timing).

Peers: the dense product ``X Aᵀ`` where a dense A fits (not at n = 65536: 32 GiB; at
n = 16384 (128 × 128): 2 GiB), the sparse product, and ``scipy.sparse.linalg.svds`` (ARPACK,
default tol 0) on a ``LinearOperator`` of the same map or on the sparse matrix, for the top
k = 16 singular triplets. Inputs: a batch of 8 images as rows (float64).

Accuracy (extra_info ``max_rel_err``): max_i |s_i − s*_i| / s*_i over the top k, s* the
exact FFT spectrum (periodic) or svds' converged values (zero boundary).

Run: ``python3 -m pytest bench/test_operators.py --benchmark-only -q`` (~3–4 min on 2 cores;
the svds runs dominate, each timed once).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import fastinv

SIDE = 256
N = SIDE * SIDE
DENSE_SIDE = 128  # n = 16384: a dense float64 A is 2 GiB (at n = 65536 it would be 32 GiB)
K = 16
BATCH = 8
RADIUS = 3
ONCE = dict(rounds=1, iterations=1, warmup_rounds=0)

#: svds' converged top-k of the zero-boundary blur, for fastinv's accuracy (filled in order)
_REFERENCE: dict = {}


def periodic(side: int):
    return fastinv.make_operator(
        "blur2d", side * side, shape=(side, side), psf="gaussian", sigma=2.0, boundary="periodic"
    )


def zero_disk(side: int):
    return fastinv.make_operator(
        "blur2d", side * side, shape=(side, side), psf="disk", radius=RADIUS, boundary="zero"
    )


def disk_csr(side: int) -> sp.csr_matrix:
    """The zero-boundary disk blur as CSR: Σ_d w · (T(d_r) ⊗ T(d_c)), T(d) the shift by d."""
    offs = [
        (a, b)
        for a in range(-RADIUS, RADIUS + 1)
        for b in range(-RADIUS, RADIUS + 1)
        if a * a + b * b <= RADIUS * RADIUS + 1e-9
    ]
    w = 1.0 / len(offs)
    shift = {d: sp.eye(side, k=-d, format="csr") for d in range(-RADIUS, RADIUS + 1)}
    return sum(w * sp.kron(shift[a], shift[b], format="csr") for a, b in offs).tocsr()


def as_linop(op) -> sla.LinearOperator:
    """What a user hands svds: the same map, one vector at a time."""
    return sla.LinearOperator(
        op.shape,
        matvec=lambda v: op.apply(np.ravel(v)),
        rmatvec=lambda v: op.adjoint(np.ravel(v)),
        dtype=np.float64,
    )


def top_svds(L) -> np.ndarray:
    s = sla.svds(L, k=K, random_state=0, return_singular_vectors=False)
    return np.sort(s)[::-1]


def rel_err(s, s_ref) -> float:
    return float(np.max(np.abs(np.asarray(s)[:K] - s_ref[:K]) / s_ref[:K]))


def tag(benchmark, role: str, label: str, **extra) -> None:
    benchmark.extra_info.update(role=role, label=label, **extra)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).standard_normal((BATCH, N))


@pytest.fixture(scope="module")
def ops():
    return {"periodic": periodic(SIDE), "zero": zero_disk(SIDE)}


@pytest.fixture(scope="module")
def csr(ops, X):
    S = disk_csr(SIDE)
    np.testing.assert_allclose(X @ S.T, ops["zero"].apply(X), rtol=0, atol=1e-12)
    return S


# ------------------------------------------------------------------------------------------
# apply at n = 65536


@pytest.mark.benchmark(group="apply: periodic Gaussian blur, n = 65536, 8 images")
def test_apply_periodic_fastinv(benchmark, ops, X):
    tag(benchmark, "fastinv", "fastinv op.apply (rfft2)")
    benchmark(ops["periodic"].apply, X)


@pytest.mark.benchmark(group="apply: periodic Gaussian blur, n = 65536, 8 images")
def test_apply_periodic_numpy_fft(benchmark, ops, X):
    lam = np.fft.rfft2(ops["periodic"].linear_map.kernel)

    def by_hand(X):
        Z = np.fft.rfft2(X.reshape(-1, SIDE, SIDE))
        return np.fft.irfft2(Z * lam, s=(SIDE, SIDE)).reshape(X.shape[0], -1)

    np.testing.assert_allclose(by_hand(X), ops["periodic"].apply(X), rtol=0, atol=1e-12)
    tag(benchmark, "bound", "numpy rfft2 / irfft2 by hand")
    benchmark(by_hand, X)


@pytest.mark.benchmark(group="apply: zero-boundary disk blur r = 3, n = 65536, 8 images")
def test_apply_zero_fastinv(benchmark, ops, X):
    tag(benchmark, "fastinv", "fastinv op.apply (fftconvolve)")
    benchmark(ops["zero"].apply, X)


@pytest.mark.benchmark(group="apply: zero-boundary disk blur r = 3, n = 65536, 8 images")
def test_apply_zero_sparse(benchmark, csr, X):
    XT = np.ascontiguousarray(X.T)
    tag(benchmark, "peer", f"scipy.sparse CSR A @ Xᵀ ({csr.nnz} nonzeros)")
    benchmark(csr.__matmul__, XT)


# ------------------------------------------------------------------------------------------
# apply at n = 16384, where the dense matrix fits


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    out = {"X": rng.standard_normal((BATCH, DENSE_SIDE**2))}
    for name, make in (("periodic", periodic), ("zero", zero_disk)):
        op = make(DENSE_SIDE)
        out[name] = (op, np.ascontiguousarray(op.to_dense()))
    return out


@pytest.mark.parametrize("kind", ["periodic", "zero"])
@pytest.mark.benchmark(group="apply: n = 16384 (128 × 128), 8 images, against dense")
def test_apply_small_fastinv(benchmark, small, kind):
    op, _ = small[kind]
    tag(benchmark, "fastinv" if kind == "periodic" else "fastinv-variant", f"fastinv {kind}")
    benchmark(op.apply, small["X"])


@pytest.mark.parametrize("kind", ["periodic", "zero"])
@pytest.mark.benchmark(group="apply: n = 16384 (128 × 128), 8 images, against dense")
def test_apply_small_dense(benchmark, small, kind):
    op, A = small[kind]
    Xs = small["X"]
    np.testing.assert_allclose(Xs @ A.T, op.apply(Xs), rtol=0, atol=1e-12)
    tag(benchmark, "peer", f"dense X @ A.T, {kind} (2 GiB A)")
    benchmark(lambda: Xs @ A.T)


# ------------------------------------------------------------------------------------------
# svd_topk at n = 65536, k = 16


@pytest.mark.benchmark(group="svd_topk: periodic Gaussian blur, n = 65536, k = 16")
def test_topk_periodic_fastinv(benchmark, ops):
    op = ops["periodic"]
    s_exact = np.sort(op.linear_map.sigma_items())[::-1]
    U, s, Vt, info = benchmark(op.svd_topk, K)
    assert info["method"] == "exact"
    tag(benchmark, "fastinv", "fastinv svd_topk (exact, FFT)", max_rel_err=rel_err(s, s_exact))


@pytest.mark.benchmark(group="svd_topk: periodic Gaussian blur, n = 65536, k = 16")
def test_topk_periodic_svds(benchmark, ops):
    op = ops["periodic"]
    s_exact = np.sort(op.linear_map.sigma_items())[::-1]
    s = benchmark.pedantic(top_svds, args=(as_linop(op),), **ONCE)
    tag(benchmark, "peer", "svds (ARPACK) on a LinearOperator", max_rel_err=rel_err(s, s_exact))


@pytest.mark.benchmark(group="svd_topk: zero-boundary disk blur r = 3, n = 65536, k = 16")
def test_topk_zero_svds_sparse(benchmark, csr):
    s = benchmark.pedantic(top_svds, args=(csr,), **ONCE)
    _REFERENCE["zero"] = s
    tag(benchmark, "peer", "svds (ARPACK) on the CSR matrix", max_rel_err=0.0, note="reference")


@pytest.mark.benchmark(group="svd_topk: zero-boundary disk blur r = 3, n = 65536, k = 16")
def test_topk_zero_fastinv(benchmark, ops):
    U, s, Vt, info = benchmark.pedantic(ops["zero"].svd_topk, args=(K,), **ONCE)
    extra = {"note": f"{info['method']}, {info.get('n_passes')} passes"}
    if "zero" in _REFERENCE:
        extra["max_rel_err"] = rel_err(s, _REFERENCE["zero"])
    tag(benchmark, "fastinv", "fastinv svd_topk (randomized, matrix-free)", **extra)
