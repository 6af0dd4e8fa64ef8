"""cluster.yaml is a valid Ray autoscaler config for a GPU cluster that installs this project.

It is checked with Ray's own JSON schema (shipped inside the ray package) and with the same
preparation and validation that `ray up` runs before it contacts the cloud provider
(``prepare_config`` fills in the provider's defaults, ``validate_config`` checks the result).
Nothing here starts Ray or touches the network.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.paths import ROOT as REPO
CLUSTER_YAML = REPO / "cluster.yaml"
RAY_SCHEMA = Path(ray.autoscaler.__file__).parent / "ray-schema.json"


@pytest.fixture()
def config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture()
def prepared(config) -> dict:
    return prepare_config(copy.deepcopy(config))


def _worker_types(cfg: dict) -> dict:
    return {name: t for name, t in cfg["available_node_types"].items() if name != cfg["head_node_type"]}


def test_matches_rays_json_schema(config):
    jsonschema.validate(config, json.loads(RAY_SCHEMA.read_text()))


def test_passes_the_validation_ray_up_runs(prepared):
    validate_config(prepared)


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        pytest.param(lambda c: c.update(min_nodes=1), "'min_nodes' was unexpected", id="unknown top-level key"),
        pytest.param(lambda c: c["available_node_types"]["gpu_worker"]["resources"].update(GPU=0.5),
                     "is not of type 'integer'", id="fractional node resource"),
        pytest.param(lambda c: c["available_node_types"]["gpu_worker"].pop("node_config"),
                     "'node_config' is a required property", id="node type without node_config"),
        pytest.param(lambda c: c.update(head_node_type="no_such_type"),
                     "must be one of `available_node_types`", id="unknown head type"),
        pytest.param(lambda c: c["available_node_types"]["gpu_worker"].update(min_workers=99),
                     "smaller than the sum of `min_workers`", id="min_workers above max_workers"),
    ],
)
def test_validation_rejects_a_broken_config(config, break_it, message):
    """The checks above can fail: each single corruption of the real file is caught."""
    break_it(config)
    with pytest.raises((jsonschema.ValidationError, ValueError), match=re.escape(message)):
        validate_config(prepare_config(config))


def test_head_is_a_cpu_node(config):
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0


def test_gpu_worker_scales_up_from_zero(config, prepared):
    gpu_types = {n: t for n, t in _worker_types(config).items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "no worker type advertises a GPU"
    for name, node_type in gpu_types.items():
        assert node_type["min_workers"] == 0, name
        assert node_type["resources"]["CPU"] >= 1, name
        # No per-type cap: the global max_workers (and `ray up --max-workers N`) is the limit.
        assert prepared["available_node_types"][name]["max_workers"] == prepared["max_workers"] >= 1


def test_no_docker(config):
    assert not config.get("docker")


def test_every_node_runs_an_image_with_a_recent_glibc_and_driver(config):
    """Ray's default AMI (Ubuntu 18.04, glibc 2.27) cannot run torch 2.14: every node names a
    Ubuntu 22.04 deep learning image (resolved by EC2 from AWS's public SSM parameter)."""
    for name, node_type in config["available_node_types"].items():
        image = node_type["node_config"].get("ImageId", "")
        assert image.startswith("resolve:ssm:/aws/service/deeplearning/") and "ubuntu-22.04" in image, name


def test_workers_can_write_the_s3_output(config):
    for name, node_type in _worker_types(config).items():
        assert node_type["node_config"]["IamInstanceProfile"]["Name"] == "direct-ray-worker", name
    assert "direct-ray-worker" in (REPO / "docs" / "cluster.md").read_text()


def test_setup_syncs_and_installs_this_project(config):
    remote = [r for r, local in config["file_mounts"].items() if Path(local) == Path(".")]
    assert remote, "the working tree ('.') is not in file_mounts"
    install = [c for c in config["setup_commands"] if "pip install" in c and f"-e {remote[0]}" in c]
    assert install, "no setup command installs the synced project in editable mode"


def test_cluster_ray_version_matches_the_installed_one(config):
    """`ray up` needs the same Ray on the cluster as on the machine that runs it."""
    pins = {v for c in config["setup_commands"] for v in re.findall(r"ray\[[\w,]*\]==([\w.]+)", c)}
    assert pins == {ray.__version__}


def test_start_commands_use_the_standard_ports(config):
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    assert "--head" in head and "--port=6379" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "--address=$RAY_HEAD_IP:6379" in worker
    assert "--object-manager-port=8076" in head and "--object-manager-port=8076" in worker


def test_inline_python_in_commands_compiles(prepared):
    """YAML folding must leave `python -c "..."` commands as valid Python."""
    commands = [c for key in ("setup_commands", "head_setup_commands", "worker_setup_commands")
                for c in prepared.get(key, [])]
    assert any("CIFAR10" in c for c in prepared["head_setup_commands"])  # the driver loads the datasets
    snippets = []
    for command in commands:
        args = shlex.split(command)
        snippets += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-c" and "python" in args[i - 1]]
    assert snippets, "expected the dataset prefetch command"
    for code in snippets:
        compile(code, "<setup command>", "exec")


def test_rsync_excludes_keep_the_package(config):
    """An exclude like a bare `results` would silently drop direct_ray/results/ from the sync."""
    package_paths = [p.relative_to(REPO).as_posix() for p in (REPO / "direct_ray").rglob("*.py")]
    assert package_paths
    for pattern in config.get("rsync_exclude", []):
        for rel in package_paths:
            if "/" in pattern.strip("/"):
                assert not fnmatch.fnmatch(rel, pattern.lstrip("/")), (pattern, rel)
            else:
                assert not any(fnmatch.fnmatch(part, pattern.strip("/")) for part in rel.split("/")), (pattern, rel)


def test_explains_shared_storage_and_the_commands():
    text = CLUSTER_YAML.read_text()
    for phrase in ("--output s3://", "ray up cluster.yaml", "ray attach cluster.yaml",
                   "ray submit cluster.yaml", "ray down cluster.yaml"):
        assert phrase in text, phrase
