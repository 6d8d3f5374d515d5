"""Benchmark: the testbed's release images (lifecycle/testbed/images.py), cold build vs cached.

One cold build of a release's image into a fresh temp directory (python -m venv, pip install of
Keystone, Placement, gunicorn and the drivers with the release's upper-constraints; pip's own
download and wheel cache is left as it is, as on a CI machine that ran before), then the same call
again, which finds the image current by its stamp and reuses it. Reported: both times and their
ratio (cold / cached), and the image's size. Needs the network (PyPI) for the cold build.

    .venv/bin/python bench/bench_images.py [--release 2024.1]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from lifecycle.testbed.images import build_image, releases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default=releases()[0], choices=releases())
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-images-"))
    try:
        cold = build_image(args.release, root)
        cached = build_image(args.release, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert cold.state == "built" and cached.state == "cached"
    print(f"image openstack-{args.release}: {cold.size_bytes / 1e6:.0f} MB")
    print(f"  cold build   {cold.seconds:8.2f} s")
    print(f"  cached       {cached.seconds:8.2f} s")
    print(f"  cold/cached  {cold.seconds / max(cached.seconds, 1e-9):8.0f}x")


if __name__ == "__main__":
    main()
