"""Drivers: the only code that touches the world. Registered under the `lifecycle.drivers`
entry-point group; `load_driver(name)` finds one by name."""

from lifecycle.drivers.base import Driver, StepContext, StepResult, load_driver

__all__ = ["Driver", "StepContext", "StepResult", "load_driver"]
