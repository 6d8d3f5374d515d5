"""Which driver runs which action: `--driver sim|testbed|cloud` as a table of prefixes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lifecycle.drivers.base import Driver, load_driver
from lifecycle.errors import DriverNotFound, UsageError
from lifecycle.planning.plan import Step

# mode -> action prefix -> driver name ("*" is every prefix not listed)
MODES: Mapping[str, Mapping[str, str]] = {
    "sim": {"*": "sim"},
    # on the testbed Nova's work is done by playbooks, so compute.* goes to ansible
    "testbed": {"ansible": "ansible", "compute": "ansible", "checks": "checks", "backup": "backup"},
    "cloud": {},  # each prefix to the driver of that name
}
# mode -> "module:function" that loads its drivers, where not the registry's load_driver: the
# testbed hands its site facts to the production drivers (they never read the testbed themselves)
LOADERS: Mapping[str, str] = {"testbed": "lifecycle.testbed.driver_site:load_driver"}


class Router:
    """Maps each step's action prefix to a driver, loading drivers on first use."""

    def __init__(
        self,
        table: Mapping[str, str],
        options: Mapping[str, Mapping[str, Any]] | None = None,
        loader: Callable[..., Driver] = load_driver,
    ) -> None:
        self._table = dict(table)
        self._options = dict(options or {})
        self._loader = loader
        self._loaded: dict[str, Driver] = {}

    @classmethod
    def for_mode(cls, mode: str, options: Mapping[str, Mapping[str, Any]] | None = None) -> Router:
        if mode not in MODES:
            raise UsageError.at("--driver", "driver", f"one of {', '.join(MODES)}, not {mode!r}")
        return cls(MODES[mode], options, _loader(mode))

    @classmethod
    def single(cls, driver: Driver) -> Router:
        """Every action to one driver instance (tests, benchmarks)."""
        router = cls({"*": driver.name or "given"})
        router._loaded[driver.name or "given"] = driver
        return router

    def name_for(self, step: Step) -> str:
        prefix = step.driver
        return self._table.get(prefix) or self._table.get("*") or prefix

    def for_step(self, step: Step) -> Driver:
        return self.for_step_name(self.name_for(step), step)

    def for_step_name(self, name: str, step: Step | None = None) -> Driver:
        """The driver registered as `name` (loaded now if need be)."""
        if name not in self._loaded:
            what = f"step {step.id} ({step.action})" if step else f"driver {name}"
            try:
                self._loaded[name] = self._loader(name, **self._options.get(name, {}))
            except DriverNotFound as exc:
                raise DriverNotFound(f"{what}: {exc}") from None
            except ImportError as exc:
                raise DriverNotFound(f"driver {name!r} cannot be loaded here: {exc}") from None
        return self._loaded[name]

    def close(self) -> None:
        for driver in self._loaded.values():
            driver.close()


def _loader(mode: str) -> Callable[..., Driver]:
    """The driver loader of `mode` (LOADERS), imported only when that mode is used."""
    if mode not in LOADERS:
        return load_driver
    from importlib import import_module

    module, _, attr = LOADERS[mode].partition(":")
    loader: Callable[..., Driver] = getattr(import_module(module), attr)
    return loader
