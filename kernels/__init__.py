"""Numba kernels of fastinv, installed as ``fastinv.kernels``.

Kernels take prepared arrays (dtype, contiguity already fixed by the public function that
calls them), do no validation, and have names starting with ``_``. Each has a slow, plain
NumPy reference in tests/naive.py and a test comparing the two.
"""
