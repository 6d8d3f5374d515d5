"""The domain, as frozen dataclasses: what the operator wants (*Spec) and what the catalog knows."""

from lifecycle.model.cluster import (
    BmcSpec,
    Cluster,
    Evacuate,
    MaxUnavailable,
    NodeSpec,
    Policies,
    RoleSpec,
)
from lifecycle.model.release import Release, ReleaseTrain
from lifecycle.model.service import Quorum, ServiceSpec, Tier

__all__ = [
    "BmcSpec",
    "Cluster",
    "Evacuate",
    "MaxUnavailable",
    "NodeSpec",
    "Policies",
    "Quorum",
    "Release",
    "ReleaseTrain",
    "RoleSpec",
    "ServiceSpec",
    "Tier",
]
