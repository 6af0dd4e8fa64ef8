"""How a process gets its Ray session: join a cluster, or start a local session of its own.

:func:`connect` follows the order Ray's own tools use: an explicit address, then
``RAY_ADDRESS`` (what ``ray job submit`` and a cluster head's shell provide), then a Ray
cluster already running on this machine (``ray start``), and only then a new local session.
Settings for the session (:data:`LOCAL_RAY_CONFIG`) are passed only when this process starts
it: a running cluster has its own, and Ray refuses them when joining.
"""

from __future__ import annotations

import logging
import os

import ray

log = logging.getLogger(__name__)

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
    # address="local": always a new session, never one that happens to run on this machine.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             _system_config=dict(LOCAL_RAY_CONFIG), **options)


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join a Ray cluster or start a local session; returns True when this process started it.

    ``address`` first, then ``RAY_ADDRESS``, then a cluster running on this machine, then a
    new local session of ``num_cpus`` CPUs. Asking for ``num_cpus`` means a local session of
    that size, so it skips the search for a running cluster.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        log.info("joined the Ray cluster at %s", address)
        return False
    running = running_cluster() if num_cpus is None else None
    if running is not None:
        try:
            ray.init(address=running, include_dashboard=False, log_to_driver=False)
        except ConnectionError:
            pass  # a record left by a cluster that has stopped
        else:
            log.info("joined the Ray cluster running on this machine at %s (pass --num-cpus N for a session "
                     "of its own)", running)
            return False
    start_local_ray(num_cpus)
    return True


def running_cluster() -> str | None:
    """The address of the cluster last started on this machine with ``ray start``, if any.

    This is what ``ray.init()`` itself joins: Ray records the address of each ``ray start``.
    Sessions that other processes started with ``ray.init()`` are not clusters to join (they
    end with their process), so they are not considered.
    """
    from ray._private.services import find_bootstrap_address  # Ray's reader of that record

    return find_bootstrap_address(None)
