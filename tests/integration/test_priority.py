"""CPU priority: coordination actors yield the cores to training (see direct_ray.runtime.priority)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from direct_ray.noise import NoiseConfig
from direct_ray.runtime.annotators import Annotator, AnnotatorActor, Oracle
from direct_ray.pool_state import PoolState
from direct_ray.runtime.pool import Pool, PoolActor
from direct_ray.runtime.priority import LOWEST_NICENESS
from direct_ray.runtime.selection import SelectionActor, Selector

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is read from /proc")


def _thread_niceness() -> set[int]:
    """The niceness of every thread of the calling process."""
    return {os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir("/proc/self/task")}


@linux_only
def test_yield_to_training_lowers_every_thread_and_later_threads_inherit_it():
    # In a child process: a lowered priority cannot be raised back without privileges.
    script = textwrap.dedent(
        """
        import os, threading
        from direct_ray.runtime.priority import yield_to_training
        stop = threading.Event()
        early = threading.Thread(target=stop.wait); early.start()  # exists before the call
        def niceness():
            return sorted({os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")})
        before = niceness()
        yield_to_training()
        late = threading.Thread(target=stop.wait); late.start()  # started after the call
        print(before, niceness(), len(os.listdir("/proc/self/task")))
        stop.set()
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("]")
    before, after, threads = out[0] + "]", out[1].strip() + "]", int(out[2])
    assert before == f"[{os.getpriority(os.PRIO_PROCESS, 0)}]"
    assert after == f"[{LOWEST_NICENESS}]"
    assert threads == 3


def test_the_plain_classes_leave_the_callers_priority_alone():
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    pool = Pool(PoolState.empty(10, 2))
    pool.record(0, np.array([1, 2]), np.array([0, 1]), np.array([0, 1]), np.array([0, 0]))
    pool.reset(PoolState.empty(10, 2))
    oracle = Oracle(NoiseConfig(), num_classes=2, seed=0)
    selector = Selector("random", 1, [Annotator(0)], 0, [None], oracle)
    selector.reset("random", 1, [Annotator(0)], 1, [None], oracle)
    assert os.getpriority(os.PRIO_PROCESS, 0) == niceness


@linux_only
def test_coordination_actors_run_at_the_lowest_priority_and_training_tasks_do_not(ray_session):
    ray = ray_session
    truth = [ray.put(np.arange(50) % 2)]
    oracle = Oracle(NoiseConfig(), num_classes=2, seed=0)
    annotators = [AnnotatorActor.remote(i) for i in range(2)]
    selector = SelectionActor.remote("random", 2, annotators, 0, truth, oracle)
    pool = PoolActor.remote(PoolState.empty(50, 2))
    actors = [*annotators, selector, pool]
    try:
        ray.get([pool.reset.remote(PoolState.empty(50, 2)), selector.reset.remote("random", 2, annotators, 1, truth, oracle)])
        seen = ray.get([actor.__ray_call__.remote(lambda self: _thread_niceness()) for actor in actors])
        assert seen == [{LOWEST_NICENESS}] * len(actors)
        # The yielding wrapper keeps the classes' names (what Ray's dashboard and logs show).
        names = ray.get([actor.__ray_call__.remote(lambda self: type(self).__name__) for actor in actors])
        assert names == ["Annotator", "Annotator", "Selector", "Pool"]
        # The training tasks run at the default priority in a local session (LOCAL_RAY_CONFIG).
        task = ray.remote(num_cpus=1)(lambda: os.getpriority(os.PRIO_PROCESS, 0))
        assert ray.get(task.remote()) == 0
    finally:
        for actor in actors:
            ray.kill(actor)


@linux_only
def test_the_tune_trainable_yields_before_it_runs_the_trial(ray_session):
    """``tune_trial`` coordinates only: its process goes to the lowest priority first thing.

    Run in a throwaway actor (its process ends with it, so no task worker is left at nice 19);
    the trial config is empty, so the trainable stops right after yielding.
    """
    ray = ray_session

    @ray.remote(num_cpus=0)
    class Host:
        def run_trainable(self):
            from direct_ray.runtime.trainable import tune_trial

            before = _thread_niceness()
            try:
                tune_trial({"trial": {}, "context": {}})
            except Exception as err:  # the empty trial config is refused after the yield
                failure = type(err).__name__
            else:
                failure = None
            return before, _thread_niceness(), failure

    host = Host.remote()
    try:
        before, after, failure = ray.get(host.run_trainable.remote())
    finally:
        ray.kill(host)
    assert LOWEST_NICENESS not in before
    assert after == {LOWEST_NICENESS}
    assert failure is not None
