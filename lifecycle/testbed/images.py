"""The testbed's release "images": one virtualenv per OpenStack release (Keystone, Placement,
gunicorn, installed with that release's upper-constraints), built once and cached.

Where: env LIFECYCLE_IMAGES, else ${LIFECYCLE_CACHE:-/var/cache/lifecycle}/images, one
`openstack-<release>` directory per release.
"""

from __future__ import annotations

import os
from pathlib import Path


def images_dir() -> Path:
    """The directory holding the release images (it may not exist yet)."""
    explicit = os.environ.get("LIFECYCLE_IMAGES")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("LIFECYCLE_CACHE") or "/var/cache/lifecycle") / "images"
