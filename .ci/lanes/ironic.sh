#!/usr/bin/env bash
# Ironic lane: a real standalone Ironic with Redfish BMCs emulated by sushy-tools, installed
# (pinned: ironic 39.0.0, sushy-tools 2.2.0, sushy 5.14.0) into their own virtualenv cached under
# $LIFECYCLE_CACHE (default /tmp/lifecycle-cache), then the tests marked `ironic`.
# All PyPI wheels, no libvirt. The scale-out test also brings up the testbed (the demo cluster,
# plus one SSH host per new SSD server): root, openssh-server and iproute2, installed if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
require_root "ironic lane" "the scale-out test's testbed hosts: namespaces, sshd"
ensure_testbed_packages
ensure_venv
export LIFECYCLE_CACHE="${LIFECYCLE_CACHE:-/tmp/lifecycle-cache}"
echo "ironic lane: virtualenv $(.venv/bin/python -c \
  'from lifecycle.testbed.ironic import ensure_venv; print(ensure_venv())')"
exec .venv/bin/pytest -q -m ironic --timeout 900 tests/functional "$@"
