"""An output the sweep cannot use is one clear line (exit 2) before anything runs, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.paths import ROOT


def sweep(*args: str, wrap: str = "") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "direct_ray.sweep", "--no-report", "--num-cpus", "1", *args]
    if wrap:  # run inside a mount namespace prepared by the shell snippet `wrap`
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", wrap + ' && exec "$@"', "sh", *command]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_output_that_is_a_file(tmp_path):
    (tmp_path / "results").write_text("not a directory")
    assert "is a file" in one_error_line(sweep("--output", str(tmp_path / "results")))


needs_mounts = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                  reason="needs root and unshare to mount a read-only or full filesystem")


@needs_mounts
def test_read_only_output(tmp_path):
    line = one_error_line(sweep("--output", str(tmp_path / "out"), wrap=f"mount -t tmpfs -o ro none {tmp_path}"))
    assert "cannot write there" in line and "Read-only" in line


@needs_mounts
def test_full_output(tmp_path):
    fill = f"mount -t tmpfs -o size=64k none {tmp_path} && (dd if=/dev/zero of={tmp_path}/fill bs=4k 2>/dev/null; true)"
    line = one_error_line(sweep("--output", str(tmp_path / "out"), wrap=fill))
    assert "cannot write there" in line and "No space left" in line


def test_unreachable_uri():
    line = one_error_line(sweep("--output", "s3://bucket/prefix?endpoint_override=127.0.0.1:9&scheme=http"))
    assert "cannot write there" in line
