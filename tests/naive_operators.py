"""Literal, loop-by-loop transcriptions of Hansen's Regularization Tools 4.1 test problems.

Slow reference versions of ``fastinv.operators``: each follows the MATLAB file statement by
statement (1-based loop indices kept, ``i - 1`` when indexing), so a vectorisation slip in
the library shows up as a mismatch. Only for small n.
"""

from __future__ import annotations

import math

import numpy as np


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
