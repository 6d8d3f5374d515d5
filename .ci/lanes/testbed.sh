#!/usr/bin/env bash
# Testbed lane: real SSH hosts in network namespaces (one sshd each, Debian's openssh-server),
# real ansible-runner from the project's .venv, real service daemons; the tests marked `testbed`.
# Installs what is missing on a fresh Debian machine (needs root). About 7-8 minutes on 2 cores
# (test_testbed_replace.py about 3 of them).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
require_root "testbed lane" "network namespaces, links, sshd"
ensure_testbed_packages
ensure_venv
chmod 600 tests/data/demo-train/secrets.yaml
# the testbed keeps its state (keys, artifacts) in a fresh directory per lane run
mkdir -p "${LIFECYCLE_CACHE:-/tmp}"
export LIFECYCLE_STATE_DIR="$(mktemp -d "${LIFECYCLE_CACHE:-/tmp}/testbed-lane.XXXXXX")"
exec .venv/bin/pytest -q -m testbed --timeout 900 tests/functional/test_testbed.py \
  tests/functional/test_testbed_status.py tests/functional/test_testbed_replace.py
