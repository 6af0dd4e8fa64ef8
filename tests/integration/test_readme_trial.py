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
