"""What a plan is made from besides the inventory and the operator's intent: lifecycle's own
planner (its sources and its catalog) and what it runs on (Python, networkx). Recorded with a
run (`intent["planner"]`), it lets `lifecycle resume` take the journal's plan as the plan it
would make again, instead of making it again only to compare digests (~0.6 s of a 10k-step
resume): with the inventory's digest and this fingerprint unchanged, planning again gives the
same plan, because planning is a pure function of them (DESIGN.md: pure planning)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from functools import cache
from pathlib import Path

# operations whose plan is a function of the inventory, the recorded intent and the planner only
# (scale-out reads a nodes file, replace and a saved plan file read what they name: those plan
# again on resume, as before)
REPLANNED_FROM_INTENT = frozenset({"upgrade", "deploy"})


@cache
def planner_fingerprint() -> str:
    """`sha256:<hex>` of every .py and .yaml file of the lifecycle package (path and bytes, in
    path order), its version, the Python version and networkx's `__init__.py` (which holds its
    version; read, not imported: a resume that does not plan need not import networkx). ~1 MB
    read, ~10 ms. "" when the sources are not files on disk: then every resume plans again."""
    import lifecycle

    root = Path(lifecycle.__file__).resolve().parent
    files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file())
    if not files:  # sources not on disk (a zipped install): unknown, resume always plans again
        return ""
    digest = hashlib.sha256(f"{sys.version}\0{lifecycle.__version__}\0".encode())
    networkx = importlib.util.find_spec("networkx")
    if networkx is not None and networkx.origin:
        digest.update(Path(networkx.origin).read_bytes())
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()
