#!/usr/bin/env bash
# Testbed lane: real SSH hosts in network namespaces (one sshd each, Debian's openssh-server),
# real ansible-runner from the project's .venv, real service daemons; the tests marked `testbed`.
# Installs what is missing on a fresh Debian machine (needs root). About 4-5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
  echo "testbed lane: needs root (network namespaces, links, sshd)" >&2
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
[ -x .venv/bin/lifecycle ] || bash scripts/setup.sh
chmod 600 inventories/demo/secrets.yaml
# the testbed keeps its state (keys, artifacts) in a fresh directory per lane run
mkdir -p "${LIFECYCLE_CACHE:-/tmp}"
export LIFECYCLE_STATE_DIR="$(mktemp -d "${LIFECYCLE_CACHE:-/tmp}/testbed-lane.XXXXXX")"
exec .venv/bin/pytest -q -m testbed --timeout 900 tests/functional/test_testbed.py
