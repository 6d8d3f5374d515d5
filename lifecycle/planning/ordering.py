"""What a plan's DAG guarantees about order, whatever order the engine picks.

The engine starts any step whose dependencies are done, so the only order between two steps that
holds in *every* run is reachability in the DAG. `Order` answers "must step a end before step b
starts?" in O(1) from ancestor bitsets (one Python int per step, bit i = step i in topological
order), built in one pass over the DAG: O(steps x deps x steps/64) word operations, a few
milliseconds for the ~2,500 steps of a 10,000-node plan.

`max_antichain` bounds how many hosts (or quorum members) can be out together in some run: the
heaviest set of pairwise-unordered elements, an element being one step or an interval of steps
(drained from an evacuation to its re-enable). Greedy chains give an upper bound that is exact
on the planner's plans (one chain per aggregate and per service); only when that bound exceeds
the limit is the exact answer computed, by weighted Dilworth as a max-flow (networkx).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lifecycle.planning.plan import Plan


class Order:
    """Reachability over a plan's DAG (unknown dependencies ignored; the DAG must be acyclic)."""

    def __init__(self, plan: Plan) -> None:
        ids = [s.id for s in plan.steps]
        known = set(ids)
        deps = {s.id: [d for d in s.depends_on if d in known] for s in plan.steps}
        self.order: list[str] = _topological(ids, deps)
        self.index: dict[str, int] = {sid: i for i, sid in enumerate(self.order)}
        ancestors: list[int] = []
        for sid in self.order:
            mask = 0
            for dep in deps[sid]:
                j = self.index[dep]
                mask |= ancestors[j] | (1 << j)
            ancestors.append(mask)
        self.ancestors = ancestors
        self.bits = [1 << i for i in range(len(self.order))]

    def before(self, a: str, b: str) -> bool:
        """True when step `a` must end before step `b` starts in every run."""
        return bool(self.ancestors[self.index[b]] & self.bits[self.index[a]])

    def ordered(self, a: str, b: str) -> bool:
        return a == b or self.before(a, b) or self.before(b, a)

    def ancestors_of(self, step: str) -> int:
        return self.ancestors[self.index[step]]

    def bit(self, step: str) -> int:
        return self.bits[self.index[step]]

    def mask(self, steps: Sequence[str]) -> int:
        out = 0
        for s in steps:
            out |= self.bits[self.index[s]]
        return out

    def sort(self, steps: Sequence[str]) -> list[str]:
        """The steps in topological order."""
        return sorted(steps, key=self.index.__getitem__)


def _topological(ids: list[str], deps: dict[str, list[str]]) -> list[str]:
    """Kahn's order, stable on the plan's own order (which is already topological for the
    planner's plans)."""
    position = {sid: i for i, sid in enumerate(ids)}
    if all(position[d] < position[sid] for sid in ids for d in deps[sid]):
        return ids
    import networkx as nx  # only for a plan listed out of order (not the planner's)

    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(ids)
    graph.add_edges_from((d, sid) for sid in ids for d in deps[sid])
    return list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))


@dataclass(frozen=True)
class Span:
    """Something that holds a resource from the start of `first` to the end of `last`
    (the same step for a plain disruption; "" when it is never given back), with a weight
    (hosts, members) and a label."""

    first: str
    last: str
    weight: int
    label: str


def precedes(order: Order, a: Span, b: Span) -> bool:
    """`a` is over before `b` begins in every run."""
    return bool(a.last) and order.before(a.last, b.first)


def max_antichain(order: Order, spans: Sequence[Span], limit: int) -> list[Span]:
    """A set of pairwise-unordered spans heavier than `limit`, or [] when none exists.

    A set of pairwise-unordered spans can all be held at one moment of some run (run every
    ancestor of their first steps, then start those), so this is exact."""
    if sum(s.weight for s in spans) <= limit:
        return []
    chains = _greedy_chains(order, spans)
    if sum(max(s.weight for s in chain) for chain in chains) <= limit:
        return []  # each chain holds one span at a time: the planner's case
    heaviest = _heaviest_antichain(order, spans)
    return heaviest if sum(s.weight for s in heaviest) > limit else []


def _greedy_chains(order: Order, spans: Sequence[Span]) -> list[list[Span]]:
    chains: list[list[Span]] = []
    for span in sorted(spans, key=lambda s: order.index[s.first]):
        for chain in chains:
            if precedes(order, chain[-1], span):
                chain.append(span)
                break
        else:
            chains.append([span])
    return chains


def _heaviest_antichain(order: Order, spans: Sequence[Span]) -> list[Span]:
    """Weighted Dilworth: the heaviest antichain weighs sum(w) - max flow of the bipartite
    network source -> x_out (w) -> y_in (inf, when x precedes y) -> sink (w); the antichain is
    the elements whose out-side is reachable from the source in the residual graph and whose
    in-side is not."""
    import networkx as nx  # only when the cheap chain bound cannot settle a resource

    graph: nx.DiGraph = nx.DiGraph()
    for i, a in enumerate(spans):
        graph.add_edge("s", ("o", i), capacity=a.weight)
        graph.add_edge(("i", i), "t", capacity=a.weight)
        for j, b in enumerate(spans):
            if i != j and precedes(order, a, b):
                graph.add_edge(("o", i), ("i", j))  # no capacity: infinite
    _, (source_side, _) = nx.minimum_cut(graph, "s", "t")
    return [
        a for i, a in enumerate(spans) if ("o", i) in source_side and ("i", i) not in source_side
    ]
