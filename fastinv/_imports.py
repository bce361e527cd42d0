"""Importing the user's own code named on the command line or in a config: ``package.module:Name``
or ``path/to/file.py:Name`` (a model, an ``--arch`` factory, an operator factory), with the
current folder importable, and one clear message for each way it can fail."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys

from fastinv.errors import FastinvError

__all__ = ["cwd_on_path", "import_object", "is_object_ref"]


@contextlib.contextmanager
def cwd_on_path():
    """Make the current working directory importable (sys.path[0]) for the duration."""
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        try:
            if sys.path and sys.path[0] == cwd:
                del sys.path[0]
            else:
                sys.path.remove(cwd)
        except ValueError:
            pass


def is_object_ref(spec) -> bool:
    """``package.module:name`` or ``file.py:name`` (and not a Windows drive path)."""
    if not isinstance(spec, str):
        return False
    mod, sep, attr = spec.strip().rpartition(":")
    if not sep or not mod or not attr:
        return False
    if len(mod) == 1 and mod.isalpha() and attr[:1] in ("\\", "/"):
        return False  # C:\path
    if not all(part.isidentifier() for part in attr.split(".")):
        return False
    return mod.endswith(".py") or all(part.isidentifier() for part in mod.split("."))


def import_object(ref: str, *, what: str):
    """Import ``package.module:Name`` (or ``file.py:Name``) with the cwd importable; ``what``
    names the object in the messages ("the model", "--arch", "operator")."""
    modname, sep, attr = ref.strip().rpartition(":")
    if not sep or not modname or not attr:
        raise FastinvError(f"{what} {ref!r} must look like package.module:Name")
    try:
        with cwd_on_path():
            if modname.endswith(".py"):
                module = _import_file(modname)
            else:
                module = importlib.import_module(modname)
    except FastinvError:
        raise
    except ImportError as exc:
        raise FastinvError(
            f"{what} {ref}: cannot import module {modname!r} ({type(exc).__name__}: {exc}); "
            "run from the folder that holds it or add that folder to PYTHONPATH"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        raise FastinvError(
            f"{what} {ref}: importing module {modname!r} raised {type(exc).__name__}: {exc}; "
            "fix the module so that it imports"
        ) from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FastinvError(
                f"{what} {ref}: module {modname!r} has no attribute {attr!r}; check the name "
                "after the ':'"
            ) from None
    return obj


def _import_file(path: str):
    if not os.path.isfile(path):
        raise FastinvError(f"Python file {path!r} not found; check the path before the ':'")
    name = "fastinv_user_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
