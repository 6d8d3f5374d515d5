"""What the drivers know of the site a cluster runs on beyond its inventory: the site facts.

The production drivers (ansible, checks) never look the site up themselves; whoever builds them
hands them a `Site`, a function from the cluster to its `SiteFacts`. The default is a real cloud:
every service runs for real, Ansible reaches the hosts as the inventory says, the playbooks get no
site variables and there is no stand-in daemon to ask over HTTP. The local testbed builds its own
facts from its state and testbed.yaml (lifecycle.testbed.driver_site).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lifecycle.model.cluster import Cluster


class StatusProbe(Protocol):
    """A stand-in daemon's JSON status: `service` on `node` asked at `path` (GET, `timeout`
    seconds), None when it does not answer. Shape: lifecycle.testbed.client.service_status."""

    def __call__(
        self, cluster: Cluster, node: str, service: str, timeout: float = 1.0, path: str = "/"
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class SshAccess:
    """How Ansible logs in to every host of the site (one key, one known_hosts file, checked
    strictly), when the inventory's own connection variables do not say."""

    user: str
    private_key: str  # path of the private key file
    known_hosts: str  # path of the known_hosts file the hosts' keys are checked against
    python: str = "/usr/bin/python3"  # the hosts' interpreter

    def inventory_vars(self) -> dict[str, str]:
        """The `all` group's variables that make Ansible use this access."""
        return {
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": self.private_key,
            "ansible_ssh_common_args": (
                f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes"
            ),
            "ansible_python_interpreter": self.python,
        }


@dataclass(frozen=True)
class SiteFacts:
    """The facts of one cluster's site. `real_services`: the services that run for real (None:
    all of them, a real cloud; the others are stand-in daemons asked through `status`); `roles`:
    service -> the playbook role that runs it for real (absent: the role of the service's name);
    `ssh`: the site-wide login (None: the inventory's own); `host_vars`: per host, variables added
    to its inventory entry; `extravars`: the site's own playbook variables (a step's parameters
    still win); `status`: how to ask a stand-in daemon (None: there is none to ask)."""

    real_services: tuple[str, ...] | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    ssh: SshAccess | None = None
    host_vars: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extravars: Mapping[str, Any] = field(default_factory=dict)
    status: StatusProbe | None = None

    def is_real(self, service: str) -> bool:
        return self.real_services is None or service in self.real_services

    def real_of(self, cluster: Cluster) -> tuple[str, ...]:
        """The services that run for real: in the site's order, else the cluster's, sorted."""
        if self.real_services is None:
            return tuple(sorted(cluster.members))
        return self.real_services

    def ask(
        self, cluster: Cluster, node: str, service: str, timeout: float = 1.0, path: str = "/"
    ) -> dict[str, Any] | None:
        """The stand-in's status through `status`; None when there is no way to ask."""
        if self.status is None:
            return None
        return self.status(cluster, node, service, timeout, path)


Site = Callable[[Cluster], SiteFacts]


def real_cloud(cluster: Cluster) -> SiteFacts:
    """The default site: a real cloud, nothing beyond the inventory."""
    return SiteFacts()
