"""The README's run_trial example runs on real Ray and writes what it says."""

import re

from tests.paths import ROOT

README = (ROOT / "README.md").read_text()


def test_the_readme_run_trial_example_runs(ray_session, tmp_path, monkeypatch):
    section = README.split("### Run one trial from Python (no Tune)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["state"].curve) == 11
    assert (tmp_path / "ckpt" / "direct-s0" / "state.json").exists()
    assert list((tmp_path / "results" / "notebook" / "curves").rglob("*.parquet"))


def test_the_readme_run_sweep_example_runs(ray_session, tmp_path, monkeypatch):
    section = README.split("### Run a sweep from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert '"results/nb"' in code
    monkeypatch.chdir(ROOT)  # the example names the study by its path in the repository
    namespace: dict = {}
    exec(compile(code.replace('"results/nb"', repr(str(tmp_path / "nb"))), "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.ok and len(result.completed) == 32 and not result.failed
