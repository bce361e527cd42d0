"""The report for images: test images and reconstructions, filter factors over frequency.

The singular index -> frequency map is checked against a brute-force DFT of the singular
vectors (and A's singular values against the brute-force DFT of the PSF); the radial average
and the frequency map against slow loops; the reconstructions kept in the audit's arrays
against closed forms computed in the Fourier domain (Wiener, Tikhonov) or from the model.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest

import fastinv
from fastinv.auditing import images

# --------------------------------------------------------------------------------------------
# slow references


def _dft2_slow(v: np.ndarray, a: int, b: int) -> complex:
    """Σ_{r,c} v[r, c] exp(-2πi (a r / H + b c / W)), by the definition."""
    H, W = v.shape
    total = 0j
    for r in range(H):
        for c in range(W):
            total += v[r, c] * cmath.exp(-2j * math.pi * (a * r / H + b * c / W))
    return total


def _centred(k: int, N: int) -> int:
    k %= N
    return k - N if k > (N - 1) // 2 else k


def _blur(shape, **params):
    H, W = shape
    return fastinv.make_operator("blur2d", H * W, shape=shape, boundary="periodic", **params)


# --------------------------------------------------------------------------------------------
# index -> frequency


@pytest.mark.parametrize(
    "shape, params",
    [((8, 8), {"psf": "motion", "length": 3.0, "angle": 30.0}), ((6, 10), {"sigma": 1.2})],
)
def test_frequencies_of_the_singular_vectors_against_a_brute_force_dft(shape, params):
    H, W = shape
    op = _blur(shape, **params)
    U, s, Vt = op.svd
    ky, kx, purity = images.fourier_frequencies(Vt, shape)
    kernel = op.A[:, 0].reshape(H, W)  # A e_0 = the PSF centred at (0, 0)
    for i in range(Vt.shape[0]):
        v = Vt[i].reshape(H, W)
        energy = {(a, b): abs(_dft2_slow(v, a, b)) ** 2 for a in range(H) for b in range(W)}
        total = sum(energy.values())
        support = {f for f, e in energy.items() if e > 1e-10 * total}
        pair = {(ky[i] % H, kx[i] % W), (-ky[i] % H, -kx[i] % W)}
        assert support == pair, i
        assert -(H // 2) <= ky[i] <= (H - 1) // 2 and -(W // 2) <= kx[i] <= (W - 1) // 2
        assert purity[i] == pytest.approx(1.0, abs=1e-12)
        # the singular value sits at that frequency: σ_i = |PSF^(k)|
        lam = _dft2_slow(kernel, int(ky[i]), int(kx[i]))
        assert s[i] == pytest.approx(abs(lam), rel=1e-10, abs=1e-13)
    # every frequency pair is taken, by as many indices as it has real modes
    cells = images.frequency_map(np.ones(Vt.shape[0]), ky, kx, shape)
    assert np.all(cells == 1.0)


def test_mixed_singular_vectors_give_no_map():
    shape = (4, 4)
    Vt = np.linalg.qr(np.random.default_rng(0).standard_normal((16, 16)))[0].T
    out, why = images.filter_map_arrays(Vt, shape, {"C": np.ones(16)}, ["C"])
    assert out == {} and "not pure Fourier modes" in why


def test_frequency_map_against_a_loop():
    H, W = 6, 5
    rng = np.random.default_rng(1)
    r = 23
    ky, kx = rng.integers(-3, 3, r), rng.integers(-2, 3, r)
    vals = rng.standard_normal(r)
    fast = images.frequency_map(vals, ky, kx, (H, W))
    slow = np.full((H, W), np.nan)
    for i in range(H):
        for j in range(W):
            f = (i - H // 2, j - W // 2)
            hits = [
                vals[t]
                for t in range(r)
                if f
                in {
                    (_centred(ky[t], H), _centred(kx[t], W)),
                    (_centred(-ky[t], H), _centred(-kx[t], W)),
                }  # fmt: skip
            ]
            if hits:
                slow[i, j] = np.mean(hits)
    np.testing.assert_allclose(fast, slow, rtol=1e-14, equal_nan=True)


@pytest.mark.parametrize("shape", [(8, 8), (6, 10), (7, 4)])
def test_radial_average_against_a_loop(shape):
    H, W = shape
    rng = np.random.default_rng(2)
    M = rng.standard_normal(shape)
    M[0, 1] = np.nan
    radius, mean = images.radial_average(M)
    K = max(H, W)
    sums: dict[int, list] = {}
    for i in range(H):
        for j in range(W):
            rad = math.hypot((i - H // 2) / H, (j - W // 2) / W)
            ring = math.floor(rad * K + 0.5)
            if not math.isnan(M[i, j]):
                sums.setdefault(ring, []).append(M[i, j])
    assert len(radius) == max(sums) + 1
    np.testing.assert_allclose(radius, np.arange(len(radius)) / K)
    for ring in range(len(radius)):
        want = np.mean(sums[ring]) if ring in sums else np.nan
        np.testing.assert_allclose(mean[ring], want, rtol=1e-13, equal_nan=True)


# --------------------------------------------------------------------------------------------
# the audit's images against closed forms


class _StationaryPrior:
    """A stationary Gaussian field on the torus with power spectrum ``p`` about ``mu``."""

    def __init__(self, shape, p, mu):
        H, W = shape
        c = np.fft.ifft2(p).real  # autocovariance
        r = np.repeat(np.arange(H), W)
        col = np.tile(np.arange(W), H)
        self._cov = c[(r[:, None] - r[None, :]) % H, (col[:, None] - col[None, :]) % W]
        self._mu = mu

    def mean(self):
        return self._mu

    def cov(self):
        return self._cov


def _fourier(Y, shape, gain):
    """Rows of Y filtered by ``gain`` (H, W) in the 2-D Fourier domain."""
    Z = np.fft.fft2(Y.reshape(-1, *shape)) * gain
    return np.fft.ifft2(Z).real.reshape(Y.shape[0], -1)


@pytest.fixture(scope="module")
def image_audit():
    shape = (6, 10)
    H, W = shape
    op = _blur(shape, sigma=1.0)
    lam = np.fft.fft2(op.A[:, 0].reshape(H, W))
    fy, fx = np.meshgrid(np.fft.fftfreq(H), np.fft.fftfreq(W), indexing="ij")
    p = 1.0 / (0.05 + fy**2 + fx**2)  # power spectrum, symmetric under k -> -k
    mu = 0.3 + 0.2 * np.sin(np.arange(H * W) / 5.0)
    prior = _StationaryPrior(shape, p, mu)
    rng = np.random.default_rng(3)
    L = np.linalg.cholesky(prior.cov() + 1e-12 * np.eye(H * W))
    sigma = 0.02

    def data(N):
        X = mu + rng.standard_normal((N, H * W)) @ L.T
        return X, X @ op.A.T + sigma * rng.standard_normal((N, H * W))

    X, Y = data(400)
    Xt, Yt = data(60)
    # a known linear model: a circulant filter with real μλ, plus an offset
    gain = np.conj(lam) / (np.abs(lam) ** 2 + 0.01)
    offset = np.linspace(-0.1, 0.1, H * W)

    def model(Yb):
        return _fourier(Yb, shape, gain) + offset

    res = fastinv.audit(
        model,
        op,
        probes=Y,
        test=(Yt, Xt),
        prior=prior,
        noise={"level": sigma, "type": "absolute"},
        seed=0,
    )
    return dict(
        res=res, op=op, lam=lam, p=p, mu=mu, sigma=sigma, Yt=Yt, Xt=Xt, model=model, shape=shape
    )


def test_images_in_the_arrays_equal_their_closed_forms(image_audit):
    d = image_audit
    res, shape, Yt, Xt = d["res"], d["shape"], d["Yt"][:4], d["Xt"][:4]
    a = res.arrays

    def img(name):
        return a[f"img_{name}"].reshape(4, -1)

    assert a["img_truth"].shape == (4, *shape)
    np.testing.assert_array_equal(img("truth"), Xt)
    np.testing.assert_array_equal(img("measurement"), Yt)
    np.testing.assert_allclose(img("network"), d["model"](Yt), rtol=0, atol=1e-12)
    np.testing.assert_allclose(img("C"), Yt @ a["C"].T + a["b"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(img("C"), img("network"), rtol=0, atol=1e-8)
    lam, p, s2 = d["lam"], d["p"], d["sigma"] ** 2
    mu = d["mu"]  # x̂ = μ + W (y − A μ), W diagonal in the Fourier domain
    Amu = _fourier(mu[None], shape, lam)
    wiener = mu + _fourier(Yt - Amu, shape, np.conj(lam) * p / (np.abs(lam) ** 2 * p + s2))
    np.testing.assert_allclose(img("lmmse"), wiener, rtol=0, atol=1e-8 * np.abs(wiener).max())
    lam_t = res.metrics["references"]["tikhonov_oracle"]["lambda"]
    tik = _fourier(Yt, shape, np.conj(lam) / (np.abs(lam) ** 2 + lam_t))
    np.testing.assert_allclose(img("tikhonov_oracle"), tik, rtol=0, atol=1e-8 * np.abs(tik).max())


def test_filter_factor_maps_equal_their_closed_forms(image_audit):
    d = image_audit
    a, lam, p, s2 = d["res"].arrays, d["lam"], d["p"], d["sigma"] ** 2
    g = np.abs(lam) ** 2
    lam_t = d["res"].metrics["references"]["tikhonov_oracle"]["lambda"]
    want = {
        "C": g / (g + 0.01),
        "lmmse": g * p / (g * p + s2),
        "tikhonov_oracle": g / (g + lam_t),
    }
    for name, phi in want.items():
        M = np.fft.fftshift(phi)  # the centred layout
        np.testing.assert_allclose(a[f"phimap_{name}"], M, rtol=0, atol=1e-7, err_msg=name)
        radius, mean = images.radial_average(M)
        np.testing.assert_allclose(a[f"phiradial_{name}"], mean, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(a["phiradial_radius"], radius)


# --------------------------------------------------------------------------------------------
# the report


def _png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_has_an_images_section_with_the_new_figures(image_audit, tmp_path):
    out = tmp_path / "rep"
    fastinv.write_audit_report(image_audit["res"], out)
    names = ("images", "filter_factor_maps", "filter_factors_radial")
    for name in names:
        assert _png(out / f"{name}.png"), name
    md = (out / "report.md").read_text()
    head, _, rest = md.partition("## Images")
    assert rest, "no Images section"
    images_part, _, plots_part = rest.partition("## Plots")
    for name in names:
        assert f"![{name}]({name}.png)" in images_part
        assert f"({name}.png)" not in plots_part and f"({name}.png)" not in head
    assert "![filter_factors](filter_factors.png)" in plots_part
    html = (out / "report.html").read_text()
    assert "<h2>Images</h2>" in html
    for name in names:
        assert f'alt="{name}.png"' in html
    with np.load(out / "arrays.npz") as z:
        np.testing.assert_array_equal(z["img_lmmse"], image_audit["res"].arrays["img_lmmse"])


def test_no_images_for_1d_and_no_maps_without_fourier_structure(tmp_path):
    rng = np.random.default_rng(4)
    op1 = fastinv.make_operator("shaw", 16)
    op2 = fastinv.make_operator("blur2d", 36, shape=(6, 6), boundary="reflective", sigma=1.0)
    results = []
    for op in (op1, op2):
        X = rng.standard_normal((80, op.n))
        Y = X @ op.A.T + 0.01 * rng.standard_normal(X.shape)
        res = fastinv.audit(
            lambda y: 0.5 * y + 0.1 * y**2,  # not affine: network and C y + b differ
            op,
            probes=Y[:60],
            test=(Y[60:], X[60:]),
            train_X=X[:60],
        )
        assert not any(k.startswith(("phimap_", "phiradial_", "freq_")) for k in res.arrays)
        results.append((res, Y[60:64]))
    (res1, _), (res2, Y2) = results
    assert not any(k.startswith("img_") for k in res1.arrays)
    a = res2.arrays
    np.testing.assert_allclose(a["img_network"], (0.5 * Y2 + 0.1 * Y2**2).reshape(4, 6, 6))
    np.testing.assert_allclose(a["img_C"], (Y2 @ a["C"].T + a["b"]).reshape(4, 6, 6))
    out = tmp_path / "one_d"
    fastinv.write_audit_report(res1, out)
    assert "## Images" not in (out / "report.md").read_text()
    assert not (out / "images.png").exists()
