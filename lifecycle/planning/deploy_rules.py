"""The safety rules of a deploy plan, proved over its DAG (every order the engine may pick).

A deploy takes nothing down, so the upgrade rules (quorum margins, capacity, evacuation) have
nothing to count; what can go wrong is order. Rules (each violation names both steps):

- ``once``: every service instance of the cluster is deployed by exactly one `deploy-service`
  step (its `upgrades`);
- ``stores``: a clustered store (catalog quorum `majority`) is bootstrapped by one step on one
  member; each join has a DAG path from that bootstrap and from a health gate covering the
  member deployed before it (that member is `Synced` / running in the cluster: MariaDB's Galera
  docs start nodes one at a time, a joiner needs a synced donor), and no two joins of one store
  are unordered;
- ``database``: `db-create` -> `db-migrate` phase sync -> every deploy of that project's services,
  for each project of the catalog's `deploy_databases` the cluster runs; `keystone-keys` before
  keystone's start (Keystone's fernet docs: the key repository exists on every node before the
  service starts);
- ``order``: a service starts only after every instance of what it depends on (catalog
  depends_on) was started;
- ``gates``: the precheck before every step, the postcheck after every step.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

from lifecycle.catalog import Catalog
from lifecycle.model.cluster import Cluster
from lifecycle.model.service import Quorum, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.ordering import Order
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.timeline import Violation

DEPLOY_SERVICE = "deploy-service"


class DeployRules:
    """The deploy rules of one plan against one cluster and catalog."""

    def __init__(self, plan: Plan, cluster: Cluster, catalog: Catalog) -> None:
        self.plan, self.cluster, self.catalog = plan, cluster, catalog
        self.order = Order(plan)
        self.out: list[Violation] = []
        self.deploys: dict[str, list[Step]] = defaultdict(list)  # service -> its deploy steps
        for sid in self.order.order:
            step = plan.by_id[sid]
            if act.playbook(step) == DEPLOY_SERVICE:
                self.deploys[str(step.param("service"))].append(step)

    def check(self) -> list[Violation]:
        self.check_once()
        self.check_stores()
        self.check_databases()
        self.check_dependencies()
        self.check_gates()
        return self.out

    def fail(self, rule: str, message: str, step: str) -> None:
        self.out.append(Violation(self.plan.start_of.get(step, 0.0), rule, message, step))

    def before(self, a: str, b: str) -> bool:
        return self.order.before(a, b)

    # --- rules -------------------------------------------------------------------------------

    def check_once(self) -> None:
        seen: dict[str, str] = {}
        for steps in self.deploys.values():
            for step in steps:
                for text in step.upgrades:
                    if text in seen:
                        self.fail("once", f"{text} deployed twice: by {seen[text]} and", step.id)
                    seen.setdefault(text, step.id)
        for service, nodes in sorted(self.cluster.members.items()):
            missing = [f"{service}@{n}" for n in nodes if f"{service}@{n}" not in seen]
            if missing:
                self.fail("once", f"never deployed: {', '.join(missing)}", "")

    def check_stores(self) -> None:
        for service, steps in self.deploys.items():
            spec = self.catalog.services.get(service)
            if spec is None or spec.quorum is not Quorum.MAJORITY:
                continue
            boots = [s for s in steps if s.param("phase") == "bootstrap"]
            joins = [s for s in steps if s.param("phase") == "join"]
            if len(boots) != 1 or len(boots[0].nodes) != 1:
                names = ", ".join(s.id for s in boots) or "none"
                self.fail("stores", f"{service} needs one bootstrap on one member (has {names})",
                          (boots or steps)[0].id)  # fmt: skip
                continue
            self._joins(service, boots[0], joins)

    def _joins(self, service: str, boot: Step, joins: list[Step]) -> None:
        for a, b in pairwise(joins):
            if not self.order.ordered(a.id, b.id):
                self.fail("stores", f"joins of {service} unordered: {a.id} and {b.id}", b.id)
        previous = boot
        for join in joins:
            if len(join.nodes) != 1:
                count = len(join.nodes)
                self.fail("stores", f"{join.id} joins {count} members of {service}", join.id)
            if not self.before(boot.id, join.id):
                self.fail("stores", f"{join.id} has no path from the bootstrap {boot.id}", join.id)
            elif not self._gated(service, previous, join):
                self.fail(
                    "stores",
                    f"{join.id} has no path from a health gate of {service} covering"
                    f" {previous.id} (the member before it must be in the cluster first)",
                    join.id,
                )
            previous = join

    def _gated(self, service: str, earlier: Step, later: Step) -> bool:
        return any(
            gate.action == act.HEALTH
            and service in _services(gate)
            and set(earlier.nodes) <= set(gate.nodes)
            and self.before(earlier.id, gate.id)
            and self.before(gate.id, later.id)
            for gate in self.plan.steps
        )

    def check_databases(self) -> None:
        creates = {
            str(s.param("project")): s for s in self.plan.steps if act.playbook(s) == "db-create"
        }
        syncs = {
            str(s.param("project")): s
            for s in self.plan.steps
            if act.playbook(s) == act.DB_MIGRATE and s.param("phase") == "sync"
        }
        for project in self._projects():
            create, sync = creates.get(project), syncs.get(project)
            if create is None or sync is None:
                what = "db-create" if create is None else "db-migrate sync"
                self.fail("database", f"project {project} has no {what} step", "")
                continue
            if not self.before(create.id, sync.id):
                self.fail("database", f"{sync.id} runs without {create.id} before it", sync.id)
            for service, steps in self.deploys.items():
                if self.catalog.services[service].project != project:
                    continue
                for step in steps:
                    if not self.before(sync.id, step.id):
                        why = f"{step.id} starts {service} before {sync.id}"
                        self.fail("database", why, step.id)
        keys = [s for s in self.plan.steps if act.playbook(s) == "keystone-keys"]
        for step in self.deploys.get("keystone", []):
            if not any(self.before(k.id, step.id) for k in keys):
                named = keys[0].id if keys else "keystone-keys (none in the plan)"
                self.fail("database", f"{step.id} starts keystone before {named}", step.id)

    def _projects(self) -> list[str]:
        """Projects of `deploy_databases` with a control service in the cluster."""
        out = []
        for service in self.cluster.members:
            spec = self.catalog.services[service]
            if spec.tier is Tier.CONTROL and spec.project in self.catalog.deploy_databases:
                out.append(spec.project)
        return sorted(set(out))

    def check_dependencies(self) -> None:
        for service, steps in self.deploys.items():
            for dep in self.catalog.services[service].depends_on:
                for earlier in self.deploys.get(dep, []):
                    for step in steps:
                        if not self.before(earlier.id, step.id):
                            self.fail(
                                "order",
                                f"{step.id} starts {service} before {earlier.id} started {dep}"
                                f" (catalog: {service} depends on {dep})",
                                step.id,
                            )

    def check_gates(self) -> None:
        pre = [s.id for s in self.plan.steps if s.action == act.PRECHECK]
        post = [s.id for s in self.plan.steps if s.action == act.POSTCHECK]
        for step in self.plan.steps:
            if step.action not in (act.PRECHECK, act.POSTCHECK):
                if not any(self.before(p, step.id) for p in pre):
                    self.fail("gates", f"{step.id} runs without the precheck before it", step.id)
                if not any(self.before(step.id, p) for p in post):
                    self.fail("gates", f"{step.id} is not followed by the postcheck", step.id)


def _services(step: Step) -> tuple[str, ...]:
    raw = step.param("services")
    return tuple(map(str, raw)) if isinstance(raw, tuple) else ()


def check_deploy(plan: Plan, cluster: Cluster, catalog: Catalog) -> list[Violation]:
    """Every deploy rule the plan breaks (see the module's doc); [] when it is safe."""
    return DeployRules(plan, cluster, catalog).check()
