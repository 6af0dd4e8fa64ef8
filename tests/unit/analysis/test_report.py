"""The report end to end: every figure and table written, readable without matplotlib, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.report import build_report
from direct_ray.results.read import ResultsError
from tests.unit.analysis.synthetic import realistic_study, write_trial

from tests.paths import ROOT as REPO
FIGURES = ("learning_curves.png", "minority_labels.png", "noise_robustness.png", "b_parallel.png",
           "b_parallel_time.png")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """3 strategies x 2 seeds x 2 noise settings x 2 b_parallel, 4 rounds."""
    return realistic_study(tmp_path_factory.mktemp("study"), rounds=4)


@pytest.fixture(scope="module")
def report(study, tmp_path_factory) -> Path:
    return build_report(study, tmp_path_factory.mktemp("report"))


def test_every_figure_is_written_and_embedded(report):
    text = report.read_text()
    for name in FIGURES:
        png = report.parent / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, name
        assert f"]({name})" in text, name


def test_report_sections_and_tables(report):
    text = report.read_text()
    for heading in ("## What was run", "## Label savings (headline)", "## Learning curves", "## Minority labels",
                    "## Fixed-budget summary", "## Noise robustness", "## Effect of b_parallel",
                    "## Label savings at every target", "## How savings are computed", "## Versions"):
        assert heading in text
    assert "Study **synthetic-realistic**" in text
    assert "24 trials with results, of 24 planned by the study: 2 settings x 6 methods x 2 seeds" in text
    assert "| direct, b_parallel=1 | random, b_parallel=1 |" in text
    assert "1 (sequential)" in text  # galaxy asked for b_parallel=5 ran sequentially
    assert "| numpy |" in text
    for csv in ("savings.csv", "summary.csv"):
        lines = (report.parent / csv).read_text().splitlines()
        assert len(lines) > 1
    assert len((report.parent / "summary.csv").read_text().splitlines()) == 1 + 12


def test_default_output_dir_and_unfinished_trial(tmp_path):
    write_trial(tmp_path, strategy="random", seed=0, n_labeled=[10, 20, 30], balanced_accuracy=[0.5, 0.6, 0.7])
    write_trial(tmp_path, strategy="direct", seed=0, n_labeled=[10, 20], balanced_accuracy=[0.5, 0.8],
                trial_config={"initial_size": 10, "rounds": 2, "b_train": 10})
    path = build_report(tmp_path, figures=False)
    assert path == tmp_path / "report" / "report.md"
    text = path.read_text()
    assert "1 unfinished trial(s)" in text and "(20 of 30 labels)" in text
    assert "no noisy setting" in text and "single b_parallel" in text


def test_tables_without_matplotlib(study, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    path = build_report(study, tmp_path)
    assert not list(tmp_path.glob("*.png"))
    text = path.read_text()
    assert "matplotlib is not installed" in text
    assert "| direct, b_parallel=1 | random, b_parallel=1 |" in text
    assert (tmp_path / "savings.csv").stat().st_size > 0


def test_bad_arguments(study):
    with pytest.raises(ValueError, match="fractions"):
        build_report(study, fractions=(0.0,), figures=False)
    with pytest.raises(ResultsError, match="does not exist"):
        build_report(study / "missing", figures=False)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_cli_end_to_end(study, tmp_path):
    out = tmp_path / "out"
    done = _cli(str(study), "--out", str(out), "--budget", "60", "--fractions", "0.5,1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report: {out / 'report.md'}"
    for name in FIGURES:
        assert (out / name).stat().st_size > 0
    assert "digits-k2: 60 labels (AUC over 20-60)" in (out / "report.md").read_text()


@pytest.mark.parametrize("make", ["empty", "foreign"])
def test_cli_bad_input_is_one_line_per_problem(tmp_path, make):
    if make == "empty":
        (tmp_path / "curves").mkdir()
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = tmp_path / "curves" / "dataset=a" / "strategy=b"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"x": [1]}), folder / "x.parquet")
    done = _cli(str(tmp_path))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), done.stderr
    assert len(lines) == (1 if make == "empty" else 2), done.stderr
    if make == "foreign":
        assert "x.parquet: not a direct-ray results file" in lines[0]
        assert lines[1].endswith("no file could be read")
    assert "Traceback" not in done.stderr


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_first_page(path: Path) -> None:
    """Garbage where the first data page starts: the footer still reads, the rows do not."""
    data = bytearray(path.read_bytes())
    data[4:64] = b"\xff" * 60
    path.write_bytes(bytes(data))


def _study_with_bad_files(root: Path) -> tuple[Path, list[Path]]:
    realistic_study(root, strategies=("direct", "random"), noises=(("none", 0.0),), b_parallels=(1,), rounds=3)
    files = sorted((root / "curves").rglob("*.parquet"))
    _truncate(files[0])
    _corrupt_first_page(files[1])
    return root, files[:2]


def test_unreadable_files_are_left_out_named_and_reported(tmp_path):
    root, bad = _study_with_bad_files(tmp_path / "results")
    done = _cli(str(root), "--no-figures")
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 2, done.stderr
    for line, path in zip(warnings, bad):
        assert line.startswith(f"warning: left out {path}: not a readable Parquet file ("), line
    text = (root / "report" / "report.md").read_text()
    assert "## Files left out" in text and "2 file(s) could not be read" in text
    for path in bad:
        assert f"- `{path}`: not a readable Parquet file" in text
    assert "- 2 trials with results, of 4 planned" in text  # the two readable trials


def test_strict_makes_any_unreadable_file_an_error(tmp_path):
    root, bad = _study_with_bad_files(tmp_path / "results")
    done = _cli(str(root), "--strict", "--no-figures")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert [line.split(": not a readable")[0] for line in lines] == [f"error: {path}" for path in bad], done.stderr
    assert not (root / "report").exists()


def test_out_must_be_local(study):
    done = _cli(str(study), "--out", "s3://bucket/report")
    assert done.returncode == 2 and "give a local directory" in done.stderr
    with pytest.raises(ValueError, match="local directory"):
        build_report(study, "s3://bucket/report", figures=False)


def test_default_output_for_a_uri_is_local(study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = build_report(f"file://{study}", figures=False)
    assert path == Path(f"report-{study.name}") / "report.md"
    assert (tmp_path / path).is_file()
    assert f"Read from `file://{study}`" in (tmp_path / path).read_text()


def test_cli_help():
    done = _cli("--help")
    assert done.returncode == 0
    assert "RESULTS_DIR" in done.stdout and "--out" in done.stdout and "--budget" in done.stdout
    assert "--strict" in done.stdout and "s3://" in done.stdout


def test_what_was_run_names_each_datasets_classes(tmp_path):
    import pyarrow.parquet as pq

    from direct_ray.results.schema import META_CLASSES

    mappings = {"features-skl-k2": [1, 0], "cifar100-k2": [0] + [1] * 99}
    for dataset, mapping in mappings.items():
        path = write_trial(tmp_path, strategy="random", seed=0, n_labeled=[10, 20], balanced_accuracy=[0.5, 0.6],
                           dataset=dataset)
        table = pq.read_table(path)
        pq.write_table(table.replace_schema_metadata({**table.schema.metadata, META_CLASSES: json.dumps(mapping)}),
                       path)
    text = build_report(tmp_path, figures=False).read_text()
    assert "- Classes of cifar100-k2 (study class <- original classes): 0 <- 0; 1 (majority) <- 1-99." in text
    assert "- Classes of features-skl-k2 (study class <- original classes): 0 <- 1; 1 (majority) <- 0." in text
