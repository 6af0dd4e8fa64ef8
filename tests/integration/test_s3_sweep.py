"""A whole sweep on S3 (a local S3-compatible server): results, Tune's state, --resume and the analysis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pyarrow.fs as pafs
import pytest
import yaml

from direct_ray.results.read import read_table
from tests.paths import ROOT
from tests.studies import grid, study

moto_server = pytest.importorskip("moto.server")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def s3_output(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True).create_dir("bucket")
    yield f"s3://bucket/studies/tiny?endpoint_override=127.0.0.1:{port}&scheme=http"
    server.stop()


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=400,
                          env={**os.environ})


def test_sweep_resume_and_analysis_on_an_s3_uri(s3_output, tmp_path, starts_ray):
    tiny = grid(seed=[0], b_parallel=[2], noise=[{"model": "uniform", "rate": 0.1}])
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study(name="tiny", rounds=2, grid=tiny)))
    sweep = ["-m", "direct_ray.sweep", str(tmp_path / "study.yaml"), "--output", s3_output, "--num-cpus", "2"]
    done = run(*sweep, "--no-report")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = read_table(s3_output).to_pylist()
    assert sorted((r["strategy"], r["round"]) for r in rows) == [(s, r) for s in ("direct", "random") for r in range(3)]
    again = run(*sweep, "--resume", "--no-report")  # nothing left to run: the same rows, untouched
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert read_table(s3_output).to_pylist() == rows
    report = run("-m", "analysis", s3_output, "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Learning curves" in (tmp_path / "report" / "report.md").read_text()
