"""fastinv.report.write_audit_report: the report of an audit made in the library."""

import json

import numpy as np
import pytest

import fastinv
from fastinv.errors import FastinvError
from fastinv.io import to_jsonable
from fastinv.linalg import estimators
from fastinv.report import write_audit_report

N = 16


@pytest.fixture(scope="module")
def linear_audit():
    """The audit of an exactly linear model: the Tikhonov inverse as a NumPy callable."""
    op = fastinv.make_operator("shaw", N)
    X, Y = fastinv.generate(op, n_samples=400, seed=1, noise=0.01)
    Xt, Yt = fastinv.generate(op, n_samples=200, seed=2, noise=0.01)
    M = estimators.tikhonov(op.A, 1e-4)
    res = fastinv.audit(
        lambda Yb: Yb @ M.T,
        op,
        probes=Y,
        test=(Yt, Xt),
        prior=fastinv.make_prior("smooth", N),
        noise={"level": 0.01, "type": "relative"},
    )
    return res, M, Yt, Xt


def test_write_audit_report_files_hold_the_audits_numbers(linear_audit, tmp_path):
    res, M, Yt, Xt = linear_audit
    before = json.dumps(to_jsonable(res.metrics), sort_keys=True)
    out = tmp_path / "report"
    metrics = write_audit_report(res, out, title="my audit", config={"lam": 1e-4})
    assert json.dumps(to_jsonable(res.metrics), sort_keys=True) == before  # left unchanged
    for name in ("report.md", "report.html", "metrics.json", "arrays.npz", "config.json"):
        assert (out / name).is_file(), name
    for name in ("singular_values", "filter_factors", "picard", "principal_angles"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(to_jsonable(metrics)))
    # every number of the audit, section by section, as the audit computed it
    for key, value in res.metrics.items():
        if key != "timings":
            assert saved[key] == to_jsonable(value), key
    assert saved["timings"]["audit_detail"] == to_jsonable(res.metrics["timings"])
    assert saved["verdict"] == res.verdict
    # a linear model: its surrogate is exact and its error is the Tikhonov matrix's
    err = np.linalg.norm(Yt @ M.T - Xt) / np.linalg.norm(Xt)
    assert saved["errors"]["network"] == pytest.approx(err, rel=1e-10)
    assert saved["surrogate"]["r2_heldout"] == pytest.approx(1.0, abs=1e-10)

    with np.load(out / "arrays.npz") as z:
        assert sorted(z) == sorted(res.arrays)
        for k in z:
            np.testing.assert_array_equal(z[k], res.arrays[k])
        np.testing.assert_allclose(z["C"], M, atol=1e-8 * np.abs(M).max())

    md = (out / "report.md").read_text()
    assert md.startswith("# my audit\n")
    assert f"| network | {saved['errors']['network']:.4g} |" in md
    assert res.verdict[0] in md
    assert "my audit" in (out / "report.html").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["lam"] == 1e-4 and config["fastinv_version"] == fastinv.__version__


def test_write_audit_report_refuses_a_folder_with_files(linear_audit, tmp_path):
    res = linear_audit[0]
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FastinvError, match="already holds files"):
        write_audit_report(res, tmp_path)
    metrics = write_audit_report(res, tmp_path, force=True)
    assert (tmp_path / "keep.txt").read_text() == "x"
    assert json.loads((tmp_path / "metrics.json").read_text())["verdict"] == metrics["verdict"]
