"""Statistics of reconstructions and of model families: the relative error of a set of
reconstructions, and for `fastinv sweep` Spearman's ρ with bootstrap intervals and partial
correlation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fastinv._validation import check_real_array
from fastinv.errors import FastinvError

__all__ = ["Correlation", "correlate", "partial_spearman", "relative_error", "spearman"]


def relative_error(Xhat: np.ndarray, X: np.ndarray, *, floor: float | None = None) -> float:
    """‖X̂ − X‖_F / ‖X‖_F, the relative error of reconstructions (rows) against their targets.

    Parameters
    ----------
    Xhat, X : ndarray of the same shape
    floor : float, optional
        Lower bound on the denominator (``1e-300`` keeps X = 0 finite); none by default.

    Returns
    -------
    float
    """
    Xhat = check_real_array(Xhat, "Xhat")
    X = check_real_array(X, "X")
    if Xhat.shape != X.shape:
        raise FastinvError(f"Xhat and X must have the same shape, got {Xhat.shape} and {X.shape}")
    den = np.linalg.norm(X)
    if floor is not None:
        den = max(den, floor)
    return float(np.linalg.norm(Xhat - X) / den)


@dataclass
class Correlation:
    """Spearman's ρ between two columns of a model family, with a bootstrap interval."""

    x: str
    y: str
    rho: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    partial_rho: float | None = None
    partial_on: str | None = None
    #: independent units the interval resamples (runs when rows are grouped), else ``n``
    n_groups: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def excludes_zero(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)


def _rank(a: np.ndarray) -> np.ndarray:
    from scipy import stats  # imported on first use: relative_error does not need it

    return stats.rankdata(a)


def _columns(*cols) -> list[np.ndarray]:
    """The columns as 1-D float64 arrays of one length (FastinvError otherwise)."""
    out = [check_real_array(c, f"column {i + 1}", ndim=1) for i, c in enumerate(cols)]
    if len({len(c) for c in out}) > 1:
        raise FastinvError(f"columns must have the same length, got {[len(c) for c in out]}")
    return out


def spearman(x, y) -> float:
    """Spearman's rank correlation (Pearson correlation of the ranks, ties averaged)."""
    x, y = _columns(x, y)
    rx, ry = _rank(x), _rank(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def partial_spearman(x, y, z) -> float:
    """Spearman correlation of x and y controlling for z (residuals of ranks on z's ranks)."""
    rx, ry, rz = (_rank(v) for v in _columns(x, y, z))
    if np.std(rz) == 0:
        return spearman(x, y)
    Z = np.column_stack([np.ones_like(rz), rz])
    ex = rx - Z @ np.linalg.lstsq(Z, rx, rcond=None)[0]
    ey = ry - Z @ np.linalg.lstsq(Z, ry, rcond=None)[0]
    if np.std(ex) == 0 or np.std(ey) == 0:
        return float("nan")
    return float(np.corrcoef(ex, ey)[0, 1])


def _spearman_p(x, y) -> float:
    from scipy import stats

    return float(stats.spearmanr(x, y).pvalue)


def correlate(
    x,
    y,
    *,
    names=("x", "y"),
    control=None,
    control_name=None,
    groups=None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Correlation:
    """Spearman ρ of (x, y) with a percentile-bootstrap confidence interval over models.

    Parameters
    ----------
    x, y : array_like of shape (m,)
        One value per model (NaN rows are dropped).
    control : array_like of shape (m,), optional
        A variable to partial out (e.g. the training-set size).
    groups : array_like of shape (m,), optional
        Rows with the same label are not independent (checkpoints of one training run): the
        bootstrap then resamples whole groups (cluster bootstrap), so the interval reflects
        the number of independent runs, not of rows. Fewer than 3 groups give no interval
        (NaN). The p-value always assumes independent rows.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if control is not None:
        control = np.asarray(control, float)
        keep &= np.isfinite(control)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != keep.shape:
            raise FastinvError(
                f"groups has shape {groups.shape} but x has {keep.shape}; one label per row"
            )
    x, y = x[keep], y[keep]
    m = x.size
    if m < 3:
        raise FastinvError(f"a correlation needs at least 3 models with finite values, got {m}")
    rho = spearman(x, y)
    p = _spearman_p(x, y) if np.isfinite(rho) else float("nan")
    rng = np.random.default_rng(seed)
    if groups is None:
        members = None
        n_units = m
    else:
        _, inv = np.unique(groups[keep], return_inverse=True)
        members = [np.flatnonzero(inv == j) for j in range(int(inv.max()) + 1)]
        n_units = len(members)
    boots = np.full(n_boot if n_units >= 3 else 0, np.nan)
    for i in range(boots.size):
        pick = rng.integers(0, n_units, n_units)
        idx = pick if members is None else np.concatenate([members[j] for j in pick])
        boots[i] = spearman(x[idx], y[idx])
    boots = boots[np.isfinite(boots)]
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a]) if boots.size else (np.nan, np.nan)
    part = None
    if control is not None:
        part = partial_spearman(x, y, control[keep])
    return Correlation(
        names[0], names[1], rho, float(lo), float(hi), p, m, part, control_name, n_units
    )
