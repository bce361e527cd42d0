"""The house rules of the package, checked from its syntax trees: no import cycles, no module
using another module's private names, nothing importing the CLI, every module declaring
``__all__``, and ``import fastinv`` staying light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "fastinv"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".")
    if not MODULES[mod].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for every import anywhere in ``mod``."""
    out = []
    for node in ast.walk(ast.parse(MODULES[mod].read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(mod, node)
            for a in node.names:
                full = f"{src}.{a.name}"
                out.append((full, None) if full in MODULES else (src, a.name))
    return [(m, n) for m, n in out if m == "fastinv" or m.startswith("fastinv.")]


def _graph() -> dict[str, set[str]]:
    graph = {}
    for mod in MODULES:
        deps = {m for m, _ in _imports(mod) if m in MODULES and m != mod and m != "fastinv"}
        graph[mod] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def _is_package_of(parent: str, mod: str) -> bool:
    return mod.startswith(parent + ".")


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a cycle of concern
    pruned = {m: {d for d in deps if not _is_package_of(m, d)} for m, deps in graph.items()}
    assert _cycle(pruned) is None, f"import cycle: {' -> '.join(_cycle(pruned))}"


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _module_aliases(mod: str, tree) -> dict[str, str]:
    """Local names bound to other fastinv modules: ``import a.b as S``, ``from a import b``."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname})
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(mod, node)
            for a in node.names:
                aliases[a.asname or a.name] = f"{src}.{a.name}"
    return {k: v for k, v in aliases.items() if v in MODULES and v != mod}


def _foreign(src: str, name: str, mod: str) -> bool:
    private = name.startswith("_") and not name.startswith("__")
    return private and src != mod and not src.startswith("fastinv.kernels")


def _private_uses(mod: str) -> list[str]:
    """Private names of other fastinv modules that ``mod`` imports or reaches into."""
    bad = [f"{src}.{name}" for src, name in _imports(mod) if name and _foreign(src, name, mod)]
    tree = ast.parse(MODULES[mod].read_text())
    aliases = _module_aliases(mod, tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            src = aliases.get(node.value.id)
            if src and _foreign(src, node.attr, mod):
                bad.append(f"{src}.{node.attr}")
    return bad


def test_no_module_uses_another_modules_private_names():
    found = {mod: uses for mod in MODULES if (uses := _private_uses(mod))}
    assert not found, f"private names used across modules: {found}"


def test_nothing_outside_the_cli_imports_it():
    offenders = [
        mod
        for mod in MODULES
        if not mod.startswith("fastinv.cli")
        and mod != "fastinv.__main__"  # `python -m fastinv` is the command line itself
        and any(m.startswith("fastinv.cli") for m, _ in _imports(mod))
    ]
    assert not offenders


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_every_module_declares_all(mod):
    tree = ast.parse(MODULES[mod].read_text())
    names = {
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    shim = "sys.modules[__name__]" in MODULES[mod].read_text()
    assert shim or "__all__" in names, f"{mod} declares no __all__"


def test_import_fastinv_stays_light():
    code = (
        "import sys, fastinv; "
        "heavy = [m for m in ('torch', 'matplotlib', 'click', 'tqdm') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
