#!/usr/bin/env bash
# Real-cloud lane: the demo cloud (inventories/demo) deployed from nothing on the testbed with real
# Galera, RabbitMQ, HAProxy and memcached (Debian's packages) and real Keystone and Placement (one
# virtualenv "image" per release, built once and cached under $LIFECYCLE_CACHE), then upgraded
# 2024.1 -> 2025.1 -> 2026.1 with the user probe on; the tests marked `realcloud`. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
require_root "realcloud lane" "network namespaces, links, sshd, the services' processes"
ensure_testbed_packages
ensure_real_service_packages
ensure_venv
export LIFECYCLE_CACHE="${LIFECYCLE_CACHE:-/tmp/lifecycle-cache}"
ensure_release_images inventories/demo
chmod 600 inventories/demo/secrets.yaml
exec .venv/bin/pytest -q -m realcloud --timeout 1800 tests/functional "$@"
