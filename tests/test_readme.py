"""The README's library example runs as written, and its first lines give the two commands."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_library_example_runs():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)  # noqa: S102 - our own README
    res = ns["res"]
    assert 0 < res.metrics["errors"]["network"] < 1.5
    assert res.verdict and "Caveat" in res.verdict[-1]


def test_first_lines_give_install_and_test_commands():
    head = README.read_text().split("---")[0]
    assert "fastinv run" in head and "pip install" in head
    assert "python3 -m pytest -q" in head
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python3 -m pytest -q" in ci and "torch==2.13.0" in ci
