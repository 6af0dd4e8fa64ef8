"""CPU priority: the coordination processes yield the cores to the training tasks.

Only a trial's training task holds the CPU (or GPU) the trial reserved. The pool,
selection and annotator actors and the Tune trainable reserve nothing and mostly wait, yet
each wakes up a few hundred times a second (Ray's worker loop checks for signals every
10 ms, its RPC threads poll, every label is an actor call). On a machine whose cores are all
training, each wake-up preempts a training task. Measured on 2 CPU cores with two trials
at once (``python -m direct_ray.benchmarks.sweep --features 20000``): ~600 preemptions per
second per training worker, against ~30 when one trial runs alone, and the training tasks
took 19-51% longer for the same work. With this module: ~440 per second.

So every coordination process runs at the lowest priority (nice 19): it still gets any
core that training leaves idle, and it is what waits when the cores are contended. (Ray
starts its workers at nice 15; a local session of this package starts them at nice 0, see
:data:`direct_ray.runtime.session.LOCAL_RAY_CONFIG`, so training also outranks Ray's own idle
workers.) Lowering a priority needs no privileges, so this works for any user.
"""

from __future__ import annotations

import os

import ray

LOWEST_NICENESS = 19


def yield_to_training() -> None:
    """Put every thread of this process at nice 19 (on Linux niceness is per thread).

    Threads started later inherit it. No-op where the OS has no niceness (Windows); a
    thread that ends while this runs is skipped.
    """
    if not hasattr(os, "setpriority"):
        return
    task_dir = "/proc/self/task"
    threads = [int(tid) for tid in os.listdir(task_dir)] if os.path.isdir(task_dir) else [0]
    for thread in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, LOWEST_NICENESS)
        except (ProcessLookupError, PermissionError):
            pass


def coordination_actor(cls: type, **options):
    """``cls`` as a Ray actor that reserves no CPU and runs at the lowest priority.

    The plain class stays usable in-process (tests, notebooks) without touching the
    caller's priority: only the actor's own process yields, when the actor is created.
    """

    class Coordinator(cls):
        def __init__(self, *args, **kwargs) -> None:
            yield_to_training()
            super().__init__(*args, **kwargs)

    Coordinator.__name__ = cls.__name__
    Coordinator.__qualname__ = cls.__qualname__
    Coordinator.__doc__ = cls.__doc__
    return ray.remote(num_cpus=0, **options)(Coordinator)
