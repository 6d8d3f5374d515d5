#!/usr/bin/env bash
# Ironic lane: a real standalone Ironic with Redfish BMCs emulated by sushy-tools, installed
# (pinned: ironic 39.0.0, sushy-tools 2.2.0, sushy 5.14.0) into their own virtualenv cached under
# $LIFECYCLE_CACHE (default /tmp/lifecycle-cache), then the tests marked `ironic`.
# All PyPI wheels, no libvirt. The scale-out test also brings up the testbed (the demo cluster,
# plus one SSH host per new SSD server): root, openssh-server and iproute2, installed if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
  echo "ironic lane: needs root (the scale-out test's testbed hosts: namespaces, sshd)" >&2
  exit 1
fi
need_apt=()
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || bash scripts/setup.sh
export LIFECYCLE_CACHE="${LIFECYCLE_CACHE:-/tmp/lifecycle-cache}"
echo "ironic lane: virtualenv $(.venv/bin/python -c \
  'from lifecycle.testbed.ironic import ensure_venv; print(ensure_venv())')"
exec .venv/bin/pytest -q -m ironic --timeout 900 tests/functional "$@"
