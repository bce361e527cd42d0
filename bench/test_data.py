"""Data generation (N = 100 000, n = 1024, float64): smooth prior + 1 % relative noise.

bound
    the product ``Y = X Aᵀ`` alone, on a preallocated (N, n) float64 output
    (``np.matmul(X, A.T, out=Y)``) -- the one O(N n²) step generation cannot avoid.
fastinv
    ``fastinv.generate(A, n_samples=N, prior="smooth", noise=0.01)`` (relative noise): prior
    samples, the product, the noise, writing into fresh (N, n) arrays X and Y.
peer
    what a user would write in plain NumPy: ``X = Z Lᵀ`` with Z standard normal and L a
    square root of the prior covariance (computed beforehand, untimed), ``Y = X Aᵀ``, and
    relative noise ``E ∝ ‖A x_i‖ G_i/‖G_i‖`` from a second normal draw.

Target (issue "Kernels at the limit"): generate ≤ 1.2× the bound.

The smooth prior draws each x as z F from about 100 coefficients, so fastinv computes
A x = z (F Aᵀ) and never makes the N x n x n product; the variants show the same prior with
that shortcut switched off (X first, then X Aᵀ) and the full-rank Gaussian prior, where the
product cannot be avoided and the rest (normals, noise, fresh pages) is what sits above the
bound.
"""

from __future__ import annotations

import numpy as np
import pytest

N_ROWS = 100_000
N_FEAT = 1024
GROUP = f"generate N={N_ROWS} n={N_FEAT} float64, smooth prior, 1% relative noise"


@pytest.fixture(scope="module")
def A():
    from fastinv.problem.data import generate

    A = np.random.default_rng(0).standard_normal((N_FEAT, N_FEAT)) / np.sqrt(N_FEAT)
    generate(A[:64, :64], n_samples=4096, noise=0.01)  # Numba JIT and thread pools
    generate(A, n_samples=8192, noise=0.01)
    return A


def test_bound_product(benchmark, A):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N_ROWS, N_FEAT))
    Y = np.empty((N_ROWS, N_FEAT))
    At = A.T
    benchmark.group = GROUP
    benchmark.extra_info.update(label="bound: np.matmul(X, A.T, out=Y), preallocated", role="bound")
    benchmark.pedantic(lambda: np.matmul(X, At, out=Y), rounds=5, iterations=1, warmup_rounds=1)


def test_fastinv_generate(benchmark, A):
    from fastinv.problem.data import generate

    benchmark.group = GROUP
    benchmark.extra_info.update(
        label='fastinv.generate(prior="smooth", noise=0.01 relative)', role="fastinv"
    )
    X, Y = benchmark.pedantic(
        lambda: generate(A, n_samples=N_ROWS, prior="smooth", noise=0.01),
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    assert X.shape == Y.shape == (N_ROWS, N_FEAT)
    r = np.linalg.norm(Y[:100] - X[:100] @ A.T, axis=1) / np.linalg.norm(X[:100] @ A.T, axis=1)
    np.testing.assert_allclose(r, 0.01, rtol=1e-8)


def test_fastinv_generate_smooth_full_product(benchmark, A):
    from fastinv.problem.data import generate
    from fastinv.problem.priors import make_prior

    pr = make_prior("smooth", N_FEAT)
    pr._factor = lambda: None  # the path without the low-rank shortcut: X, then X Aᵀ
    benchmark.group = GROUP
    benchmark.extra_info.update(
        label='fastinv.generate(prior="smooth", noise=0.01 relative), low-rank shortcut off',
        role="fastinv-variant",
    )
    benchmark.pedantic(
        lambda: generate(A, n_samples=N_ROWS, prior=pr, noise=0.01),
        rounds=3,
        iterations=1,
    )


def test_fastinv_generate_gaussian(benchmark, A):
    from fastinv.problem.data import generate

    benchmark.group = GROUP
    benchmark.extra_info.update(
        label='fastinv.generate(prior="gaussian", noise=0.01 relative) (for context)',
        role="fastinv-variant",
    )
    benchmark.pedantic(
        lambda: generate(A, n_samples=N_ROWS, prior="gaussian", noise=0.01),
        rounds=3,
        iterations=1,
    )


def test_numpy_generate(benchmark, A):
    from fastinv.problem.priors import make_prior

    cov = make_prior("smooth", N_FEAT).cov()
    w, V = np.linalg.eigh(cov)
    Lt = np.ascontiguousarray((V * np.sqrt(np.clip(w, 0, None))).T)
    At = A.T

    def run():
        rng = np.random.default_rng(2)
        X = rng.standard_normal((N_ROWS, N_FEAT)) @ Lt
        Y = X @ At
        G = rng.standard_normal((N_ROWS, N_FEAT))
        G *= (0.01 * np.linalg.norm(Y, axis=1) / np.linalg.norm(G, axis=1))[:, None]
        Y += G
        return X, Y

    benchmark.group = GROUP
    benchmark.extra_info.update(
        label="plain NumPy: Z Lᵀ, X Aᵀ, relative noise (L = cov^½ precomputed)", role="peer"
    )
    benchmark.pedantic(run, rounds=3, iterations=1)
