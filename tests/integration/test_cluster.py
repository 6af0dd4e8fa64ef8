"""The sweep on a real multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``).

Shaped like ``cluster.yaml``: a head with 0 CPUs (the driver, Tune's controller and the
annotator teams run there, no trial does) and worker nodes with 1 CPU each. The sweeps run
in subprocesses that join the cluster, as ``ray job submit`` or a shell on the head would.
Every sweep must give exactly the curves of the same study run in a local session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import yaml

from direct_ray.cli import main
from tests.paths import ROOT
from tests.studies import grid, study

# Columns that depend on the computation only (not on wall-clock time, the sweep id or the device).
COMPARED = ["trial_id", "round", "n_labeled", "n_labeled_per_class", "n_noisy_labels", "n_minority_labels",
            "balanced_accuracy", "accuracy", "per_class_accuracy"]


def write_study(path: Path) -> Path:
    """4 trials (direct and random x 2 seeds), 5 rounds, b_parallel 2, 10% noise."""
    tiny = grid(seed=[0, 1], b_parallel=[2], noise=[{"model": "uniform", "rate": 0.1}])
    path.write_text(yaml.safe_dump(study(name="cluster", rounds=5, grid=tiny, max_failures=3)))
    return path


def rows(output: Path) -> list[tuple]:
    table = ds.dataset(output / "curves", partitioning="hive", format="parquet").to_table()
    return sorted(tuple(str(row[c]) for c in COMPARED) for row in table.select(COMPARED).to_pylist())


@pytest.fixture(scope="module")
def ray_cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def local_rows(ray_session, tmp_path_factory):
    """The study's curves from a local session, in this process: what every cluster run must give."""
    tmp = tmp_path_factory.mktemp("local")
    assert main([str(write_study(tmp / "study.yaml")), "--output", str(tmp / "out"), "--no-report"]) == 0
    return rows(tmp / "out")


def sweep(study_file: Path, output: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "direct_ray.sweep", str(study_file), "--output", str(output), "--no-report", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def finish(driver: subprocess.Popen, timeout: float = 420) -> tuple[int, str]:
    try:
        out, _ = driver.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(driver.pid, 9)
        out, _ = driver.communicate()
        pytest.fail(f"the sweep did not finish within {timeout} s:\n{out[-3000:]}")
    return driver.returncode, out


def test_a_worker_node_lost_mid_sweep_and_another_added(ray_cluster, local_rows, tmp_path):
    """Joined with --address; a worker node is removed while trials run on it and a new one joins."""
    output = tmp_path / "out"
    driver = sweep(write_study(tmp_path / "study.yaml"), output, "--address", ray_cluster.address)
    deadline = time.time() + 300
    while time.time() < deadline and not list(output.glob("curves/**/*.parquet")):
        assert driver.poll() is None, driver.communicate()[0][-3000:]
        time.sleep(0.5)
    victim = ray_cluster.worker_nodes and next(iter(ray_cluster.worker_nodes))
    ray_cluster.remove_node(victim)
    ray_cluster.add_node(num_cpus=1)
    code, out = finish(driver)
    assert code == 0, out[-3000:]
    assert "[trial failed]" in out  # the lost node took a running trial with it; Tune retried it
    assert rows(output) == local_rows


def test_only_ray_address_and_an_annotator_killed_five_times(ray_cluster, local_rows, tmp_path, inject_faults):
    """Joined through RAY_ADDRESS alone (as `ray job submit` provides it); annotator 0 of the
    sweep's team crashes five times over the sweep and is restarted each time."""
    markers = inject_faults(annotator_exit_on_query=[3, 3, 3, 3, 3])
    output = tmp_path / "out"
    code, out = finish(sweep(write_study(tmp_path / "study.yaml"), output, env={"RAY_ADDRESS": ray_cluster.address}))
    assert code == 0, out[-3000:]
    assert "joined the Ray cluster" in out
    assert len(list(markers.glob("annotator_exit_*.fired"))) == 5
    assert rows(output) == local_rows


def _alive_nodes(address: str) -> int:
    code = "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, timeout=60).stdout
    return int(out.strip() or 0)


def test_a_node_that_cannot_see_a_local_output_is_refused_before_any_trial(ray_cluster, tmp_path):
    """A worker with a disk of its own: started in a mount namespace where a fresh tmpfs hides
    the output directory, as a second machine would not have the driver's local path."""
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    before = _alive_nodes(ray_cluster.address)
    ray_cli = str(Path(sys.executable).parent / "ray")
    node = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount -t tmpfs none {hidden} && exec {ray_cli} start --address {ray_cluster.address} --num-cpus 1 --block"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while _alive_nodes(ray_cluster.address) <= before:
            assert time.time() < deadline and node.poll() is None, "the extra node did not join"
            time.sleep(1)
        output = hidden / "out"
        code, out = finish(sweep(write_study(tmp_path / "study.yaml"), output, "--address", ray_cluster.address))
    finally:
        os.killpg(node.pid, 15)  # the node's processes, and only them
        node.wait()
    assert code == 2, out[-3000:]
    problem = [line for line in out.splitlines() if line.startswith("error: --output")]
    assert len(problem) == 1 and "cannot read what the driver wrote there" in problem[0], out[-3000:]
    assert "s3://" in problem[0]  # it says what to use instead
    assert "trials done" not in out and not (output / "curves").exists() and not (output / "tune").exists()
