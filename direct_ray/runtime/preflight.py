"""Checks a sweep runs before any trial starts, so a study that can never run says why at once.

* :func:`output_problems`: every alive node writes and reads the output (a tiny probe task
  per node). A local ``--output`` on a cluster whose nodes have their own disks fails here
  instead of at every trial's first report.
* :func:`resource_problems`: some node can host a trial's CPUs and GPUs. On a session this
  process started (no autoscaler) a trial that no node can host would wait forever.
* :func:`dataset_problems`: the files of image datasets with ``download: false`` are there.

Each returns one line per problem, saying what is missing and what to do instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from direct_ray.results.layout import filesystem, is_uri, join
from direct_ray.runtime.team import trials_at_once

PROBE_DIR = ".probe"
PROBE_TIMEOUT_S = 120.0


def _write(path: str, text: str) -> None:
    fs, inner = filesystem(path)
    fs.create_dir(inner.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(inner) as f:
        f.write(text.encode())


def _read(path: str) -> str | None:
    fs, inner = filesystem(path)
    try:
        with fs.open_input_stream(inner) as f:
            return f.read().decode()
    except (FileNotFoundError, OSError):
        return None


def _probe(root: str, token: str, node: str) -> str | None:
    """On one node: read the driver's token under ``root``, write this node's. None when both work."""
    seen = _read(join(root, PROBE_DIR, token, "driver"))
    if seen != token:
        return "cannot read what the driver wrote there"
    try:
        _write(join(root, PROBE_DIR, token, node), token)
    except OSError as err:
        return f"cannot write there ({err})"
    return None


_probe_task = ray.remote(num_cpus=0, max_retries=0)(_probe)


def alive_nodes() -> list[dict]:
    return [node for node in ray.nodes() if node.get("Alive")]


def output_problems(root: str) -> list[str]:
    """One line per alive node that cannot both read and write ``root`` (none on a single node)."""
    nodes = alive_nodes()
    if len(nodes) < 2:
        return []  # the driver's own node: it writes sweep.json there itself
    token = uuid.uuid4().hex
    _write(join(root, PROBE_DIR, token, "driver"), token)
    try:
        refs = {
            node["NodeID"]: _probe_task.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(root, token, node["NodeID"])
            for node in nodes
        }
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        problems = []
        for node in nodes:
            ref = refs[node["NodeID"]]
            error = ray.get(ref) if ref in ready else f"did not answer within {PROBE_TIMEOUT_S:.0f} s"
            if error is None and _read(join(root, PROBE_DIR, token, node["NodeID"])) != token:
                error = "writes where the driver cannot read it"
            if error is not None:
                problems.append(f"node {node['NodeManagerAddress']} ({node['NodeID'][:8]}) {error}")
    finally:
        fs, inner = filesystem(join(root, PROBE_DIR))
        try:
            fs.delete_dir(inner)
        except OSError:
            pass
    if problems and not is_uri(root):
        fix = ("every node must see the output: pass --output as a URI every node can write (s3://bucket/prefix, "
               "gs://...) or a shared filesystem mounted at the same path on every node")
        return [f"--output {root}: {p}; {fix}" for p in problems]
    return [f"--output {root}: {p}; check that node's credentials for this storage" for p in problems]


def resource_problems(cpus: float, gpus: float, autoscaling: bool) -> list[str]:
    """Lines saying that no alive node can host a trial's ``cpus`` and ``gpus`` (empty if one can).

    With ``autoscaling`` the cluster may still add such a node: the line is a note then.
    """
    need = {"CPU": cpus, "GPU": gpus}
    nodes = alive_nodes()
    if any(all(node["Resources"].get(res, 0.0) >= amount for res, amount in need.items() if amount) for node in nodes):
        return []
    have = ", ".join(
        f"{int(node['Resources'].get('CPU', 0))} CPU / {node['Resources'].get('GPU', 0):g} GPU" for node in nodes
    )
    want = f"{cpus:g} CPU" + (f" and {gpus:g} GPU" if gpus else "")
    if autoscaling:
        return [f"no node can host a trial ({want}) yet (nodes: {have}): trials wait until the autoscaler adds one"]
    fix = "set resources.gpus_per_trial: 0 to train on the CPU" if gpus else "lower resources.cpus_per_trial"
    return [f"no node can ever host a trial: each needs {want} on one node, the nodes have {have}; {fix}, "
            "or run on a cluster that has them (--address)"]


def dataset_problems(specs) -> list[str]:
    """Lines for image datasets with ``download: false`` whose files are missing on this machine."""
    from pathlib import Path

    problems = []
    for spec in specs:
        if spec.kind in ("cifar10", "cifar100", "svhn") and not spec.download:
            from direct_ray.data.torchvision_sets import expected_files

            files, source = expected_files(spec.kind, Path(spec.root).expanduser())
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                problems.append(f"dataset {spec.name}: download is off and {len(missing)} file(s) are missing under "
                                f"{spec.root} (first: {missing[0]}); get them from {source} or set download: true")
    return problems


class PreflightError(RuntimeError):
    """The sweep can never run as asked (no node fits a trial, files or output unreachable); one line per problem."""


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep would run on the current cluster, and what stands in its way."""

    study: Any  # the StudyConfig
    output: str
    trials: int
    resources: dict  # what one trial reserves
    at_once: int  # trials that fit on the cluster now
    problems: list[str] = field(default_factory=list)  # the sweep cannot run
    notes: list[str] = field(default_factory=list)  # worth knowing, not blocking

    def describe(self) -> str:
        """The text of ``--dry-run``."""
        trials = self.study.trials()
        lines = [
            f"study {self.study.name!r}: {self.trials} trials, results -> {self.output}",
            f"  each trial reserves {', '.join(f'{v:g} {k}' for k, v in self.resources.items())}; "
            f"{self.at_once} can run at once on this cluster now",
            *(f"  {t.trial_id}" for t in trials[:10]),
            *([f"  ... and {len(trials) - 10} more"] if len(trials) > 10 else []),
            *(f"note: {note}" for note in self.notes),
            *(f"problem: {problem}" for problem in self.problems),
            "no problem found" if not self.problems else f"{len(self.problems)} problem(s): the sweep would not start",
        ]
        return "\n".join(lines)


def plan(study, output: str, started_here: bool) -> SweepPlan:
    """Check the study against the connected cluster (resources, dataset files, output on every node)."""
    resources = {"CPU": study.resources.cpus_per_trial, "GPU": study.resources.gpus_per_trial}
    fit = resource_problems(resources["CPU"], resources["GPU"], autoscaling=not started_here)
    problems = [] if not started_here else fit
    problems += dataset_problems(study.datasets)
    problems += output_problems(output)
    n_trials = len(study.trials())
    return SweepPlan(study, output, n_trials, {k: v for k, v in resources.items() if v},
                     trials_at_once(study, n_trials, ray.cluster_resources()) if not fit else 0,
                     problems, fit if not started_here else [])
