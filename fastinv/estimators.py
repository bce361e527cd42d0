"""``fastinv.estimators`` stays importable: the module lives in :mod:`fastinv.linalg.estimators`,
and this name is bound to that very module (not a copy)."""

import sys

import fastinv.linalg.estimators as _module

sys.modules[__name__] = _module
