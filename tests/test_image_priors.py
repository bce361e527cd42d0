"""Image priors (grf, shapes, images): exact covariances against an explicit DFT construction,
rows against the pure-Python generator, chunk invariance, the Wiener filter as the LMMSE of a
periodic blur, and `--data` / RunConfig(data=...)."""

from __future__ import annotations

import numpy as np
import pytest

import fastinv
import fastinv.problem.blocks
from fastinv.errors import FastinvError
from fastinv.linalg.estimators import lmmse
from fastinv.problem.priors import make_prior
from tests import naive


@pytest.fixture
def small_blocks(monkeypatch):
    """BLAS / FFT blocks of 8 rows, so that small inputs span many blocks and chunks."""
    monkeypatch.setattr(fastinv.problem.blocks, "_BLOCK_OVERRIDE", 8)


# ---------------------------------------------------------------------------------------
# grf
@pytest.mark.parametrize("shape", [(4, 6), (5, 5), (8, 8)])
def test_grf_cov_equals_explicit_dft_construction(shape):
    H, W = shape
    pr = make_prior("grf", H * W, image_shape=shape, alpha=2.5, k0=0.1, scale=1.7)
    P = pr.power_spectrum()
    ref = naive.stationary_cov_from_spectrum(P)
    np.testing.assert_allclose(pr.cov(), ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    # pixel variance scale^2, spectrum of the documented form
    np.testing.assert_allclose(np.diag(pr.cov()), 1.7**2, rtol=1e-12)
    kr, kc = np.fft.fftfreq(H)[:, None], np.fft.fftfreq(W)[None, :]
    form = (0.01 + kr**2 + kc**2) ** -1.25
    np.testing.assert_allclose(P, 1.7**2 * form / form.mean(), rtol=1e-12)


def test_grf_rows_equal_pure_python_generator():
    pr = make_prior("grf", 24, image_shape=(4, 6), alpha=3.0, k0=0.2)
    rows = [0, 1, 5, 1000]
    X = np.concatenate([pr.sample(1, seed=11, start=r) for r in rows])
    ref = naive.grf_rows(pr.power_spectrum(), 11, rows)
    np.testing.assert_allclose(X, ref, rtol=0, atol=1e-12)


def test_grf_sample_covariance_matches_cov():
    pr = make_prior("grf", 64, alpha=3.0, k0=0.1)  # 8 x 8
    N = 40000
    X = pr.sample(N, seed=3)
    S = X.T @ X / N
    C = pr.cov()
    # entry (i, j) of the sample covariance has sd sqrt((C_ii C_jj + C_ij^2) / N) <= 0.0071
    assert np.abs(S - C).max() < 0.04
    assert np.abs(X.mean(0)).max() < 0.04
    # the correlations are far from the identity's: the test sees a wrong filter
    assert np.abs(C - np.eye(64)).max() > 0.5


def test_grf_given_power_array_and_callable():
    shape = (6, 4)

    def power(kr, kc):  # anisotropic: P(kr, kc) != P(kr, -kc), only P(k) = P(-k)
        return 1.0 / (0.05 + kr**2 + kr * kc + 2 * kc**2)

    kr, kc = np.fft.fftfreq(6)[:, None], np.fft.fftfreq(4)[None, :]
    grid = power(kr, kc)
    # P(-k): the frequencies negated, with the even sizes' Nyquist -1/2 standing for +1/2
    mk = (-kr + 0.5) % 1.0 - 0.5, (-kc + 0.5) % 1.0 - 0.5
    sym = 0.5 * (grid + power(*mk))
    assert np.abs(grid - sym).max() > 0.1  # the raw grid is not symmetric at the Nyquist row
    with pytest.raises(FastinvError, match="symmetric"):
        make_prior("grf", 24, image_shape=shape, power=grid)
    a = make_prior("grf", 24, image_shape=shape, power=power, scale=2.0)
    b = make_prior("grf", 24, image_shape=shape, power=sym)
    np.testing.assert_allclose(a.power_spectrum(), 4.0 * sym, rtol=1e-14)
    np.testing.assert_allclose(a.cov(), 4.0 * b.cov(), rtol=1e-12)
    np.testing.assert_allclose(b.cov(), naive.stationary_cov_from_spectrum(sym), atol=1e-12)
    assert a.to_dict()["params"]["power"].startswith("callable")
    assert b.to_dict()["params"]["power"] == "array (6, 4)"


@pytest.mark.parametrize(
    "power, match",
    [
        (np.arange(24.0).reshape(6, 4), "symmetric"),
        (-np.ones((6, 4)), ">= 0"),
        (np.ones((4, 6)), r"shape \(6, 4\)"),
        (np.full((6, 4), np.nan), "non-finite"),
        (np.zeros((6, 4)), "nonzero"),
    ],
)
def test_grf_bad_power_refused(power, match):
    with pytest.raises(FastinvError, match=match):
        make_prior("grf", 24, image_shape=(6, 4), power=power)


@pytest.mark.parametrize("name", ["grf", "shapes", "images"])
def test_rows_independent_of_chunking(name, small_blocks):
    kw = {"images": np.random.default_rng(0).normal(size=(7, 5, 6))} if name == "images" else {}
    pr = make_prior(name, 30, image_shape=(5, 6), **kw)
    X = pr.sample(37, seed=5)
    parts = [pr.sample(e - s, seed=5, start=s) for s, e in ((0, 3), (3, 19), (19, 37))]
    assert np.array_equal(X, np.concatenate(parts))
    assert not np.array_equal(X[0], X[1])
    A = fastinv.make_operator("blur2d", 30, shape=(5, 6), boundary="periodic")
    kw_gen = dict(n_samples=37, prior=pr, noise=0.01, seed=5)
    X1, Y1 = fastinv.generate(A, **kw_gen)
    X2, Y2 = fastinv.generate(A, chunk_size=7, **kw_gen)
    assert np.array_equal(X1, X) and np.array_equal(X2, X) and np.array_equal(Y1, Y2)


# ---------------------------------------------------------------------------------------
# the key check: LMMSE of a periodic blur under the grf prior is the Wiener filter
def test_lmmse_is_the_wiener_filter_for_periodic_blur():
    op = fastinv.make_operator("blur2d", 256, shape=(16, 16), boundary="periodic")
    pr = make_prior("grf", 256, image_shape=(16, 16), alpha=3.0, k0=0.05)
    U, s, Vt = op.svd
    Sx = pr.cov()
    M = Vt @ Sx @ Vt.T  # the prior in A's right singular basis: diagonal (Fourier modes)
    P = np.diag(M).copy()
    assert np.abs(M - np.diag(P)).max() <= 1e-12 * P.max()
    # its diagonal is the power spectrum, each frequency once (cos / sin pairs share P(k))
    np.testing.assert_allclose(np.sort(P), np.sort(pr.power_spectrum().ravel()), rtol=1e-10)
    se2 = 1e-3
    C, b = lmmse(op.A, pr.mean(), Sx, se2)
    phi = s**2 * P / (s**2 * P + se2)
    wiener = Vt.T @ np.diag(phi / s) @ U.T
    assert np.abs(C - wiener).max() <= 1e-10 * np.abs(wiener).max()
    assert np.abs(b).max() == 0.0
    # and the filter is far from Tikhonov's with a white prior (the test can tell them apart)
    tik = Vt.T @ np.diag(s / (s**2 + se2)) @ U.T
    assert np.abs(C - tik).max() > 0.1 * np.abs(wiener).max()


# ---------------------------------------------------------------------------------------
# shapes
def _naive_shapes(seed, row, H, W, p):
    """One shapes image painted pixel by pixel from the pure-Python uniforms (stream 1)."""
    u = [naive.u01(naive.hash_u64(seed, 1, row, j)) for j in range(5 * (p["rects"] + p["disks"]))]
    img = np.full((H, W), p["background"])
    for k in range(p["rects"] + p["disks"]):
        cy, cx, s1, s2, v = u[5 * k : 5 * k + 5]
        cy, cx = cy * H, cx * W
        val = p["intensity_min"] + v * (p["intensity_max"] - p["intensity_min"])
        for r in range(H):
            for c in range(W):
                y, x = r + 0.5, c + 0.5
                if k < p["rects"]:
                    h = (p["size_min"] + s1 * (p["size_max"] - p["size_min"])) * H
                    w = (p["size_min"] + s2 * (p["size_max"] - p["size_min"])) * W
                    inside = abs(y - cy) <= h / 2 and abs(x - cx) <= w / 2
                else:
                    rad = (p["radius_min"] + s1 * (p["radius_max"] - p["radius_min"])) * min(H, W)
                    inside = (y - cy) ** 2 + (x - cx) ** 2 <= rad**2
                if inside:
                    img[r, c] = val
    return img.ravel()


def test_shapes_equal_pixel_by_pixel_painter():
    pr = make_prior(
        "shapes", 96, shape=(8, 12), disks=3, rects=2, radius_max=0.4, intensity_min=0.5,
        intensity_max=2.0, background=-0.25,
    )  # fmt: skip
    X = pr.sample(6, seed=9, start=10)
    ref = np.array([_naive_shapes(9, r, 8, 12, pr.params) for r in range(10, 16)])
    np.testing.assert_array_equal(X, ref)
    assert len(np.unique(X)) > 6  # shapes were painted
    assert pr.cov() is None and pr.mean() is None


def test_shapes_audit_moments_are_sampled():
    from fastinv.auditing.references import prior_moments

    pr = make_prior("shapes", 64)
    X = pr.sample(50, seed=1)
    mu, S, source = prior_moments(pr, X)
    assert source == "estimated from 50 samples"
    np.testing.assert_allclose(mu, X.mean(0))


# ---------------------------------------------------------------------------------------
# a user's images
def test_images_rows_are_drawn_from_the_stack_by_the_seed(tmp_path):
    rng = np.random.default_rng(1)
    stack = rng.normal(size=(9, 4, 5))
    pr = make_prior("images", 20, images=stack, image_shape=(4, 5))
    X = pr.sample(12, seed=4, start=3)
    idx = [int(naive.u01(naive.hash_u64(4, 1, r, 0)) * 9) for r in range(3, 15)]
    np.testing.assert_array_equal(X, stack.reshape(9, 20)[idx])
    flat = stack.reshape(9, 20)
    np.testing.assert_allclose(pr.mean(), flat.mean(0), rtol=1e-14)
    np.testing.assert_allclose(pr.cov(), np.cov(flat, rowvar=False, ddof=0), atol=1e-14)
    # the same from an (N, n) array and from a .npy file
    np.save(tmp_path / "im.npy", stack)
    for source in (flat, tmp_path / "im.npy", str(tmp_path / "im.npy")):
        other = make_prior("images", 20, images=source, image_shape=(4, 5))
        np.testing.assert_array_equal(other.sample(12, seed=4, start=3), X)
    assert (
        make_prior("images", 20, images=tmp_path / "im.npy", shape=(4, 5)).to_dict()["params"][
            "images"
        ]
        == f"{tmp_path / 'im.npy'} (9, 4, 5)"
    )


@pytest.mark.parametrize(
    "images, match",
    [
        (None, "needs the images"),
        (np.ones((5, 4, 4)), r"\(N, 4, 5\) stack or an \(N, 20\)"),
        (np.ones((5, 21)), r"got shape \(5, 21\)"),
        (np.ones(20), r"got shape \(20,\)"),
        (np.ones((1, 4, 5)), "at least 2"),
        (np.full((3, 4, 5), np.inf), "non-finite"),
        (np.array([["a"] * 20] * 3), "real numeric array"),
        ("/nonexistent/im.npy", "no such file"),
    ],
)
def test_images_bad_input_refused(images, match):
    with pytest.raises(FastinvError, match=match):
        make_prior("images", 20, images=images, image_shape=(4, 5))


@pytest.mark.parametrize(
    "n, params, match",
    [
        (20, {}, "not a perfect square"),
        (20, {"image_shape": (4, 4)}, "has 16 pixels but n = 20"),
        (20, {"image_shape": "4,q"}, "two positive integers"),
        (20, {"image_shape": (4, 5), "shape": (4, 5)}, "not both"),
        (16, {"alpha": -1}, "alpha"),
        (16, {"k0": 0}, "k0"),
        (16, {"length_scale": 1}, "unknown parameter"),
    ],
)
def test_grf_bad_parameters_refused(n, params, match):
    with pytest.raises(FastinvError, match=match):
        make_prior("grf", n, **params)


@pytest.mark.parametrize("value", [(4, 5), [4, 5], "4,5", "4x5"])
def test_image_shape_forms(value):
    assert make_prior("grf", 20, shape=value).image_shape == (4, 5)


def test_list_priors_names_image_priors():
    names = {p["name"] for p in fastinv.problem.priors.list_priors()}
    assert {"grf", "shapes", "images"} <= names


# ---------------------------------------------------------------------------------------
# RunConfig(data=...) and `fastinv run --data`
def test_run_config_data(tmp_path):
    from fastinv.workflows.run import RunConfig

    np.save(tmp_path / "im.npy", np.ones((3, 4, 4)))
    cfg = RunConfig(operator="blur2d", n=16, data=str(tmp_path / "im.npy"))
    assert cfg.prior == "images" and cfg.data == str((tmp_path / "im.npy").resolve())
    assert RunConfig.from_dict(cfg.to_dict()).data == cfg.data
    with pytest.raises(FastinvError, match="drop the prior"):
        RunConfig(data=str(tmp_path / "im.npy"), prior="gaussian")
    with pytest.raises(FastinvError, match="no such file"):
        RunConfig(data=str(tmp_path / "nope.npy"))
    with pytest.raises(FastinvError, match=r"data must be the path of a \.npy"):
        RunConfig(data=str(tmp_path / "im.txt"))


def test_run_with_data_trains_on_the_images(tmp_path):
    from fastinv._progress import Reporter
    from fastinv.workflows.run import RunConfig, _generate_data, _make_operator

    stack = np.random.default_rng(2).normal(size=(6, 4, 6))
    np.save(tmp_path / "im.npy", stack)
    cfg = RunConfig(
        operator="blur2d",
        n=24,
        operator_params={"shape": [4, 6], "boundary": "periodic"},
        data=str(tmp_path / "im.npy"),
        samples=50,
        test_samples=10,
        probes=20,
    )
    op = _make_operator(cfg)
    data = _generate_data(cfg, op, Reporter(False))
    flat = stack.reshape(6, 24)
    for X in (data.X, data.X_test, data.X_probe):  # every row is one of the images
        assert np.abs(X[:, None, :] - flat[None]).max(-1).min(-1).max() == 0.0
    np.testing.assert_allclose(data.Y, data.X @ op.A.T, rtol=0, atol=0.1)
    assert data.prior.to_dict()["n_images"] == 6
    # grf with the operator's (non-square) image shape
    cfg2 = RunConfig(operator="blur2d", n=24, operator_params=cfg.operator_params, prior="grf")
    assert _generate_data(cfg2, op, Reporter(False)).prior.image_shape == (4, 6)
