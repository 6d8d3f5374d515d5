"""Releases and the rules for moving between them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from lifecycle.errors import UnsupportedUpgrade


@dataclass(frozen=True)
class Release:
    name: str
    index: int  # position in the release train
    slurp: bool = False  # skip-level upgrade release (2023.1, 2024.1, ...)
    aliases: tuple[str, ...] = ()  # code names: antelope for 2023.1


@dataclass(frozen=True)
class ReleaseTrain:
    """An ordered series of releases with its jump rules."""

    product: str  # "openstack" or "ceph"
    releases: tuple[Release, ...]
    max_jump: int = 1  # releases one hop may cross (Ceph: 2 majors)

    @cached_property
    def _by_name(self) -> dict[str, Release]:
        names = {alias: r for r in self.releases for alias in r.aliases}
        return {**names, **{r.name: r for r in self.releases}}

    def get(self, name: str) -> Release:
        release = self._by_name.get(name)
        if release is not None:
            return release
        known = ", ".join(r.name for r in self.releases)
        raise UnsupportedUpgrade(f"unknown {self.product} release {name!r}; known: {known}")

    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.releases)

    def hops(self, source: str, target: str) -> tuple[tuple[Release, Release], ...]:
        """The hops from source to target: N -> N+1, or skip-level between consecutive SLURPs,
        or up to `max_jump` releases at once where the train allows it."""
        src, dst = self.get(source), self.get(target)
        if dst.index < src.index:
            raise UnsupportedUpgrade(
                f"{self.product} {source} -> {target} is a downgrade; lifecycle only upgrades"
            )
        hops: list[tuple[Release, Release]] = []
        here = src
        while here.index < dst.index:
            nxt = self._next_hop(here, dst)
            hops.append((here, nxt))
            here = nxt
        return tuple(hops)

    def _next_hop(self, here: Release, dst: Release) -> Release:
        if here.slurp:
            ahead = [r for r in self.releases if here.index < r.index <= dst.index and r.slurp]
            if ahead and ahead[0].index - here.index <= 2:
                return ahead[0]  # skip-level between consecutive SLURP releases
        step = min(self.max_jump, dst.index - here.index)
        return self.releases[here.index + step]

    def skew_allowed(self, older: Release, newer: Release) -> bool:
        """Whether a data-plane service at `older` may run with control services at `newer`."""
        gap = newer.index - older.index
        if gap <= 1:
            return True
        return gap == 2 and older.slurp and newer.slurp
