"""Value tests that kill surviving mutants of fastinv.linalg.randomized (issue 15).

``auto_n_iter``: the rule in its docstring, at the boundary k = 0.1 min(shape), on both
orientations of the shape, for both methods.
"""

from __future__ import annotations

import pytest

from fastinv.linalg.randomized import auto_n_iter


@pytest.mark.parametrize(
    "k, shape, method, q",
    [
        (9, (100, 200), "hmt", 7),  # 9 < 0.1 * 100
        (10, (100, 200), "hmt", 4),  # the boundary is not below
        (9, (200, 100), "hmt", 7),  # the smaller dimension counts
        (10, (300, 100), "hmt", 4),  # ... not the larger one
        (29, (300, 400), "hmt", 7),
        (9, (100, 200), "block_krylov", 4),
        (10, (100, 200), "block_krylov", 2),
        (10, (300, 100), "block_krylov", 2),
        (1, (11, 11), "block_krylov", 4),
        (2, (11, 11), "block_krylov", 2),
    ],
)
def test_auto_n_iter_rule(k, shape, method, q):
    assert auto_n_iter(k, shape, method) == q


def test_auto_n_iter_default_method_is_hmt():
    assert auto_n_iter(9, (100, 200)) == 7 and auto_n_iter(50, (100, 200)) == 4
