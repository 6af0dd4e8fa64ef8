"""Shared fixtures. One Ray session serves every test that needs Ray (starting one costs ~5 s)."""

from __future__ import annotations

import pytest

from direct_ray.sweep import LOCAL_RAY_CONFIG


@pytest.fixture(scope="session")
def ray_session():
    """A local 2-CPU Ray session shared by the whole test run (never `ray stop`)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _system_config=LOCAL_RAY_CONFIG,
        )
    yield ray
    ray.shutdown()
