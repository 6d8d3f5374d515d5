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
        """Every name and code name, case-folded, to its release (a name wins over an alias)."""
        names = {alias.casefold(): r for r in self.releases for alias in r.aliases}
        return {**names, **{r.name.casefold(): r for r in self.releases}}

    def get(self, name: str) -> Release:
        """The release named `name` or one of its code names, in any case (`Antelope`,
        `2023.1`); an unknown name raises UnsupportedUpgrade with the closest names."""
        release = self._by_name.get(name.strip().casefold())
        if release is not None:
            return release
        raise UnsupportedUpgrade(f"unknown {self.product} release {name!r}{self.suggest(name)}")

    def closest(self, name: str) -> str | None:
        """The release name or code name nearest to a mistyped `name` (difflib), if any."""
        import difflib

        spelled = [n.casefold() for r in self.releases for n in (r.name, *r.aliases)]
        close = difflib.get_close_matches(name.strip().casefold(), spelled, n=1, cutoff=0.6)
        return close[0] if close else None

    def suggest(self, name: str) -> str:
        """`; did you mean 'ussuri'? known: ...` (the closest name or code name, then every
        release with its code names), to follow a message about an unknown `name`."""
        close = self.closest(name)
        known = ", ".join(
            f"{r.name} ({', '.join(r.aliases)})" if r.aliases else r.name for r in self.releases
        )
        return f"; did you mean {close!r}? known: {known}" if close else f"; known: {known}"

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
