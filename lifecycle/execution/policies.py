"""Retry, backoff and timeout policies per step kind.

Backoff uses tenacity's wait strategies; the engine, not a sleeping worker thread, waits out the
backoff (a RETRYING step with a `not_before`), so pause and abort stay responsive and every attempt
is journaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import tenacity
from tenacity.wait import wait_base

from lifecycle.planning.plan import Step


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step kind is attempted, how long to wait between attempts, when it times out.

    Retries apply only to steps the driver calls idempotent: a non-idempotent step that failed
    may have left part of its effect, so it stops for resume's probe instead."""

    attempts: int = 1
    wait: wait_base = field(default_factory=lambda: tenacity.wait_exponential(min=2, max=60))
    timeout_factor: float = 5.0  # timeout = factor x the plan's estimate, at least min_timeout
    min_timeout: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = attempt
        return float(self.wait(state))

    def timeout(self, step: Step) -> float:
        return max(self.min_timeout, self.timeout_factor * step.duration)


DEFAULT_POLICIES: Mapping[str, RetryPolicy] = {
    # a health gate is expected to be red for a while after a restart: poll it patiently
    "checks.health": RetryPolicy(attempts=6, wait=tenacity.wait_exponential(min=5, max=60)),
    "checks": RetryPolicy(attempts=3, wait=tenacity.wait_exponential(min=5, max=30)),
    "ansible.playbook": RetryPolicy(attempts=2, wait=tenacity.wait_fixed(30)),
    "compute.evacuate": RetryPolicy(attempts=3, wait=tenacity.wait_exponential(min=10, max=120)),
    "compute": RetryPolicy(attempts=3, wait=tenacity.wait_exponential(min=5, max=60)),
    "baremetal": RetryPolicy(attempts=3, wait=tenacity.wait_exponential(min=10, max=120)),
    "": RetryPolicy(attempts=1),
}


@dataclass(frozen=True)
class PolicyTable:
    """Policies by action ("checks.health"), then by driver prefix ("checks"), then the default
    (key ""). `time_scale` shrinks waits and timeouts along with simulated durations."""

    policies: Mapping[str, RetryPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    time_scale: float = 1.0
    timeout_floor: float = 5.0  # real seconds: a loaded test machine must not time out sim steps

    def for_step(self, step: Step) -> RetryPolicy:
        found = self.policies.get(step.action) or self.policies.get(step.driver)
        return found or self.policies.get("", RetryPolicy())

    def backoff(self, step: Step, attempt: int) -> float:
        return self.for_step(step).backoff(attempt) * self.time_scale

    def timeout(self, step: Step) -> float:
        return max(self.timeout_floor, self.for_step(step).timeout(step) * self.time_scale)

    def may_retry(self, step: Step, attempt: int, idempotent: bool) -> bool:
        return idempotent and attempt < self.for_step(step).attempts
