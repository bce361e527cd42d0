"""Slow, obviously correct reference versions of fastinv.estimators and fastinv.spectral.

Dense matrices, explicit loops, textbook formulas; only for tests on small problems.
"""

from __future__ import annotations

import numpy as np


def naive_pinv(A):
    return np.linalg.pinv(A)


def naive_tikhonov(A, lam):
    """(AᵀA + λI)⁻¹Aᵀ by the normal equations."""
    n = A.shape[1]
    return np.linalg.solve(A.T @ A + lam * np.eye(n), A.T)


def naive_tsvd(A, k):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    C = np.zeros((A.shape[1], A.shape[0]))
    for i in range(k):
        C += np.outer(Vt[i], U[:, i]) / s[i]
    return C


def naive_gd_linear(Y, X, eta, t):
    """t full-batch GD steps from 0 on 1/(2N) Σ‖W y_i − x_i‖² (the trainer's convention)."""
    N = Y.shape[0]
    W = np.zeros((X.shape[1], Y.shape[1]))
    YtY = Y.T @ Y / N
    XtY = X.T @ Y / N
    for _ in range(t):
        W = W - eta * (W @ YtY - XtY)
    return W


def naive_landweber(A, eta, t):
    """W_{t+1} = W_t − η(W_t AAᵀ − Aᵀ), W_0 = 0."""
    W = np.zeros((A.shape[1], A.shape[0]))
    AAt = A @ A.T
    for _ in range(t):
        W = W - eta * (W @ AAt - A.T)
    return W


def naive_landweber_noisy(A, eta, t, noise_var):
    """GD on the population normal equations: YᵀY/N → AAᵀ + νI, XᵀY/N → Aᵀ (Σ_x = I)."""
    W = np.zeros((A.shape[1], A.shape[0]))
    K = A @ A.T + noise_var * np.eye(A.shape[0])
    for _ in range(t):
        W = W - eta * (W @ K - A.T)
    return W


def naive_lmmse(A, mu, Sx, Se, mu_e=None):
    """μ + Σ_x Aᵀ(AΣ_xAᵀ + Σ_e)⁻¹(y − Aμ − μ_e) with an explicit inverse."""
    mu_e = np.zeros(A.shape[0]) if mu_e is None else mu_e
    C = Sx @ A.T @ np.linalg.inv(A @ Sx @ A.T + Se)
    return C, mu - C @ (A @ mu + mu_e)


def naive_gcv(A, Y, lambdas):
    """Σ_j ‖A x_j − y_j‖² / N / trace(I − A C_λ)², dense, one λ at a time."""
    Y = np.atleast_2d(Y)
    m = A.shape[0]
    out = []
    for lam in lambdas:
        C = naive_tikhonov(A, lam)
        R = Y @ (A @ C).T - Y
        tr = np.trace(np.eye(m) - A @ C)
        out.append(np.sum(R * R) / Y.shape[0] / tr**2)
    return np.array(out)


def naive_gcv_k(A, Y, ks):
    Y = np.atleast_2d(Y)
    m = A.shape[0]
    out = []
    for k in ks:
        C = naive_tsvd(A, k)
        R = Y @ (A @ C).T - Y
        out.append(np.sum(R * R) / Y.shape[0] / np.trace(np.eye(m) - A @ C) ** 2)
    return np.array(out)


def naive_lcurve(A, Y, lambdas):
    """(residual norm, solution norm) per λ, with squared norms summed over the rows of Y."""
    Y = np.atleast_2d(Y)
    rn, sn = [], []
    for lam in lambdas:
        X = Y @ naive_tikhonov(A, lam).T
        rn.append(np.sqrt(np.sum((X @ A.T - Y) ** 2)))
        sn.append(np.sqrt(np.sum(X**2)))
    return np.array(rn), np.array(sn)


def naive_discrete_curvature(lambdas, rn, sn):
    """Curvature of (log rn, log sn) by finite differences in log λ (np.gradient)."""
    tau = np.log(lambdas)
    x, y = np.log(rn), np.log(sn)
    x1, y1 = np.gradient(x, tau), np.gradient(y, tau)
    x2, y2 = np.gradient(x1, tau), np.gradient(y1, tau)
    return (x1 * y2 - x2 * y1) / (x1**2 + y1**2) ** 1.5


def naive_oracle(A, Y, X, lambdas):
    out = []
    for lam in lambdas:
        Xh = Y @ naive_tikhonov(A, lam).T
        out.append(np.linalg.norm(Xh - X) / np.linalg.norm(X))
    return np.array(out)


def naive_oracle_k(A, Y, X, ks):
    return np.array([np.linalg.norm(Y @ naive_tsvd(A, k).T - X) / np.linalg.norm(X) for k in ks])


def naive_filter_factor_matrix(M, A):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return Vt @ M @ U @ np.diag(s)


def naive_henrici(M):
    lam = np.linalg.eigvals(M)
    f2 = np.linalg.norm(M) ** 2
    return np.sqrt(max(f2 - np.sum(np.abs(lam) ** 2), 0.0)) / np.sqrt(f2)


def naive_principal_angles(Q1, Q2):
    """Angles (degrees, descending) from the SVD of Q1ᵀQ2 (orthonormal columns)."""
    c = np.linalg.svd(Q1.T @ Q2, compute_uv=False)
    return np.sort(np.degrees(np.arccos(np.clip(c, -1, 1))))[::-1]


def gaussian_blur(n, width=2.0):
    """Row-normalised Gaussian blur: a small, severely ill-conditioned test operator."""
    i = np.arange(n)
    A = np.exp(-((i[:, None] - i[None, :]) ** 2) / (2 * width**2))
    return A / A.sum(axis=1, keepdims=True)


def smooth_signals(rng, N, n, corr=6.0):
    """Smooth random signals (rows): white noise filtered by a Gaussian kernel."""
    i = np.arange(n)
    K = np.exp(-((i[:, None] - i[None, :]) ** 2) / (2 * corr**2))
    return rng.standard_normal((N, n)) @ K.T / np.sqrt(K.sum(axis=1))[None, :]
