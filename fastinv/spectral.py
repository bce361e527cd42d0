"""``fastinv.spectral`` stays importable: the module lives in :mod:`fastinv.linalg.spectral`,
and this name is bound to that very module (not a copy)."""

import sys

import fastinv.linalg.spectral as _module

sys.modules[__name__] = _module
