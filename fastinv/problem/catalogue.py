"""The operator catalogue: Regularization Tools test problems and a few others.

The 1-D test problems ``shaw``, ``deriv2``, ``heat``, ``phillips``, ``baart``, ``foxgood``,
``gravity`` and ``wing`` reproduce the discretisations and scalings of P. C. Hansen's
*Regularization Tools* (version 4.1, 9 March 2008; P. C. Hansen, "Regularization Tools
version 4.0 for Matlab 7.3", Numer. Algorithms 46 (2007) 189-194), transcribed from the
MATLAB files ``shaw.m``, ``deriv2.m``, ``heat.m``, ``phillips.m``, ``baart.m``,
``foxgood.m``, ``gravity.m`` and ``wing.m`` and vectorised with NumPy. The matrices agree
with the MATLAB code to rounding; where the MATLAB code fails for some n (odd n in ``heat``
and in ``deriv2`` example 3) fastinv refuses that n with a message instead.

Other operators: ``blur1d`` (the 1-D factor of Hansen's ``blur.m``), ``random`` (prescribed
singular values, Haar-random singular vectors) and ``identity``.

Each entry of :data:`CATALOGUE` is an :class:`OperatorSpec`: the builder ``(n, **params) ->
(A, b, x)``, the defaults and the check of the parameters; :func:`build` runs them.
:func:`fastinv.problem.operators.make_operator` wraps the result in an ``Operator``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fastinv._validation import check_int, fail
from fastinv.errors import FastinvError
from fastinv.io import check_memory
from fastinv.problem.structured import (
    DiagonalMap,
    KroneckerMap,
    LinearMap,
    PeriodicConvolution,
    ReflectiveConvolution,
    SubsampledMap,
    ZeroConvolution,
)

__all__ = [
    "CATALOGUE",
    "OperatorSpec",
    "build",
    "memory_estimate",
    "psf_weights",
    "random_singular_values",
]


# --------------------------------------------------------------------------------------
# parameter checks: "{op}: parameter {name} must be ..., got ..."
# --------------------------------------------------------------------------------------


def _param_float(name: str, op: str, v) -> float:
    what = f"{op}: parameter {name}"
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise fail(what, "a number", v) from None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise fail(what, "a real number", v)
    v = float(v)
    if not math.isfinite(v):
        raise fail(what, "finite", v)
    return v


def _param_int(name: str, op: str, v) -> int:
    return check_int(v, f"{op}: parameter {name}", integral_float=True, from_str=True)


def _positive(name: str, op: str, v) -> float:
    v = _param_float(name, op, v)
    if v <= 0:
        raise fail(f"{op}: parameter {name}", "> 0", v)
    return v


def _at_least_one(name: str, op: str, v):
    if v < 1:
        raise fail(f"{op}: parameter {name}", ">= 1", v)
    return v


def _example(op: str, v) -> int:
    v = _param_int("example", op, v)
    if v not in (1, 2, 3):
        raise fail(f"{op}: parameter example", "1, 2 or 3", v)
    return v


def _matlab_round(v: float) -> int:
    """MATLAB's round (halves away from zero) for v >= 0."""
    return int(math.floor(v + 0.5))


def _multiple_of(op: str, n: int, m: int, what: str) -> None:
    if n % m:
        lo, hi = n - n % m, n - n % m + m
        use = f"{lo} or {hi}" if lo >= m else f"{hi}"
        raise FastinvError(f"{op} needs {what}, got {n}: use {use}")


# --------------------------------------------------------------------------------------
# Regularization Tools test problems (P. C. Hansen, version 4.1)
# --------------------------------------------------------------------------------------


def _shaw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``shaw.m``: 1-D image restoration (C. B. Shaw, JMAA 37 (1972) 83-112).

    Kernel on [-pi/2, pi/2]^2 as coded in Regularization Tools,
    ``A_ij = h * ((cos s_i + cos t_j) * sin(u)/u)**2``, ``u = pi (sin s_i + sin t_j)``,
    midpoint rule with h = pi/n (note: the code squares ``cos s + cos t`` too, unlike the
    help text); solution ``x = 2 exp(-6 (t - 0.8)^2) + exp(-2 (t + 0.5)^2)``; ``b = A x``.
    The MATLAB code computes the block ``i <= j, i + j <= n`` (1-based), sets the
    anti-diagonal to ``(2 cos t_i)**2`` (the limit u -> 0), mirrors the block across the
    anti-diagonal and symmetrises; this is reproduced exactly. n must be even.
    """
    h = np.pi / n
    tt = -np.pi / 2 + (np.arange(n) + 0.5) * h
    co = np.cos(tt)
    psi = np.pi * np.sin(tt)
    half = n // 2
    # the directly computed block (0-based i <= j, i + j <= n - 2) lies in rows < n/2
    i = np.arange(half)[:, None]
    j = np.arange(n)[None, :]
    ss = psi[:half, None] + psi[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        F = co[:half, None] + co[None, :]
        F *= np.sin(ss)
        F /= ss
    F *= F
    del ss
    U = np.zeros((n, n))
    U[:half] = np.where((j >= i) & (i + j <= n - 2), F, 0.0)
    del F
    U = U + U[::-1, ::-1].T  # mirror across the anti-diagonal: A(n-j+1, n-i+1) = A(i, j)
    k = np.arange(half)
    U[k, n - 1 - k] = (2 * co[:half]) ** 2
    A = U.T.copy()
    A[np.diag_indices(n)] = 0.0
    A += U  # A + triu(A, 1)'
    del U
    A *= h
    x = 2 * np.exp(-6 * (tt - 0.8) ** 2) + 1 * np.exp(-2 * (tt + 0.5) ** 2)
    return A, A @ x, x


def _deriv2(n: int, example: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``deriv2.m``: second derivative (Delves & Mohamed 1985; Louis & Maass 1990).

    Galerkin discretisation with orthonormal box functions on [0, 1] of the Green's
    function ``K(s,t) = s(t-1)`` for s < t, ``t(s-1)`` for s >= t (h = 1/n, 1-based i, j)::

        A_ii = h^2 ((i^2 - i + 1/4) h - (i - 2/3))
        A_ij = h^2 (j - 1/2) ((i - 1/2) h - 1)         j < i  (A symmetric)

    Examples (b and x are the exact Galerkin projections of g and f, so A x ~ b only):
    1: g(s) = (s^3 - s)/6, f(t) = t; 2: g(s) = exp(s) + (1-e)s - 1, f(t) = exp(t);
    3: f(t) = t for t < 1/2 else 1 - t (n must be even).
    """
    h = 1.0 / n
    sqh = math.sqrt(h)
    h32 = h * sqh
    h2 = h**2
    sqhi = 1 / sqh
    t = 2 / 3
    iv = np.arange(1, n + 1, dtype=np.float64)
    L = (h2 * (iv[None, :] - 0.5)) * ((iv[:, None] - 0.5) * h - 1)
    A = np.tril(L, -1)
    del L
    A += A.T
    A[np.diag_indices(n)] = h2 * ((iv**2 - iv + 0.25) * h - (iv - t))

    if example == 1:
        b = h32 * (iv - 0.5) * ((iv**2 + (iv - 1) ** 2) * h2 / 2 - 1) / 6
        x = h32 * (iv - 0.5)
    elif example == 2:
        ee = 1 - math.exp(1)
        b = sqhi * (np.exp(iv * h) - np.exp((iv - 1) * h) + ee * (iv - 0.5) * h2 - h)
        x = sqhi * (np.exp(iv * h) - np.exp((iv - 1) * h))
    else:
        m = n // 2
        b = np.empty(n)
        x = np.empty(n)
        i1 = iv[:m]
        s12 = (i1 * h) ** 2
        s22 = ((i1 - 1) * h) ** 2
        b[:m] = sqhi * (s12 + s22 - 1.5) * (s12 - s22) / 24
        x[:m] = sqhi * ((i1 * h) ** 2 - ((i1 - 1) * h) ** 2) / 2
        i2 = iv[m:]
        s1 = i2 * h
        s12 = s1**2
        s2 = (i2 - 1) * h
        s22 = s2**2
        b[m:] = (
            sqhi * (-(s12 + s22) * (s12 - s22) + 4 * (s1**3 - s2**3) - 4.5 * (s12 - s22) + h) / 24
        )
        x[m:] = sqhi * (h - ((i2 * h) ** 2 - ((i2 - 1) * h) ** 2) / 2)
    return A, b, x


def _heat(n: int, kappa: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``heat.m``: inverse heat equation (Carasso, SIAM J. Appl. Math. 42 (1982)).

    Volterra equation on [0, 1] with kernel ``k(s - t)``,
    ``k(t) = t^(-3/2) / (2 kappa sqrt(pi)) exp(-1/(4 kappa^2 t))``, midpoint rule with
    h = 1/n, ``t_i = (i - 1/2) h``: A is the lower-triangular Toeplitz matrix with first
    column ``h k(t_i)`` (MATLAB ``toeplitz(k, [k(1) 0 ... 0])``). For n >~ 1500 with
    kappa = 1 the leading k(t_i) underflow to exactly 0 in float64, so A is exactly
    singular, as in MATLAB. Solution (piecewise, on the first half, 0 on the second)::

        t_i = 20 i / n:  0.75 t^2/4 (t < 2),  0.75 + (t-2)(3-t) (t < 3),  0.75 exp(-2(t-3))

    and ``b = A x``. n must be even (the MATLAB code fails for odd n).
    """
    import scipy.linalg

    h = 1.0 / n
    t = h / 2 + h * np.arange(n)
    c = h / (2 * kappa * math.sqrt(math.pi))
    d = 1 / (4 * kappa**2)
    with np.errstate(under="ignore"):
        k = c * t**-1.5 * np.exp(-d / t)
    r = np.zeros(n)
    r[0] = k[0]
    A = np.ascontiguousarray(scipy.linalg.toeplitz(k, r))
    x = np.zeros(n)
    ti = np.arange(1, n // 2 + 1) * 20 / n
    x[: n // 2] = np.where(
        ti < 2,
        0.75 * ti**2 / 4,
        np.where(ti < 3, 0.75 + (ti - 2) * (3 - ti), 0.75 * np.exp(-(ti - 3) * 2)),
    )
    return A, A @ x, x


def _phillips(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``phillips.m``: Phillips' problem (D. L. Phillips, J. ACM 9 (1962) 84-97).

    ``phi(x) = 1 + cos(pi x / 3)`` for |x| < 3, else 0; kernel ``K(s,t) = phi(s - t)``,
    ``f = phi``, ``g(s) = (6-|s|)(1 + cos(pi s/3)/2) + 9/(2 pi) sin(pi |s|/3)`` on [-6, 6].
    Galerkin with orthonormal box functions (h = 12/n): A is the symmetric Toeplitz
    matrix with first row ``r_k = h + 9/(h pi^2)(2 c_k - c_{k-1} - c_{k+1})``,
    ``c_k = cos(4 pi k / n)``, k < n/4, ``r_{n/4} = h/2 + 9/(h pi^2)(cos(4 pi/n) - 1)``,
    zeros beyond. b is the exact box average of g (so A x ~ b only). n must be a
    multiple of 4.
    """
    import scipy.linalg

    h = 12 / n
    n4 = n // 4
    r1 = np.zeros(n)
    c = np.cos(np.arange(-1, n4 + 1) * 4 * np.pi / n)
    r1[:n4] = h + 9 / (h * np.pi**2) * (2 * c[1 : n4 + 1] - c[0:n4] - c[2 : n4 + 2])
    r1[n4] = h / 2 + 9 / (h * np.pi**2) * (math.cos(4 * np.pi / n) - 1)
    A = np.ascontiguousarray(scipy.linalg.toeplitz(r1))

    cc = np.pi / 3
    i = np.arange(n // 2 + 1, n + 1)
    t1 = -6 + i * h
    t2 = t1 - h
    bh = (
        t1 * (6 - np.abs(t1) / 2)
        + ((3 - np.abs(t1) / 2) * np.sin(cc * t1) - 2 / cc * (np.cos(cc * t1) - 1)) / cc
        - t2 * (6 - np.abs(t2) / 2)
        - ((3 - np.abs(t2) / 2) * np.sin(cc * t2) - 2 / cc * (np.cos(cc * t2) - 1)) / cc
    )
    b = np.empty(n)
    b[n // 2 :] = bh
    b[: n // 2] = bh[::-1]
    b /= math.sqrt(h)

    x = np.zeros(n)
    grid = np.arange(n4 + 1) * h  # MATLAB 0:h:(3+10*eps)
    x[2 * n4 : 3 * n4] = (h + np.diff(np.sin(grid * cc)) / cc) / math.sqrt(h)
    x[n4 : 2 * n4] = x[2 * n4 : 3 * n4][::-1]
    return A, b, x


def _baart(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``baart.m`` (M. L. Baart, IMA J. Numer. Anal. 2 (1982) 241-247).

    ``K(s,t) = exp(s cos t)``, s in [0, pi/2], t in [0, pi]; ``g(s) = 2 sinh(s)/s``,
    ``f(t) = sin t``. Galerkin with orthonormal box functions (hs = pi/(2n), ht = pi/n):
    the s-integral exactly, the t-integral by Simpson's rule::

        A_ij = (F(t_{j-1}) + 4 F(t_{j-1/2}) + F(t_j))_i / (3 sqrt 2),
        F(t)_i = (exp(s_i cos t) - exp(s_{i-1} cos t)) / cos t   (= hs at t = pi/2)

    b is the Simpson approximation of the box averages of g and x the exact box averages
    of f (A is not symmetric; A x ~ b only). n must be even.
    """
    hs = np.pi / (2 * n)
    ht = np.pi / n
    c = 1 / (3 * math.sqrt(2))
    ihs = np.arange(n + 1) * hs
    lo = ihs[:n, None]
    hi = ihs[1:, None]
    nh = n // 2
    # F at the nodes t_k = k ht, k = 0..n (columns); MATLAB's first f3 uses co = 1 undivided
    co_nodes = np.cos(np.arange(n + 1) * ht)
    co_nodes[0] = 1.0
    Fn = (np.exp(hi * co_nodes) - np.exp(lo * co_nodes)) / co_nodes
    Fn[:, 0] = np.exp(ihs[1:]) - np.exp(ihs[:n])
    Fn[:, nh] = hs
    co_mid = np.cos((np.arange(1, n + 1) - 0.5) * ht)
    Fm = (np.exp(hi * co_mid) - np.exp(lo * co_mid)) / co_mid
    A = Fn[:, :n] + 4 * Fm
    A += Fn[:, 1:]
    A *= c

    si = np.arange(1, 2 * n + 1) * 0.5 * hs
    si = np.sinh(si) / si
    b = np.empty(n)
    b[0] = 1 + 4 * si[0] + si[1]
    b[1:] = si[1 : 2 * n - 2 : 2] + 4 * si[2 : 2 * n - 1 : 2] + si[3 : 2 * n : 2]
    b *= math.sqrt(hs) / 3
    x = -np.diff(np.cos(np.arange(n + 1) * ht)) / math.sqrt(ht)
    return np.ascontiguousarray(A), b, x


def _foxgood(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``foxgood.m``: Fox & Goodwin's problem (Baker 1977, p. 665).

    ``K(s,t) = sqrt(s^2 + t^2)`` on [0, 1]^2, midpoint rule (h = 1/n, t_i = (i - 1/2) h):
    ``A_ij = h sqrt(t_i^2 + t_j^2)`` (symmetric), ``x = t``,
    ``b = ((1 + t^2)^(3/2) - t^3) / 3`` (analytic, so A x ~ b only).
    """
    h = 1.0 / n
    t = h * (np.arange(1, n + 1) - 0.5)
    t2 = t**2
    A = np.sqrt(t2[:, None] + t2[None, :])
    A *= h
    b = ((1 + t2) ** 1.5 - t**3) / 3
    return A, b, t.copy()


def _gravity(
    n: int, example: int, a: float, b: float, d: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``gravity.m``: 1-D gravity surveying (Wing & Zahrt 1991, p. 17).

    ``K(s,t) = d (d^2 + (s - t)^2)^(-3/2)``, t in [0, 1], s in [a, b]; midpoint rule with
    ``t_j = (j - 1/2)/n``, ``s_i = a + (b - a)(i - 1/2)/n``:
    ``A_ij = (1/n) d / (d^2 + (s_i - t_j)^2)^(3/2)`` (symmetric Toeplitz for a=0, b=1).
    Solutions: 1: ``sin(pi t) + 0.5 sin(2 pi t)``; 2: piecewise linear; 3: piecewise
    constant (2 on the first round(n/3) points, 1 after); ``b = A x``.
    """
    dt = 1.0 / n
    ds = (b - a) / n
    t = dt * (np.arange(1, n + 1) - 0.5)
    s = a + ds * (np.arange(1, n + 1) - 0.5)
    D = s[:, None] - t[None, :]
    D *= D
    D += d**2
    A = dt * d / D**1.5
    del D
    nt = _matlab_round(n / 3)
    nn = _matlab_round(n * 7 / 8)
    x = np.ones(n)
    if example == 1:
        x = np.sin(np.pi * t) + 0.5 * np.sin(2 * np.pi * t)
    elif example == 2:
        if nt > 0:
            x[:nt] = (2 / nt) * np.arange(1, nt + 1)
        if nn > nt:
            x[nt:nn] = ((2 * nn - nt) - np.arange(nt + 1, nn + 1)) / (nn - nt)
        if n > nn:
            x[nn:] = (n - np.arange(nn + 1, n + 1)) / (n - nn)
    else:
        x[:nt] = 2.0
    return A, A @ x, x


def _wing(n: int, t1: float, t2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hansen's ``wing.m``: discontinuous solution (G. M. Wing, 1991, p. 109).

    ``K(s,t) = t exp(-s t^2)`` on [0, 1]^2, ``g(s) = (exp(-s t1^2) - exp(-s t2^2))/(2s)``,
    ``f = 1`` on (t1, t2), else 0. Galerkin with box functions, both integrals by the
    midpoint rule (h = 1/n, s_i = (i - 1/2) h): ``A_ij = h t_j exp(-s_i t_j^2)`` (not
    symmetric), ``b_i = sqrt(h) g(s_i)``, ``x_j = sqrt(h)`` where t1 < t_j < t2 (A x ~ b).
    """
    h = 1.0 / n
    sti = (np.arange(1, n + 1) - 0.5) * h
    A = np.exp(-sti[:, None] * (sti**2)[None, :])
    A *= (h * sti)[None, :]
    b = math.sqrt(h) * 0.5 * (np.exp(-sti * t1**2) - np.exp(-sti * t2**2)) / sti
    x = np.where((t1 < sti) & (sti < t2), math.sqrt(h), 0.0)
    return A, b, x


# --------------------------------------------------------------------------------------
# other operators
# --------------------------------------------------------------------------------------


def _bump(n: int) -> np.ndarray:
    """A smooth test signal on t = (i - 1/2)/n: two Gaussian bumps."""
    t = (np.arange(n) + 0.5) / n
    return np.exp(-(((t - 0.35) / 0.1) ** 2)) + 0.5 * np.exp(-(((t - 0.72) / 0.06) ** 2))


def _blur1d(
    n: int, band: int, sigma: float, boundary: str = "zero"
) -> tuple[np.ndarray | LinearMap, np.ndarray, np.ndarray]:
    """1-D Gaussian blur: the 1-D factor of Hansen's ``blur.m``.

    ``A_ij = exp(-d^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)`` for ``|d| < band``, else 0, with
    ``d = i - j`` (``boundary="zero"``: a symmetric banded Toeplitz matrix; ``blur.m`` builds
    the 2-D operator as ``kron(T, T) / (2 pi sigma^2)`` with the same T; defaults band = 3,
    sigma = 0.7) or d the minimal image of ``i - j`` modulo n (``boundary="periodic"``: a
    circulant, kept as a :class:`~fastinv.problem.structured.PeriodicConvolution` with an
    exact SVD by FFT). x is a smooth test signal (two Gaussian bumps), ``b = A x``.
    """
    import scipy.linalg

    x = _bump(n)
    if boundary == "periodic":
        d = _min_image(np.arange(n), n)
        k = np.where(np.abs(d) < band, np.exp(-(d**2) / (2 * sigma**2)), 0.0)
        op = PeriodicConvolution(k[None, :] / (math.sqrt(2 * math.pi) * sigma))
        return op, op.matmat_rows(x[None])[0], x
    band = min(band, n)
    z = np.zeros(n)
    z[:band] = np.exp(-(np.arange(band) ** 2) / (2 * sigma**2))
    A = np.ascontiguousarray(scipy.linalg.toeplitz(z)) / (math.sqrt(2 * math.pi) * sigma)
    return A, A @ x, x


# --------------------------------------------------------------------------------------
# images: blur2d, inpaint
# --------------------------------------------------------------------------------------


def _min_image(a: np.ndarray, N: int) -> np.ndarray:
    """The offset in [-N//2, N - N//2) congruent to ``a`` modulo N (-N/2 for the tie at N/2)."""
    return (a + N // 2) % N - N // 2


def psf_weights(psf: str, dr, dc, *, sigma: float, radius: float, length: float, angle: float):
    """Unnormalised PSF values at integer offsets (dr down the rows, dc along the columns).

    ``gaussian``: ``exp(-(dr^2 + dc^2) / (2 sigma^2))``; ``disk``: 1 where
    ``dr^2 + dc^2 <= radius^2``; ``motion``: 1 on the pixels whose centres lie within 1/2 of the
    segment of ``length`` centred at 0 in the direction ``angle`` (degrees, counter-clockwise
    from the column axis, so 0 is a horizontal and 90 a vertical blur), i.e. with
    ``|t| <= length/2`` and ``|distance to the line| <= 1/2``.
    """
    dr = np.asarray(dr, dtype=np.float64)
    dc = np.asarray(dc, dtype=np.float64)
    if psf == "gaussian":
        return np.exp(-(dr**2 + dc**2) / (2 * sigma**2))
    if psf == "disk":
        return (dr**2 + dc**2 <= radius**2 + 1e-9).astype(np.float64)
    a = math.radians(angle)
    ux, uy = math.cos(a), math.sin(a)  # along (columns, up = -rows)
    t = dc * ux - dr * uy
    dist = dc * uy + dr * ux
    tol = 1e-9
    return ((np.abs(t) <= length / 2 + tol) & (np.abs(dist) <= 0.5 + tol)).astype(np.float64)


def _psf_kwargs(p: dict) -> dict:
    return {k: p[k] for k in ("sigma", "radius", "length", "angle")}


def _test_image(shape: tuple[int, int]) -> np.ndarray:
    """A small phantom on an H x W grid: two Gaussian blobs and a bright rectangle (flattened)."""
    H, W = shape
    r = (np.arange(H)[:, None] + 0.5) / H
    c = (np.arange(W)[None, :] + 0.5) / W
    img = np.exp(-(((r - 0.3) ** 2 + (c - 0.35) ** 2) / 0.02))
    img = img + 0.5 * np.exp(-(((r - 0.7) ** 2 + (c - 0.7) ** 2) / 0.005))
    img = img + 0.8 * ((np.abs(r - 0.7) < 0.12) & (np.abs(c - 0.25) < 0.08))
    return img.ravel()


def _blur2d(
    n: int, shape, psf: str, boundary: str, **kw
) -> tuple[LinearMap, np.ndarray, np.ndarray]:
    """2-D image blur on an H x W grid (n = H W, row-major) with a PSF sampled at integer
    offsets and normalised to sum 1 (:func:`psf_weights`).

    ``periodic``: circular convolution over the whole torus, ``A[i, j] = psf(Δr, Δc)`` at the
    minimal-image offset of ``(r_i - r_j, c_i - c_j)`` (exact SVD by the 2-D FFT).
    ``reflective`` and ``zero``: the PSF on the window ``|dr| <= (H-1)//2``,
    ``|dc| <= (W-1)//2`` and reflective (half-sample symmetric, exact SVD by the 2-D DCT; the
    PSF must be doubly symmetric) or zero boundaries (matrix-free; a Gaussian PSF is then
    separable and the operator is kept as the Kronecker product A_r ⊗ A_c of two 1-D blurs,
    with an exact SVD). x is a phantom (:func:`_test_image`), b = A x.
    """
    H, W = shape
    x = _test_image(shape)
    if boundary == "periodic":
        dr, dc = _min_image(np.arange(H), H), _min_image(np.arange(W), W)
        K = psf_weights(psf, dr[:, None], dc[None, :], **kw)
        op = PeriodicConvolution(K / K.sum(), image_shape=shape)
        return op, op.matmat_rows(x[None])[0], x
    rH, rW = (H - 1) // 2, (W - 1) // 2
    dr, dc = np.arange(-rH, rH + 1), np.arange(-rW, rW + 1)
    if boundary == "zero" and psf == "gaussian":
        op = KroneckerMap(_toeplitz_blur(dr, H, kw["sigma"]), _toeplitz_blur(dc, W, kw["sigma"]),
                          image_shape=shape)  # fmt: skip
        return op, op.matmat_rows(x[None])[0], x
    K = psf_weights(psf, dr[:, None], dc[None, :], **kw)
    K = K / K.sum()
    if boundary == "reflective":
        op = ReflectiveConvolution(K, shape, image_shape=shape)
    else:
        op = ZeroConvolution(K, shape, image_shape=shape)
    return op, op.matmat_rows(x[None])[0], x


def _superres(n: int, shape, factor: int, **kw) -> tuple[LinearMap, np.ndarray, np.ndarray]:
    """Super-resolution: the periodic blur of :func:`_blur2d` on the H x W grid, then every
    ``factor``-th pixel kept in both directions (``y[i, j] = (K * x)[f i, f j]``): A is
    (H W / f², H W), audited against its pseudo-inverse. x is the phantom, b = A x."""
    H, W = shape
    blur, _, x = _blur2d(n, shape, boundary="periodic", **kw)
    op = SubsampledMap(blur, shape, factor, image_shape=shape)
    return op, op.matmat_rows(x[None])[0], x


def _toeplitz_blur(d: np.ndarray, N: int, sigma: float) -> np.ndarray:
    """The N x N Toeplitz factor ``g(i - j) / sum(g)`` with ``g`` Gaussian on the offsets d."""
    g = np.exp(-(d.astype(np.float64) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    i = np.arange(N)
    diff = i[:, None] - i[None, :]
    return np.where(np.abs(diff) <= d.max(), g[np.clip(diff - d.min(), 0, len(d) - 1)], 0.0)


def _inpaint(n: int, shape, fraction: float, seed: int) -> tuple[LinearMap, np.ndarray, np.ndarray]:
    """A pixel mask ``diag(m)``: ``round(fraction n)`` pixels kept (m = 1), drawn without
    replacement by ``np.random.default_rng(seed).permutation(n)``, the others 0."""
    keep = np.random.default_rng(seed).permutation(n)[: int(round(fraction * n))]
    mask = np.zeros(n)
    mask[keep] = 1.0
    op = DiagonalMap(mask, image_shape=shape)
    x = _bump(n) if shape is None else _test_image(shape)
    return op, mask * x, x


def _haar(rng: np.random.Generator, n: int) -> np.ndarray:
    """Haar-distributed orthogonal matrix: QR of a Gaussian matrix, signs of diag(R) fixed."""
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    sgn = np.sign(np.diag(R))
    sgn[sgn == 0] = 1.0
    return Q * sgn[None, :]


def random_singular_values(n: int, *, cond: float, spectrum: str, decay: float) -> np.ndarray:
    """The singular values ``random`` prescribes (descending).

    ``geometric``: ``np.geomspace(1, 1/cond, n)``; ``algebraic``: ``i^(-decay)``, i = 1..n.
    """
    if spectrum == "geometric":
        return np.geomspace(1.0, 1.0 / cond, n)
    return np.arange(1, n + 1, dtype=np.float64) ** (-decay)


def _random(
    n: int, cond: float, spectrum: str, decay: float, seed: int
) -> tuple[np.ndarray, None, None]:
    """``A = U diag(s) V^T`` with Haar-random U, V (drawn in that order from
    ``np.random.default_rng(seed)``) and s from :func:`random_singular_values`."""
    rng = np.random.default_rng(seed)
    U = _haar(rng, n)
    V = _haar(rng, n)
    s = random_singular_values(n, cond=cond, spectrum=spectrum, decay=decay)
    A = (U * s[None, :]) @ V.T
    return np.ascontiguousarray(A), None, None


def _identity(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The identity; x is the smooth two-bump signal and b = x."""
    x = _bump(n)
    return np.eye(n), x.copy(), x


# --------------------------------------------------------------------------------------
# catalogue
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorSpec:
    """One catalogue entry (see :func:`fastinv.problem.operators.list_operators`)."""

    name: str
    description: str
    builder: Callable[..., tuple]  # (n, **params) -> (A, b, x)
    defaults: dict
    param_doc: dict
    constraint: str | None
    check: Callable[[str, int, dict], dict]  # validates/coerces params, checks n
    reference: str = ""
    symmetric: bool | None = None
    b_kind: str = "A @ x"
    #: (n, params) -> bytes the builder needs (checked before building)
    memory: Callable[[int, dict], float] = field(default=lambda n, p: _dense_memory(n, p))


def _dense_memory(n: int, p: dict) -> float:
    """A dense builder: A and about two (n, n) float64 temporaries."""
    return 3 * 8.0 * n * n


def _blur1d_memory(n: int, p: dict) -> float:
    return 16 * 8.0 * n if p.get("boundary") == "periodic" else _dense_memory(n, p)


def _image_memory(n: int, p: dict) -> float:
    """An image operator: a few n-vectors (complex spectra, the phantom, the kernel)."""
    return 16 * 8.0 * n


def _check_none(op: str, n: int, p: dict) -> dict:
    return p


def _check_even(op: str, n: int, p: dict) -> dict:
    _multiple_of(op, n, 2, "an even n")
    return p


def _check_phillips(op: str, n: int, p: dict) -> dict:
    _multiple_of(op, n, 4, "n a multiple of 4")
    return p


def _check_deriv2(op: str, n: int, p: dict) -> dict:
    p["example"] = _example(op, p["example"])
    if p["example"] == 3:
        _multiple_of(op, n, 2, "an even n for example 3")
    return p


def _check_heat(op: str, n: int, p: dict) -> dict:
    p["kappa"] = _positive("kappa", op, p["kappa"])
    _multiple_of(op, n, 2, "an even n")
    return p


def _check_gravity(op: str, n: int, p: dict) -> dict:
    p["example"] = _example(op, p["example"])
    p["a"] = _param_float("a", op, p["a"])
    p["b"] = _param_float("b", op, p["b"])
    p["d"] = _positive("d", op, p["d"])
    return p


def _check_wing(op: str, n: int, p: dict) -> dict:
    p["t1"] = _param_float("t1", op, p["t1"])
    p["t2"] = _param_float("t2", op, p["t2"])
    if not p["t1"] < p["t2"]:
        raise FastinvError(f"wing needs t1 < t2, got t1={p['t1']}, t2={p['t2']}")
    return p


def _check_blur1d(op: str, n: int, p: dict) -> dict:
    p["sigma"] = _positive("sigma", op, p["sigma"])
    if p["band"] is None:
        p["band"] = max(3, math.ceil(4 * p["sigma"]))
    p["band"] = _at_least_one("band", op, _param_int("band", op, p["band"]))
    p["band"] = min(p["band"], n)
    p["boundary"] = _choice("boundary", op, p["boundary"], ("zero", "periodic"))
    return p


def _choice(name: str, op: str, v, choices: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v.strip().lower() not in choices:
        raise fail(f"{op}: parameter {name}", " or ".join(repr(c) for c in choices), v)
    return v.strip().lower()


def _parse_shape(op: str, n: int, v, *, required: bool) -> tuple[int, int] | None:
    """``shape`` as given (None, "32,32", "32x32", [32, 32], (32, 32)) -> (H, W) with H W = n;
    None means a square sqrt(n) x sqrt(n) image (refused when n is not a square, if
    ``required``, else a 1-D signal)."""
    if v is None:
        r = math.isqrt(n)
        if r * r == n:
            return (r, r)
        if not required:
            return None
        raise FastinvError(
            f"{op} needs n = H * W: n={n} is not a square, so give the image shape, e.g. "
            f"shape={_factor_hint(n)}"
        )
    H, W = shape_value(op, v)
    if H * W != n:
        raise FastinvError(f"{op}: shape {H}x{W} has {H * W} pixels but n={n}; pass n={H * W}")
    return (H, W)


def shape_value(op: str, v) -> tuple[int, int]:
    """The image shape (H, W) of the ``shape`` parameter ("32,32", "32x32", [32, 32])."""
    what = f"{op}: parameter shape"
    if isinstance(v, str):
        parts = v.strip().strip("()[]").replace("x", ",").replace("X", ",").split(",")
        try:
            v = [int(t) for t in parts if t.strip()]
        except ValueError:
            raise fail(what, "two integers H,W (e.g. shape=32,32)", v) from None
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise fail(what, "two integers H,W (e.g. shape=32,32)", v)
    H, W = (_at_least_one("shape", op, _param_int("shape", op, d)) for d in v)
    return H, W


def _factor_hint(n: int) -> str:
    H = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return f"{H},{n // H}"


_PSFS = ("gaussian", "disk", "motion")
_BOUNDARIES = ("periodic", "reflective", "zero")


def _check_blur2d(op: str, n: int, p: dict) -> dict:
    p["shape"] = _parse_shape(op, n, p["shape"], required=True)
    p["psf"] = _choice("psf", op, p["psf"], _PSFS)
    p["boundary"] = _choice("boundary", op, p["boundary"], _BOUNDARIES)
    p["sigma"] = _positive("sigma", op, p["sigma"])
    p["radius"] = _positive("radius", op, p["radius"])
    p["length"] = _positive("length", op, p["length"])
    p["angle"] = _param_float("angle", op, p["angle"])
    if p["boundary"] == "reflective" and p["psf"] == "motion" and p["angle"] % 90 != 0:
        raise FastinvError(
            f"{op}: boundary='reflective' needs a doubly symmetric PSF, and a motion blur at "
            f"angle={p['angle']:g} is not one (only 0, 90, 180, ... are); use "
            "boundary='periodic' or 'zero'"
        )
    return p


def _check_superres(op: str, n: int, p: dict) -> dict:
    p["shape"] = _parse_shape(op, n, p["shape"], required=True)
    p["factor"] = _param_int("factor", op, p["factor"])
    H, W = p["shape"]
    if p["factor"] < 1 or H % p["factor"] or W % p["factor"]:
        raise fail(
            f"{op}: parameter factor", f"a positive integer dividing the image size {H} x {W}",
            p["factor"],
        )  # fmt: skip
    p["psf"] = _choice("psf", op, p["psf"], _PSFS)
    p["sigma"] = _positive("sigma", op, p["sigma"])
    p["radius"] = _positive("radius", op, p["radius"])
    p["length"] = _positive("length", op, p["length"])
    p["angle"] = _param_float("angle", op, p["angle"])
    return p


def _check_inpaint(op: str, n: int, p: dict) -> dict:
    p["shape"] = _parse_shape(op, n, p["shape"], required=False)
    p["fraction"] = _param_float("fraction", op, p["fraction"])
    if not 0 <= p["fraction"] <= 1:
        raise fail(f"{op}: parameter fraction", "in [0, 1]", p["fraction"])
    p["seed"] = _param_int("seed", op, p["seed"])
    if p["seed"] < 0:
        raise fail(f"{op}: parameter seed", "a non-negative integer", p["seed"])
    return p


def _check_random(op: str, n: int, p: dict) -> dict:
    p["cond"] = _at_least_one("cond", op, _param_float("cond", op, p["cond"]))
    if p["spectrum"] not in ("geometric", "algebraic"):
        raise fail(f"{op}: parameter spectrum", "'geometric' or 'algebraic'", p["spectrum"])
    p["decay"] = _positive("decay", op, p["decay"])
    p["seed"] = _param_int("seed", op, p["seed"])
    if p["seed"] < 0:
        raise fail(f"{op}: parameter seed", "a non-negative integer", p["seed"])
    return p


_HANSEN = "Hansen, Regularization Tools 4.1"

CATALOGUE: dict[str, OperatorSpec] = {
    s.name: s
    for s in [
        OperatorSpec(
            "shaw",
            "1-D image restoration (Shaw 1972); symmetric, severely ill-posed",
            _shaw,
            {},
            {},
            "n even",
            _check_even,
            f"{_HANSEN}, shaw.m",
            True,
        ),
        OperatorSpec(
            "deriv2",
            "second derivative, Green's function kernel; symmetric negative definite, "
            "mildly ill-posed",
            _deriv2,
            {"example": 1},
            {"example": "1: f(t)=t, 2: f(t)=exp(t), 3: f piecewise linear (needs even n)"},
            "n even for example 3",
            _check_deriv2,
            f"{_HANSEN}, deriv2.m",
            True,
            "analytic (Galerkin projection of g)",
        ),
        OperatorSpec(
            "heat",
            "inverse heat equation (Volterra, Carasso 1982); lower-triangular Toeplitz",
            _heat,
            {"kappa": 1.0},
            {"kappa": "diffusion parameter; 1 ill-conditioned, 5 well-conditioned"},
            "n even",
            _check_heat,
            f"{_HANSEN}, heat.m",
            False,
        ),
        OperatorSpec(
            "phillips",
            "Phillips' problem (1962); symmetric banded Toeplitz, mildly ill-posed",
            _phillips,
            {},
            {},
            "n a multiple of 4",
            _check_phillips,
            f"{_HANSEN}, phillips.m",
            True,
            "analytic (Galerkin projection of g)",
        ),
        OperatorSpec(
            "baart",
            "Fredholm equation of Baart (1982); non-symmetric, severely ill-posed",
            _baart,
            {},
            {},
            "n even",
            _check_even,
            f"{_HANSEN}, baart.m",
            False,
            "analytic (Simpson projection of g)",
        ),
        OperatorSpec(
            "foxgood",
            "Fox & Goodwin's problem; symmetric, severely ill-posed (violates the Picard "
            "condition)",
            _foxgood,
            {},
            {},
            None,
            _check_none,
            f"{_HANSEN}, foxgood.m",
            True,
            "analytic (g at the midpoints)",
        ),
        OperatorSpec(
            "gravity",
            "1-D gravity surveying (Wing & Zahrt 1991); symmetric Toeplitz for a=0, b=1",
            _gravity,
            {"example": 1, "a": 0.0, "b": 1.0, "d": 0.25},
            {
                "example": "1: smooth, 2: piecewise linear, 3: piecewise constant solution",
                "a": "left end of the s interval",
                "b": "right end of the s interval",
                "d": "depth of the mass (larger d: faster singular value decay)",
            },
            None,
            _check_gravity,
            f"{_HANSEN}, gravity.m",
            True,
        ),
        OperatorSpec(
            "wing",
            "Wing's problem with a discontinuous solution (1991); non-symmetric",
            _wing,
            {"t1": 1 / 3, "t2": 2 / 3},
            {"t1": "solution is 1 on (t1, t2)", "t2": "solution is 1 on (t1, t2); t1 < t2"},
            None,
            _check_wing,
            f"{_HANSEN}, wing.m",
            False,
            "analytic (g at the midpoints)",
        ),
        OperatorSpec(
            "blur1d",
            "1-D Gaussian blur, symmetric banded Toeplitz (1-D factor of Hansen's blur.m)",
            _blur1d,
            {"band": None, "sigma": 0.7, "boundary": "zero"},
            {
                "band": "half-bandwidth: entries with |i-j| < band are kept; default "
                "max(3, ceil(4 sigma))",
                "sigma": "width of the Gaussian in samples",
                "boundary": "'zero' (banded Toeplitz) or 'periodic' (circulant; exact SVD by FFT)",
            },
            None,
            _check_blur1d,
            f"{_HANSEN}, blur.m (1-D factor)",
            True,
            memory=_blur1d_memory,
        ),
        OperatorSpec(
            "blur2d",
            "2-D image blur (Gaussian, disk or motion PSF) with periodic (FFT), reflective "
            "(DCT) or zero boundaries",
            _blur2d,
            {
                "shape": None,
                "psf": "gaussian",
                "sigma": 1.5,
                "radius": 2.0,
                "length": 5.0,
                "angle": 0.0,
                "boundary": "periodic",
            },
            {
                "shape": "image H,W with H*W = n (e.g. shape=32,32); default square",
                "psf": "'gaussian' (sigma), 'disk' (radius) or 'motion' (length, angle)",
                "sigma": "Gaussian width in pixels",
                "radius": "disk radius in pixels",
                "length": "motion blur length in pixels",
                "angle": "motion direction in degrees (0 horizontal, 90 vertical)",
                "boundary": "'periodic' (exact SVD by 2-D FFT), 'reflective' (doubly symmetric "
                "PSF; 2-D DCT) or 'zero' (matrix-free; a Gaussian is separable: Kronecker SVD)",
            },
            "n = H*W (a square n unless shape is given)",
            _check_blur2d,
            "Hansen, Nagy & O'Leary, Deblurring Images (SIAM 2006)",
            None,
            memory=_image_memory,
        ),
        OperatorSpec(
            "superres",
            "super-resolution: a periodic 2-D blur, then every factor-th pixel kept in both "
            "directions (m = n / factor², rectangular: audited against A⁺)",
            _superres,
            {
                "shape": None,
                "factor": 2,
                "psf": "gaussian",
                "sigma": 1.0,
                "radius": 2.0,
                "length": 5.0,
                "angle": 0.0,
            },
            {
                "shape": "high-resolution image H,W with H*W = n; default square",
                "factor": "down-sampling factor, dividing H and W (m = n / factor²)",
                "psf": "'gaussian' (sigma), 'disk' (radius) or 'motion' (length, angle)",
                "sigma": "Gaussian width in pixels (of the high-resolution grid)",
                "radius": "disk radius in pixels",
                "length": "motion blur length in pixels",
                "angle": "motion direction in degrees (0 horizontal, 90 vertical)",
            },
            "n = H*W with factor dividing H and W",
            _check_superres,
            "Hansen, Nagy & O'Leary, Deblurring Images (SIAM 2006), blur and sampling",
            None,
            memory=_image_memory,
        ),
        OperatorSpec(
            "inpaint",
            "pixel mask diag(m): a random fraction of the pixels kept, the rest zero",
            _inpaint,
            {"shape": None, "fraction": 0.5, "seed": 0},
            {
                "shape": "image H,W with H*W = n; default square when n is, else a 1-D signal",
                "fraction": "share of the pixels kept, in [0, 1]",
                "seed": "random seed for the mask",
            },
            None,
            _check_inpaint,
            "",
            True,
            memory=_image_memory,
        ),
        OperatorSpec(
            "random",
            "U diag(s) V^T with Haar-random U, V and prescribed singular values",
            _random,
            {"cond": 1e3, "spectrum": "geometric", "decay": 1.0, "seed": 0},
            {
                "cond": "geometric spectrum: s from 1 to 1/cond",
                "spectrum": "'geometric' (uses cond) or 'algebraic' (s_i = i^-decay)",
                "decay": "algebraic spectrum exponent",
                "seed": "random seed for U and V",
            },
            None,
            _check_random,
            "",
            False,
            "none",
        ),
        OperatorSpec(
            "identity",
            "the identity matrix (for tests)",
            _identity,
            {},
            {},
            None,
            _check_none,
            "",
            True,
            "x",
        ),
    ]
}


def build(
    name: str, n: int, params: dict
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, dict]:
    """Check ``params`` against the catalogue entry ``name`` and build the operator.

    Parameters
    ----------
    name : str
        A key of :data:`CATALOGUE` (lower case).
    n : int
        Size of A, already checked to be a positive integer.
    params : dict
        Parameters given by the user; missing ones take their defaults.

    Returns
    -------
    A, b, x, params
        The matrix, the right-hand side and the exact solution (None where the problem has
        none), and all the parameters, coerced and defaults included.
    """
    spec = CATALOGUE[name]
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        allowed = ", ".join(spec.defaults) if spec.defaults else "none"
        raise FastinvError(
            f"unknown parameter(s) {', '.join(unknown)} for {name}; allowed: {allowed}"
        )
    if name == "random" and "cond" in params and params.get("spectrum") == "algebraic":
        raise FastinvError(
            "random: cond applies only to spectrum='geometric'; for 'algebraic' set decay "
            "(cond = n**decay)"
        )
    p = spec.check(name, n, {**spec.defaults, **params})
    memory_estimate(name, n, p)
    A, b, x = spec.builder(n, **p)
    return A, b, x, p


def memory_estimate(name: str, n: int, params: dict) -> float:
    """Bytes the builder of ``name`` needs at this n; refused (FastinvError) before anything is
    allocated when that is more than 80 % of the memory available now."""
    need = CATALOGUE[name].memory(n, params)
    check_memory(need, f"{name} at n={n}", suggestion="choose a smaller n")
    return need
