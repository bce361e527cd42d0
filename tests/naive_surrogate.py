"""Slow, obviously correct references for fastinv.surrogate (stack everything, lstsq)."""

from __future__ import annotations

import numpy as np


def lstsq_fit(Y, X, *, intercept: bool = True):
    """(C, b) by numpy.linalg.lstsq on the stacked ``[Y, 1]`` (or ``Y``): min-norm solution."""
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    N, n = Y.shape
    A = np.hstack([Y, np.ones((N, 1))]) if intercept else Y
    sol = np.linalg.lstsq(A, X, rcond=None)[0]
    C = sol[:n].T
    b = sol[n] if intercept else np.zeros(X.shape[1])
    return C, b


def lstsq_fit_centred(Y, X, *, intercept: bool = True):
    """Minimum-norm fit with an unpenalised intercept: lstsq on centred data, b = x̄ − C ȳ."""
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if not intercept:
        return lstsq_fit(Y, X, intercept=False)
    my, mx = Y.mean(0), X.mean(0)
    sol = np.linalg.lstsq(Y - my, X - mx, rcond=None)[0]
    C = sol.T
    return C, mx - C @ my


def ridge_fit(Y, X, ridge: float, *, intercept: bool = True):
    """C = Cov(x, y) (Cov(y) + ridge I)⁻¹ (covariances with 1/N), b = x̄ − C ȳ."""
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    N, n = Y.shape
    if intercept:
        my, mx = Y.mean(0), X.mean(0)
        Yc, Xc = Y - my, X - mx
    else:
        my, mx = np.zeros(n), np.zeros(X.shape[1])
        Yc, Xc = Y, X
    Syy = Yc.T @ Yc / N + ridge * np.eye(n)
    Sxy = Xc.T @ Yc / N
    C = np.linalg.solve(Syy, Sxy.T).T
    return C, mx - C @ my


def r2_direct(Y, X, C, b) -> float:
    """1 − Σ‖C y + b − x‖² / Σ‖x − x̄‖² by the direct formula."""
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    R = Y @ C.T + b - X
    D = X - X.mean(0)
    return 1.0 - float(np.sum(R * R)) / float(np.sum(D * D))


def centred_moments(Y, X):
    """Two-pass centred moments: (mean_y, mean_x, M_yy, M_xy, trace M_xx)."""
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    my, mx = Y.mean(0), X.mean(0)
    Yc, Xc = Y - my, X - mx
    return my, mx, Yc.T @ Yc, Xc.T @ Yc, float(np.sum(Xc * Xc))


def raw_moment_fit(Y, X):
    """The textbook single-pass formula from raw sums (Σy, Σyyᵀ, ...): loses digits."""
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    N = Y.shape[0]
    sy, sx = Y.sum(0), X.sum(0)
    Myy = Y.T @ Y - np.outer(sy, sy) / N
    Mxy = X.T @ Y - np.outer(sx, sy) / N
    C = np.linalg.lstsq(Myy, Mxy.T, rcond=None)[0].T
    return C


def jacobian_fd(f, y, *, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference Jacobian (k, n) of f: (1, n) -> (1, k) at y (n,)."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    cols = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        fp = np.asarray(f((y + e)[None, :]))[0]
        fm = np.asarray(f((y - e)[None, :]))[0]
        cols.append((fp - fm) / (2 * h))
    return np.stack(cols, axis=1)


# references for the kernels in kernels/moments.py


def colsums(a, shift):
    d = np.asarray(a, dtype=np.float64) - shift
    return d.sum(0), (d * d).sum(0)


def resid_sums(x, p, b, xbar):
    x = np.asarray(x, dtype=np.float64)
    r = x - p - b
    d = x - xbar
    return (r * r).sum(0), d.sum(0), (d * d).sum(0)


def sym_from_upper(a):
    return np.triu(a) + np.triu(a, 1).T


def sym_from_lower(a):
    return np.tril(a) + np.tril(a, -1).T
