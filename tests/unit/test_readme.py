"""The README's promises: its library example runs, and its commands are the ones CI runs."""

import re
from pathlib import Path

from tests.paths import ROOT
README = (ROOT / "README.md").read_text()


def test_the_readme_direct_example_runs():
    section = README.split("### Use DIRECT in your own training loop", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["bought"]) == 100


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e . && python -m direct_ray.sweep" in README
    assert "pip install -e '.[dev]' && python -m pytest" in README
    assert "pip install --quiet -e '.[dev]'" in ci and "python -m pytest" in ci
