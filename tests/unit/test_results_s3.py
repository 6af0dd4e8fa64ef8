"""Results on S3: written by the trial writer and read back by read.py and ``python -m analysis``.

A real S3 protocol, served by moto's server on 127.0.0.1 (a free port, dummy credentials),
reached through pyarrow's S3 filesystem with the endpoint in the URI's query, as a user of
an S3-compatible store would write it. moto imports neither Ray nor torch, so this stays in
the unit layer; without moto installed the tests are skipped.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from direct_ray.results.layout import trial_complete
from direct_ray.results.read import read_results, read_study_metadata, read_table
from direct_ray.results.schema import CURVES, SELECTIONS
from direct_ray.results.write import TrialWriter
from tests.paths import ROOT as REPO
from tests.unit.analysis.synthetic import realistic_study

moto_server = pytest.importorskip("moto.server")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(endpoint, monkeypatch, request):
    """A fresh bucket; returns (URI of a prefix in it, its filesystem)."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fs = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", allow_bucket_creation=True)
    name = f"results-{request.node.name.lower().replace('_', '-')[:40]}"
    fs.create_dir(name)
    return f"s3://{name}/studies/synthetic?endpoint_override={endpoint}&scheme=http", fs, name


def _rows(rounds: int = 3) -> tuple[list[dict], list[dict]]:
    from tests.unit.analysis.synthetic import curve_rows

    curve = curve_rows("t1", n_labeled=[10 * (r + 1) for r in range(rounds + 1)],
                       balanced_accuracy=[0.5 + r / 10 for r in range(rounds + 1)])
    selections = [{"trial_id": "t1", "round": r, "order": 10 * r + i, "pool_index": 10 * r + i, "true_label": 1,
                   "observed_label": 1, "annotator": 0, "answered_at": 0.0} for r in range(rounds + 1) for i in range(10)]
    return curve, selections


class _Config:
    class dataset:
        name = "d-k2"

    strategy, trial_id, rounds = "direct", "t1", 3


def test_trial_writer_on_s3_reads_back_at_every_round_and_when_finished(bucket):
    uri, fs, name = bucket
    curve, selections = _rows()
    with TrialWriter(uri, dataset="d-k2", strategy="direct", trial_id="t1", metadata={"direct_ray.trial": {}}) as w:
        for r in range(4):
            w.submit([row for row in curve if row["round"] <= r], [row for row in selections if row["round"] <= r])
            w.flush()
            assert read_table(uri, CURVES)["round"].to_pylist() == list(range(r + 1))
            assert read_table(uri, SELECTIONS).num_rows == 10 * (r + 1)
            assert not trial_complete(uri, _Config)
        w.finish(curve, selections)
    assert trial_complete(uri, _Config)
    keys = sorted(info.path for info in fs.get_file_info(pafs.FileSelector(name, recursive=True))
                  if info.type == pafs.FileType.File)
    assert keys == [f"{name}/studies/synthetic/curves/dataset=d-k2/strategy=direct/t1.parquet",
                    f"{name}/studies/synthetic/selections/dataset=d-k2/strategy=direct/t1.parquet"]
    table = read_table(uri, SELECTIONS)
    assert table["order"].to_pylist() == list(range(40)) and set(table["strategy"].to_pylist()) == {"direct"}


def test_read_and_report_from_s3_match_a_local_copy(bucket, tmp_path):
    uri, fs, name = bucket
    realistic_study(uri, strategies=("direct", "random"), b_parallels=(1,), rounds=3)
    local = realistic_study(tmp_path / "local", strategies=("direct", "random"), b_parallels=(1,), rounds=3)
    assert read_table(uri).equals(read_table(local))
    assert read_study_metadata(uri) == read_study_metadata(local)

    # one object cut short: left out by a lenient read, named with its s3:// URI
    victim = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(f"{name}/studies", recursive=True))
                    if i.path.endswith(".parquet"))[0]
    data = fs.open_input_file(victim).read()
    with fs.open_output_stream(victim) as out:
        out.write(data[: len(data) // 2])
    results = read_results(uri, skip_unreadable=True)
    assert [s.path for s in results.skipped] == [f"s3://{victim}"]
    assert results.table.num_rows == read_table(local).num_rows - pq.read_metadata(
        tmp_path / "local" / victim.split("/studies/synthetic/", 1)[1]).num_rows

    env = {**CREDENTIALS, "PATH": "", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "analysis", uri, "--no-figures"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "report: report-synthetic/report.md"
    assert done.stderr.strip() == f"warning: left out s3://{victim}: " + results.skipped[0].reason
    text = (tmp_path / "report-synthetic" / "report.md").read_text()
    assert f"Read from `{uri}`" in text and f"- `s3://{victim}`: not a readable Parquet file" in text
    assert "- 7 trials with results, of 8 planned by the study" in text
