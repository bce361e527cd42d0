"""Slow, obviously-correct references for the data stage (priors, RNG, generate).

Pure Python / plain NumPy; the fast versions live in kernels/rng.py, kernels/priors.py,
fastinv/priors.py and fastinv/data.py.
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
SALT = 0x5EED5EED2545F491
MASK52 = (1 << 52) - 1


# ---------------------------------------------------------------------------------------
# the counter-based generator, in Python integers (arbitrary precision, masked to 64 bits)
def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * M1) & MASK64
    z = ((z ^ (z >> 27)) * M2) & MASK64
    return z ^ (z >> 31)


def stream_key(seed: int, stream: int) -> int:
    return mix64((mix64(seed ^ SALT) + (stream + 1) * GOLDEN) & MASK64)


def row_key(key: int, row: int) -> int:
    return mix64(key ^ mix64(((row + 1) * GOLDEN) & MASK64))


def word(rk: int, j: int) -> int:
    return mix64((rk + (j + 1) * GOLDEN) & MASK64)


def hash_u64(seed: int, stream: int, row: int, j: int) -> int:
    return word(row_key(stream_key(seed, stream), row), j)


def u01(w: int) -> float:
    return ((w >> 11) + 0.5) * 2.0**-53


# ziggurat (Marsaglia & Tsang 2000), 256 layers
ZIG_R = 3.6541528853610088
ZIG_V = 0.00492867323399


def ziggurat_tables():
    m1 = 2.0**52
    dn = tn = ZIG_R
    q = ZIG_V / math.exp(-0.5 * dn * dn)
    ki = [0] * 256
    wi = [0.0] * 256
    fi = [0.0] * 256
    ki[0] = int((dn / q) * m1)
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(ZIG_V / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = int((dn / tn) * m1)
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


KI, WI, FI = ziggurat_tables()


def _candidate(r: int):
    idx = r & 0xFF
    r >>= 8
    rabs = (r >> 1) & MASK52
    x = float(rabs) * WI[idx]
    if r & 1:
        x = -x
    return x, rabs < KI[idx], idx, rabs


def normal_at(rk: int, c: int) -> tuple[float, bool]:
    """Normal number c of the row with key rk; second value: True if the slow path ran."""
    x, ok, idx, rabs = _candidate(word(rk, c))
    if ok:
        return x, False
    sk = row_key(rk, c)
    j = 0
    r = word(rk, c)
    while True:
        x, ok, idx, rabs = _candidate(r)
        if ok:
            return x, True
        if idx == 0:
            while True:
                xx = -(1.0 / ZIG_R) * math.log(u01(word(sk, j)))
                yy = -math.log(u01(word(sk, j + 1)))
                j += 2
                if yy + yy > xx * xx:
                    return (-(ZIG_R + xx) if (rabs >> 8) & 1 else ZIG_R + xx), True
        else:
            u = u01(word(sk, j))
            j += 1
            if (FI[idx - 1] - FI[idx]) * u + FI[idx] < math.exp(-0.5 * x * x):
                return x, True
        r = word(sk, j)
        j += 1


def normals_row(seed: int, stream: int, row: int, n: int) -> tuple[np.ndarray, int]:
    """The n normals of one row and how many of them took the slow path."""
    rk = row_key(stream_key(seed, stream), row)
    out = np.empty(n)
    slow = 0
    for c in range(n):
        out[c], s = normal_at(rk, c)
        slow += s
    return out, slow


# ---------------------------------------------------------------------------------------
# prior covariances
def grid(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def se_kernel_matrix(n: int, length_scale: float, scale: float) -> np.ndarray:
    t = grid(n)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = scale**2 * math.exp(-((t[i] - t[j]) ** 2) / (2 * length_scale**2))
    return out


def smooth_embedding_cov(n: int, length_scale: float, scale: float, m: int, rtol: float):
    """Leading n x n block of the m x m circulant embedding of the SE kernel after setting
    its eigenvalues below rtol * max to 0, from the dense circulant and the dense DFT matrix.

    Returns (cov, eigenvalues before clipping).
    """
    c = np.array(
        [scale**2 * math.exp(-((min(k, m - k) / n) ** 2) / (2 * length_scale**2)) for k in range(m)]
    )
    C = np.array([[c[(i - j) % m] for j in range(m)] for i in range(m)])
    k = np.arange(m)
    F = np.exp(-2j * np.pi * np.outer(k, k) / m)  # C = F^H diag(lam) F / m
    lam = (F @ c).real
    assert np.allclose(F.conj().T @ np.diag(lam) @ F / m, C, atol=1e-10 * np.abs(lam).max())
    lam_c = np.where(lam > rtol * lam.max(), lam, 0.0)
    Cc = (F.conj().T @ np.diag(lam_c) @ F / m).real
    return Cc[:n, :n], lam


def piecewise_cov(n: int, rate: float, scale: float) -> np.ndarray:
    t = grid(n)
    return np.array([[scale**2 * math.exp(-rate * abs(a - b)) for b in t] for a in t])


def sparse_cov(n: int, p: float, scale: float) -> np.ndarray:
    return p * scale**2 * np.eye(n)


def gaussian_cov(n: int, scale: float) -> np.ndarray:
    return scale**2 * np.eye(n)


# ---------------------------------------------------------------------------------------
def forward(X: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Y0[i, j] = sum_k A[j, k] X[i, k], one dot product at a time."""
    N, n = X.shape
    out = np.empty((N, A.shape[0]))
    for i in range(N):
        for j in range(A.shape[0]):
            out[i, j] = float(np.dot(A[j], X[i]))
    return out
