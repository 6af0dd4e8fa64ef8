"""The local session's settings: every session starts from the same configuration."""

from __future__ import annotations

import copy

import pytest

import ray

from direct_ray.runtime import session


def test_each_session_gets_a_fresh_copy_of_the_config(monkeypatch):
    """Ray writes its session's spill directory into the ``_system_config`` it is given
    (seen with Ray 2.60): the module's config must come out of a session unchanged."""
    before = copy.deepcopy(session.LOCAL_RAY_CONFIG)
    seen = []

    def fake_init(**kwargs):
        config = kwargs["_system_config"]
        seen.append(dict(config))
        config["object_spilling_config"] = '{"type": "filesystem", "params": {"directory_path": "/tmp/ray/session_1"}}'

    monkeypatch.setattr(ray, "init", fake_init)
    session.start_local_ray(2, quiet=True)
    session.start_local_ray(2, quiet=True)
    assert session.LOCAL_RAY_CONFIG == before
    assert seen == [before, before]  # the second session does not inherit the first one's directory


@pytest.mark.parametrize(
    ("address", "env", "running", "num_cpus", "expected"),
    [
        ("10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379", None, ["10.0.0.1:6379"]),  # --address first
        (None, "10.0.0.2:6379", "10.0.0.3:6379", None, ["10.0.0.2:6379"]),  # then RAY_ADDRESS
        (None, None, "10.0.0.3:6379", None, ["10.0.0.3:6379"]),  # then a cluster running here
        (None, None, None, None, ["local"]),  # then a session of its own
        (None, None, "10.0.0.3:6379", 2, ["local"]),  # asking for CPUs means a session of its own
        (None, None, "stale", None, ["stale", "local"]),  # a record left by a stopped cluster
    ],
)
def test_connect_joins_in_rays_order_and_passes_settings_only_to_its_own_session(
    monkeypatch, address, env, running, num_cpus, expected
):
    calls = []

    def fake_init(address=None, **kwargs):
        calls.append((address, kwargs))
        if address == "stale":
            raise ConnectionError("no cluster there")

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(session, "running_cluster", lambda: running)
    if env is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", env)
    started = session.connect(address, num_cpus)
    assert [a for a, _ in calls] == expected
    assert started == (expected[-1] == "local")
    for joined, kwargs in calls:
        assert ("_system_config" in kwargs) == (joined == "local")
