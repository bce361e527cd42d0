"""``fastinv.pipeline`` stays importable: the module lives in :mod:`fastinv.workflows.pipeline`,
and this name is bound to that very module (not a copy)."""

import sys

import fastinv.workflows.pipeline as _module

sys.modules[__name__] = _module
