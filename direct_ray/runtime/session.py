"""A local Ray session set up for this package's work (sweeps, trials, benchmarks, tests).

On a cluster the session is the cluster's (``ray start`` in ``cluster.yaml``); this only
concerns the session a process starts for itself.
"""

from __future__ import annotations

import ray

LOCAL_RAY_CONFIG = {
    # Every trial starts a few zero-CPU actors (pool, selection, annotators). Ray counts them
    # against its idle-worker soft limit (the CPU count by default) and then kills idle task
    # workers, so each trial's training task would start a fresh worker and import torch
    # again (seconds). A higher limit keeps those warm workers alive.
    "num_workers_soft_limit": 64,
    # Ray starts its workers at nice 15, below its own daemons and every other program.
    # Here they run at the default priority, so the training tasks get the cores first and
    # the coordination actors (nice 19, see direct_ray.runtime.priority) what is left.
    "worker_niceness": 0,
}


def start_local_ray(num_cpus: int | None = None, *, quiet: bool = False) -> None:
    """``ray.init`` a local session of ``num_cpus`` CPUs (default: all) with :data:`LOCAL_RAY_CONFIG`.

    No dashboard, no worker logs on the driver; ``quiet`` also leaves Python's logging alone
    (benchmarks and tests print their own output).

    Ray writes the session's own settings (its object-spilling directory) into the
    ``_system_config`` it is given, so each session gets a copy: a later session in this
    process would otherwise spill into the first one's directory (and warn about it).
    """
    options = {"configure_logging": False} if quiet else {}
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _system_config=dict(LOCAL_RAY_CONFIG), **options)
