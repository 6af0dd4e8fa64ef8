"""The local session's settings: every session starts from the same configuration."""

from __future__ import annotations

import copy

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
