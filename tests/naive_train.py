"""Slow, obviously correct references for fastinv.training (plain NumPy)."""

from __future__ import annotations

import numpy as np


def landweber_weights(Y: np.ndarray, X: np.ndarray, eta: float, t: int) -> np.ndarray:
    """W_t of full-batch GD from W = 0 on 1/(2N) sum ||W y_i - x_i||^2, by the closed sum.

    W_{k+1} = W_k (I - eta G) + eta H with G = YᵀY/N, H = XᵀY/N, so
    W_t = sum_{k<t} eta H (I - eta G)^k.  Returns (n_out, n_in), like nn.Linear.weight.
    """
    N, n = Y.shape
    G = Y.T @ Y / N
    H = X.T @ Y / N
    M = np.eye(n) - eta * G
    P = np.eye(n)
    W = np.zeros((X.shape[1], n))
    for _ in range(t):
        W = W + eta * H @ P
        P = P @ M
    return W


def landweber_weights_loop(Y: np.ndarray, X: np.ndarray, eta: float, t: int) -> np.ndarray:
    """The same W_t by the explicit per-sample gradient loop (tiny inputs only)."""
    N, n = Y.shape
    W = np.zeros((X.shape[1], n))
    for _ in range(t):
        grad = np.zeros_like(W)
        for i in range(N):
            grad += np.outer(W @ Y[i] - X[i], Y[i])
        W = W - eta * grad / N
    return W


def landweber_filter_factors(s: np.ndarray, eta: float, t: int) -> np.ndarray:
    """Noise-free whitened Landweber filter factors phi_i = 1 - (1 - eta s_i^2)^t."""
    return 1.0 - (1.0 - eta * np.asarray(s) ** 2) ** t


def objective(pred: np.ndarray, X: np.ndarray) -> float:
    """1/(2N) sum_i ||pred_i - x_i||^2."""
    return float(0.5 * np.sum((pred - X) ** 2) / X.shape[0])
