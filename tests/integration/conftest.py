"""Integration fixtures: one local Ray session serves every test that needs one (starting one costs ~5 s)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """A local 2-CPU Ray session shared by the whole test run (never `ray stop`)."""
    import ray

    from direct_ray.runtime.session import start_local_ray

    if not ray.is_initialized():
        start_local_ray(2, quiet=True)
    yield ray
    ray.shutdown()
