"""Slow, obviously correct reference versions of every fast path in fastinv.

Plain NumPy/SciPy and plain Python loops, written for clarity, never for speed. Each test of
a fast kernel or function compares against the matching function here.

Sections: operators (Hansen's MATLAB code line by line), data (the counter RNG in pure
Python, priors, noise), training (Landweber), surrogate (stacked least squares), randomized
SVD (truncated LAPACK SVD), analysis (estimators, spectral comparisons).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

# ================================================================================================
# operators
#
# Literal, loop-by-loop transcriptions of Hansen's Regularization Tools 4.1 test problems.
#
# Slow reference versions of ``fastinv.problem.operators``: each follows the MATLAB file
# statement by statement (1-based loop indices kept, ``i - 1`` when indexing), so a
# vectorisation slip in the library shows up as a mismatch. Only for small n.
# ================================================================================================


def shaw(n):
    h = math.pi / n
    A = np.zeros((n, n))
    co = [math.cos(-math.pi / 2 + (k - 0.5) * h) for k in range(1, n + 1)]
    psi = [math.pi * math.sin(-math.pi / 2 + (k - 0.5) * h) for k in range(1, n + 1)]
    for i in range(1, n // 2 + 1):
        for j in range(i, n - i + 1):
            ss = psi[i - 1] + psi[j - 1]
            A[i - 1, j - 1] = ((co[i - 1] + co[j - 1]) * math.sin(ss) / ss) ** 2
            A[n - j, n - i] = A[i - 1, j - 1]
        A[i - 1, n - i] = (2 * co[i - 1]) ** 2
    A = A + np.triu(A, 1).T
    A = A * h
    a1, c1, t1 = 2, 6, 0.8
    a2, c2, t2 = 1, 2, -0.5
    x = np.zeros(n)
    for k in range(1, n + 1):
        t = -math.pi / 2 + (k - 0.5) * h
        x[k - 1] = a1 * math.exp(-c1 * (t - t1) ** 2) + a2 * math.exp(-c2 * (t - t2) ** 2)
    return A, A @ x, x


def deriv2(n, example=1):
    h = 1 / n
    sqh = math.sqrt(h)
    h32 = h * sqh
    h2 = h**2
    sqhi = 1 / sqh
    t = 2 / 3
    A = np.zeros((n, n))
    for i in range(1, n + 1):
        A[i - 1, i - 1] = h2 * ((i**2 - i + 0.25) * h - (i - t))
        for j in range(1, i):
            A[i - 1, j - 1] = h2 * (j - 0.5) * ((i - 0.5) * h - 1)
    A = A + np.tril(A, -1).T
    b = np.zeros(n)
    x = np.zeros(n)
    if example == 1:
        for i in range(1, n + 1):
            b[i - 1] = h32 * (i - 0.5) * ((i**2 + (i - 1) ** 2) * h2 / 2 - 1) / 6
            x[i - 1] = h32 * (i - 0.5)
    elif example == 2:
        ee = 1 - math.exp(1)
        for i in range(1, n + 1):
            b[i - 1] = sqhi * (math.exp(i * h) - math.exp((i - 1) * h) + ee * (i - 0.5) * h2 - h)
            x[i - 1] = sqhi * (math.exp(i * h) - math.exp((i - 1) * h))
    else:
        for i in range(1, n // 2 + 1):
            s12 = (i * h) ** 2
            s22 = ((i - 1) * h) ** 2
            b[i - 1] = sqhi * (s12 + s22 - 1.5) * (s12 - s22) / 24
            x[i - 1] = sqhi * ((i * h) ** 2 - ((i - 1) * h) ** 2) / 2
        for i in range(n // 2 + 1, n + 1):
            s1 = i * h
            s12 = s1**2
            s2 = (i - 1) * h
            s22 = s2**2
            b[i - 1] = (
                sqhi
                * (-(s12 + s22) * (s12 - s22) + 4 * (s1**3 - s2**3) - 4.5 * (s12 - s22) + h)
                / 24
            )
            x[i - 1] = sqhi * (h - ((i * h) ** 2 - ((i - 1) * h) ** 2) / 2)
    return A, b, x


def heat(n, kappa=1.0):
    h = 1 / n
    t = [h / 2 + k * h for k in range(n)]
    c = h / (2 * kappa * math.sqrt(math.pi))
    d = 1 / (4 * kappa**2)
    k = [c * tk**-1.5 * math.exp(-d / tk) for tk in t]
    A = np.zeros((n, n))
    for i in range(n):  # toeplitz(k, [k(1) 0 ... 0])
        for j in range(i + 1):
            A[i, j] = k[i - j]
    x = np.zeros(n)
    for i in range(1, n // 2 + 1):
        ti = i * 20 / n
        if ti < 2:
            x[i - 1] = 0.75 * ti**2 / 4
        elif ti < 3:
            x[i - 1] = 0.75 + (ti - 2) * (3 - ti)
        else:
            x[i - 1] = 0.75 * math.exp(-(ti - 3) * 2)
    return A, A @ x, x


def phillips(n):
    h = 12 / n
    n4 = n // 4
    r1 = np.zeros(n)
    c = [math.cos(k * 4 * math.pi / n) for k in range(-1, n4 + 1)]  # c[m] = c(m+1) in MATLAB
    for m in range(1, n4 + 1):  # r1(1:n4), MATLAB c(2:n4+1), c(1:n4), c(3:n4+2)
        r1[m - 1] = h + 9 / (h * math.pi**2) * (2 * c[m] - c[m - 1] - c[m + 1])
    r1[n4] = h / 2 + 9 / (h * math.pi**2) * (math.cos(4 * math.pi / n) - 1)
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            A[i, j] = r1[abs(i - j)]
    b = np.zeros(n)
    cc = math.pi / 3
    for i in range(n // 2 + 1, n + 1):
        t1 = -6 + i * h
        t2 = t1 - h
        b[i - 1] = (
            t1 * (6 - abs(t1) / 2)
            + ((3 - abs(t1) / 2) * math.sin(cc * t1) - 2 / cc * (math.cos(cc * t1) - 1)) / cc
            - t2 * (6 - abs(t2) / 2)
            - ((3 - abs(t2) / 2) * math.sin(cc * t2) - 2 / cc * (math.cos(cc * t2) - 1)) / cc
        )
        b[n - i] = b[i - 1]
    b = b / math.sqrt(h)
    x = np.zeros(n)
    grid = [k * h for k in range(n4 + 1)]
    for m in range(n4):
        x[2 * n4 + m] = (h + (math.sin(grid[m + 1] * cc) - math.sin(grid[m] * cc)) / cc) / (
            math.sqrt(h)
        )
    for m in range(n4):  # x(n4+1:2*n4) = x(3*n4:-1:2*n4+1)
        x[n4 + m] = x[3 * n4 - 1 - m]
    return A, b, x


def baart(n):
    hs = math.pi / (2 * n)
    ht = math.pi / n
    c = 1 / (3 * math.sqrt(2))
    A = np.zeros((n, n))
    ihs = np.array([k * hs for k in range(n + 1)])
    nh = n // 2
    f3 = np.exp(ihs[1:]) - np.exp(ihs[:n])
    for j in range(1, n + 1):
        f1 = f3
        co2 = math.cos((j - 0.5) * ht)
        co3 = math.cos(j * ht)
        f2 = (np.exp(ihs[1:] * co2) - np.exp(ihs[:n] * co2)) / co2
        if j == nh:
            f3 = hs * np.ones(n)
        else:
            f3 = (np.exp(ihs[1:] * co3) - np.exp(ihs[:n] * co3)) / co3
        A[:, j - 1] = c * (f1 + 4 * f2 + f3)
    si = np.array([k * 0.5 * hs for k in range(1, 2 * n + 1)])
    si = np.sinh(si) / si
    b = np.zeros(n)
    b[0] = 1 + 4 * si[0] + si[1]
    for m in range(2, n + 1):  # b(m) = si(2m-2) + 4 si(2m-1) + si(2m)
        b[m - 1] = si[2 * m - 3] + 4 * si[2 * m - 2] + si[2 * m - 1]
    b = b * math.sqrt(hs) / 3
    x = np.array([-(math.cos((k + 1) * ht) - math.cos(k * ht)) / math.sqrt(ht) for k in range(n)])
    return A, b, x


def foxgood(n):
    h = 1 / n
    t = [h * (k - 0.5) for k in range(1, n + 1)]
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            A[i, j] = h * math.sqrt(t[i] ** 2 + t[j] ** 2)
    x = np.array(t)
    b = np.array([((1 + tk**2) ** 1.5 - tk**3) / 3 for tk in t])
    return A, b, x


def gravity(n, example=1, a=0.0, b=1.0, d=0.25):
    dt = 1 / n
    ds = (b - a) / n
    t = [dt * (k - 0.5) for k in range(1, n + 1)]
    s = [a + ds * (k - 0.5) for k in range(1, n + 1)]
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            A[i, j] = dt * d / (d**2 + (s[i] - t[j]) ** 2) ** 1.5
    nt = int(math.floor(n / 3 + 0.5))
    nn = int(math.floor(n * 7 / 8 + 0.5))
    x = np.ones(n)
    if example == 1:
        x = np.array([math.sin(math.pi * tk) + 0.5 * math.sin(2 * math.pi * tk) for tk in t])
    elif example == 2:
        for k in range(1, nt + 1):
            x[k - 1] = (2 / nt) * k
        for k in range(nt + 1, nn + 1):
            x[k - 1] = ((2 * nn - nt) - k) / (nn - nt)
        for k in range(nn + 1, n + 1):
            x[k - 1] = (n - k) / (n - nn)
    else:
        for k in range(1, nt + 1):
            x[k - 1] = 2
    return A, A @ x, x


def wing(n, t1=1 / 3, t2=2 / 3):
    h = 1 / n
    sti = [(k - 0.5) * h for k in range(1, n + 1)]
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            A[i, j] = h * sti[j] * math.exp(-sti[i] * sti[j] ** 2)
    b = np.array(
        [math.sqrt(h) * 0.5 * (math.exp(-s * t1**2) - math.exp(-s * t2**2)) / s for s in sti]
    )
    x = np.array([math.sqrt(h) if t1 < s < t2 else 0.0 for s in sti])
    return A, b, x


def blur1d(n, band=3, sigma=0.7):
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if abs(i - j) < band:
                A[i, j] = math.exp(-((i - j) ** 2) / (2 * sigma**2)) / (
                    math.sqrt(2 * math.pi) * sigma
                )
    return A


# ================================================================================================
# data
#
# Slow, obviously-correct references for the data stage (priors, RNG, generate).
#
# Pure Python / plain NumPy; the fast versions live in kernels/rng.py, kernels/priors.py,
# fastinv/priors.py and fastinv/data.py.
# ================================================================================================

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


# ================================================================================================
# train
#
# Slow, obviously correct references for fastinv.nets.training (plain NumPy).
# ================================================================================================


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


# ================================================================================================
# surrogate
#
# Slow, obviously correct references for fastinv.linalg.surrogate (stack everything, lstsq).
# ================================================================================================


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


# ================================================================================================
# rsvd
#
# Slow, obviously correct references for fastinv.linalg.randomized (plain NumPy, QR everywhere).
#
# - ``naive_svd_topk``: truncated ``numpy.linalg.svd`` (the ground truth).
# - ``naive_hmt``: HMT Alg. 4.4 (randomized subspace iteration) with Householder QR after
#   every product, given the test matrix ``Omega``.
# - ``naive_block_krylov``: Musco & Musco block Krylov: stack the blocks
#   ``M Ω, (M Mᵀ) M Ω, …`` (each orthonormalised), QR the stack, SVD of ``Qᵀ M``.
# - ``naive_pl``: ``P @ L`` of a partially pivoted LU (scipy.linalg.lu), the reference of
#   the ``_pl_rows`` kernel.
# - Test matrices with known spectra: ``U diag(s) Vᵀ`` with Haar-distributed ``U``, ``V``.
# - ``hmt_tail_bound``: the error bound the tests check (see its docstring).
# ================================================================================================


def naive_svd_topk(M, k):
    U, s, Vt = np.linalg.svd(np.asarray(M, dtype=np.float64), full_matrices=False)
    return U[:, :k], s[:k], Vt[:k]


def naive_hmt(M, k, Omega, q):
    """HMT Alg. 4.4 with QR re-orthonormalisation; Omega (n, l). Returns U, s, Vt."""
    Q, _ = np.linalg.qr(M @ Omega)
    for _ in range(q):
        W, _ = np.linalg.qr(M.T @ Q)
        Q, _ = np.linalg.qr(M @ W)
    B = Q.T @ M
    Ub, s, Vt = np.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[:, :k], s[:k], Vt[:k]


def naive_block_krylov(M, k, Omega, q):
    """Randomized block Krylov (Musco & Musco 2015, Alg. 2) with Rayleigh-Ritz."""
    blocks = []
    Y, _ = np.linalg.qr(M @ Omega)
    blocks.append(Y)
    for _ in range(q):
        Y, _ = np.linalg.qr(M @ (M.T @ Y))
        blocks.append(Y)
    Q, _ = np.linalg.qr(np.hstack(blocks))
    B = Q.T @ M
    Ub, s, Vt = np.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[:, :k], s[:k], Vt[:k]


def naive_pl(Y):
    """P @ L of the partially pivoted LU factorisation Y = P L U (Y of shape (N, l))."""
    PL, _ = sla.lu(Y, permute_l=True)
    return PL


def haar(n, rng, r=None):
    """n x r matrix with orthonormal columns, Haar distributed (QR of a Gaussian, signs fixed)."""
    r = n if r is None else r
    Q, R = np.linalg.qr(rng.standard_normal((n, r)))
    return Q * np.sign(np.diag(R))


def spectrum(kind, r, k=10):
    """Singular values: 'fast' 2^-i, 'slow' 1/i, 'flat_gap' 1 (i <= k) then 1e-3 / i."""
    i = np.arange(1, r + 1, dtype=np.float64)
    if kind == "fast":
        return 2.0 ** -(i - 1)
    if kind == "slow":
        return 1.0 / i
    if kind == "flat_gap":
        return np.where(i <= k, 1.0, 1e-3 / np.maximum(i - k, 1.0))
    raise ValueError(kind)


def matrix_with_spectrum(s, m, n, seed=0):
    """M = U diag(s) Vᵀ of shape (m, n), U and V Haar with len(s) <= min(m, n) columns."""
    rng = np.random.default_rng(seed)
    r = len(s)
    U = haar(m, rng, r)
    V = haar(n, rng, r)
    return np.ascontiguousarray((U * s) @ V.T)


def residual_norm(M, U, s, Vt):
    """||M - U diag(s) Vt||_2 by a dense SVD."""
    return float(np.linalg.norm(np.asarray(M, np.float64) - (U * s) @ Vt, 2))


def hmt_tail_bound(s, k, p, q, m, n):
    """Bound on ||M - [Q Qᵀ M]_k||_2 holding with probability >= 1 - 6 p^(-p) (p >= 4).

    HMT (2011) eq. (1.9)/(10.9)-type simplified tail bound for a Gaussian test matrix with
    k + p columns: ||(I - P_Y) B|| <= (1 + 11 sqrt((k+p) min(m,n))) σ_{k+1}(B) except with
    probability 6 p^-p. Applied to B = (M Mᵀ)^q M (singular values σ^(2q+1)) and combined
    with HMT Thm 9.2, ||(I - P_Y) M|| <= ||(I - P_Y) B||^(1/(2q+1)), it gives
    ||(I - P_Y) M|| <= (1 + 11 sqrt((k+p) min(m,n)))^(1/(2q+1)) σ_{k+1}.
    Truncating to rank k adds at most σ_{k+1} (HMT §9.4). A block Krylov space contains
    range(Y), so the same bound holds for it.
    """
    sk1 = float(s[k]) if k < len(s) else 0.0
    factor = (1.0 + 11.0 * math.sqrt((k + p) * min(m, n))) ** (1.0 / (2 * q + 1))
    return sk1 + factor * sk1


# ================================================================================================
# analysis
#
# Slow, obviously correct reference versions of fastinv.linalg.estimators and
# fastinv.linalg.spectral.
#
# Dense matrices, explicit loops, textbook formulas; only for tests on small problems.
# ================================================================================================


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


def naive_output_pc_angles(M1, M2, cov, k):
    """Angles (radians, descending) between the top-k eigenvectors of M1 Σ M1ᵀ and M2 Σ M2ᵀ:
    the leading principal components of the outputs M y for Cov(y) = Σ."""

    def top(M):
        w, Q = np.linalg.eigh(M @ cov @ M.T)
        return Q[:, np.argsort(w)[::-1][:k]]

    return sla.subspace_angles(top(M1), top(M2))


# ================================================================================================
# report numbers (tests/test_report_numbers.py)
#
# The audit's printed numbers from their definitions, one loop at a time.
# ================================================================================================


def naive_phi_counts(phi, tol=0.1):
    """(n_inverted, first_suppressed): the leading run with |φ − 1| <= tol, and the first
    (0-based) index with |φ| <= tol (None if none), by plain loops."""
    n_inv = 0
    for p in phi:
        if abs(p - 1.0) > tol:
            break
        n_inv += 1
    first = None
    for i, p in enumerate(phi):
        if abs(p) <= tol:
            first = i
            break
    return n_inv, first


def naive_weighted_distance(C, B, Y):
    """sqrt(E‖(C − B)(y − ȳ)‖² / E‖B (y − ȳ)‖²) over the rows of Y (sample covariance)."""
    Yc = np.asarray(Y, dtype=np.float64) - np.mean(Y, axis=0)
    num = sum(float(np.sum(((C - B) @ y) ** 2)) for y in Yc)
    den = sum(float(np.sum((B @ y) ** 2)) for y in Yc)
    return math.sqrt(num / den)


def naive_spearman(x, y):
    """Spearman's ρ without ties: 1 − 6 Σ d² / (n (n² − 1))."""
    n = len(x)
    rx = {v: i for i, v in enumerate(sorted(x))}
    ry = {v: i for i, v in enumerate(sorted(y))}
    d2 = sum((rx[a] - ry[b]) ** 2 for a, b in zip(x, y, strict=True))
    return 1.0 - 6.0 * d2 / (n * (n * n - 1))


# ================================================================================================
# image operators (issue 12)
#
# Entry-by-entry definitions of the 2-D blurs, the periodic 1-D blur and the pixel mask, with
# plain loops over pixels and PSF offsets. Only for small images.
# ================================================================================================


def min_image(a, N):
    """The offset in [-N//2, N - N//2) congruent to a modulo N."""
    d = a % N
    return d - N if d >= N - N // 2 else d


def psf_value(kind, dr, dc, sigma=1.5, radius=2.0, length=5.0, angle=0.0):
    """One PSF weight (unnormalised) at the integer offset (dr rows down, dc columns right)."""
    if kind == "gaussian":
        return math.exp(-(dr * dr + dc * dc) / (2 * sigma * sigma))
    if kind == "disk":
        return 1.0 if math.hypot(dr, dc) <= radius + 1e-9 else 0.0
    # motion: along (cos a, sin a) in (column, up) coordinates; up = -row
    a = math.radians(angle)
    x, y = dc, -dr
    along = x * math.cos(a) + y * math.sin(a)
    across = -x * math.sin(a) + y * math.cos(a)
    return 1.0 if abs(along) <= length / 2 + 1e-9 and abs(across) <= 0.5 + 1e-9 else 0.0


def blur2d_periodic(H, W, kind, **kw):
    """A[i, j] = psf(minimal image of (r_i - r_j, c_i - c_j)), psf normalised over the torus."""
    total = sum(psf_value(kind, min_image(a, H), min_image(b, W), **kw) for a in range(H)
                for b in range(W))  # fmt: skip
    n = H * W
    A = np.zeros((n, n))
    for i in range(n):
        ri, ci = divmod(i, W)
        for j in range(n):
            rj, cj = divmod(j, W)
            A[i, j] = psf_value(kind, min_image(ri - rj, H), min_image(ci - cj, W), **kw) / total
    return A


def _reflect(t, N):
    if t < 0:
        return -1 - t
    if t >= N:
        return 2 * N - 1 - t
    return t


def blur2d_bounded(H, W, kind, boundary, **kw):
    """(A x)[r, c] = sum_d psf(d) x[r - dr, c - dc] over the window |dr| <= (H-1)//2,
    |dc| <= (W-1)//2 (psf normalised over it); outside pixels reflected or zero."""
    rH, rW = (H - 1) // 2, (W - 1) // 2
    offs = [(a, b) for a in range(-rH, rH + 1) for b in range(-rW, rW + 1)]
    total = sum(psf_value(kind, a, b, **kw) for a, b in offs)
    n = H * W
    A = np.zeros((n, n))
    for i in range(n):
        r, c = divmod(i, W)
        for a, b in offs:
            rr, cc = r - a, c - b
            if boundary == "reflective":
                rr, cc = _reflect(rr, H), _reflect(cc, W)
            elif not (0 <= rr < H and 0 <= cc < W):
                continue
            A[i, rr * W + cc] += psf_value(kind, a, b, **kw) / total
    return A


def blur1d_periodic(n, band, sigma):
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            d = min_image(i - j, n)
            if abs(d) < band:
                A[i, j] = math.exp(-(d * d) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    return A


# ---------------------------------------------------------------------------------------
# image priors
def dft2_unitary(H: int, W: int) -> np.ndarray:
    """The unitary 2-D DFT on row-major (H, W) images: kron(F_H, F_W), F_N[k, j] =
    exp(-2 pi i k j / N) / sqrt(N), built entry by entry."""

    def f(N):
        k = np.arange(N)
        return np.exp(-2j * np.pi * np.outer(k, k) / N) / np.sqrt(N)

    return np.kron(f(H), f(W))


def stationary_cov_from_spectrum(P: np.ndarray) -> np.ndarray:
    """F* diag(P) F with the explicit n x n DFT matrix (real part; the imaginary part is
    rounding for a symmetric spectrum)."""
    F = dft2_unitary(*P.shape)
    S = F.conj().T @ (P.ravel()[:, None] * F)
    assert np.abs(S.imag).max() <= 1e-10 * np.abs(S.real).max()
    return S.real


def grf_rows(P: np.ndarray, seed: int, rows) -> np.ndarray:
    """Rows of the grf prior: the pure-Python normals of stream 0 (SIGNAL) filtered by
    F* diag(sqrt(P)) F with the explicit DFT matrix."""
    F = dft2_unitary(*P.shape)
    filt = (F.conj().T @ (np.sqrt(P.ravel())[:, None] * F)).real
    n = P.size
    return np.array([filt @ normals_row(seed, 0, int(r), n)[0] for r in rows])


# ---------------------------------------------------------------------------------------
# statistics (issue 15, mutation testing of fastinv.linalg.stats)
def naive_relative_error(Xhat, X, floor=None) -> float:
    """sqrt(Σ (x̂ − x)²) / max(sqrt(Σ x²), floor) by a plain loop over the entries."""
    pairs = zip(np.ravel(Xhat), np.ravel(X), strict=True)
    num = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in pairs))
    den = math.sqrt(sum(float(b) ** 2 for b in np.ravel(X)))
    if floor is not None:
        den = max(den, floor)
    return num / den


def naive_avg_ranks(v) -> list[float]:
    """1-based ranks with ties given their average rank, by counting."""
    v = [float(a) for a in v]
    return [sum(1 for b in v if b < a) + (sum(1 for b in v if b == a) + 1) / 2.0 for a in v]


def naive_pearson(a, b) -> float:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    sab = sum((p - ma) * (q - mb) for p, q in zip(a, b, strict=True))
    saa = sum((p - ma) ** 2 for p in a)
    sbb = sum((q - mb) ** 2 for q in b)
    return sab / math.sqrt(saa * sbb)


def naive_partial_spearman(x, y, z) -> float:
    """Pearson correlation of the residuals of rank(x) and rank(y) after the simple linear
    regression on rank(z) (closed form slope cov/var), ties averaged."""
    rx, ry, rz = (naive_avg_ranks(v) for v in (x, y, z))
    n = len(rz)
    mz = sum(rz) / n
    vz = sum((c - mz) ** 2 for c in rz)

    def resid(r):
        mr = sum(r) / n
        slope = sum((a - mr) * (c - mz) for a, c in zip(r, rz, strict=True)) / vz
        return [a - mr - slope * (c - mz) for a, c in zip(r, rz, strict=True)]

    return naive_pearson(resid(rx), resid(ry))


def naive_percentile_bootstrap(x, y, n_boot, level, seed) -> tuple[float, float]:
    """(lo, hi) percentile interval of Spearman's ρ over n_boot row resamples drawn as
    ``default_rng(seed).integers(0, m, m)``; resamples with a constant column are skipped."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    m = len(x)
    draws = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = draws.integers(0, m, m)
        if len(set(x[idx])) > 1 and len(set(y[idx])) > 1:
            boots.append(naive_pearson(naive_avg_ranks(x[idx]), naive_avg_ranks(y[idx])))
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return float(lo), float(hi)
