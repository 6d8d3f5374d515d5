"""Observing a cluster through the drivers of a `--driver` mode, before anything is planned.

One driver per mode observes (DESIGN "Desired state, observed state"): `sim` its simulated
cloud, `testbed` the ansible driver (one ansible-runner call for all hosts), `cloud` the compute
driver (Nova's API through openstacksdk). What a driver cannot see it names in `unobservable`.
"""

from __future__ import annotations

from pathlib import Path

from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import ObservedState

OBSERVERS = {"sim": "sim", "testbed": "ansible", "cloud": "compute"}


def observe_cluster(
    mode: str, cluster: Cluster, state_dir: Path, sim_scale: float | None = None
) -> ObservedState:
    """What `mode`'s observing driver sees of `cluster` now. Raises UsageError for an unknown
    mode, DriverNotFound when the driver cannot load, DriverError when it cannot observe."""
    from lifecycle.execution.runner import Setup

    router = Setup(state_dir, mode, sim_scale=sim_scale).router()  # UsageError: unknown mode
    try:
        return router.for_step_name(OBSERVERS[mode]).observe(cluster)
    finally:
        router.close()
