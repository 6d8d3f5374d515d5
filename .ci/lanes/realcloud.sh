#!/usr/bin/env bash
# Real-cloud lane: the demo cloud (inventories/demo) deployed from nothing on the testbed with real
# Galera, RabbitMQ, HAProxy and memcached (Debian's packages) and real Keystone and Placement (one
# virtualenv "image" per release, built once and cached under $LIFECYCLE_CACHE), then upgraded
# 2024.1 -> 2025.1 -> 2026.1 with the user probe on and a Galera member killed on the way
# (test_realcloud.py), and the backup/recovery playbooks against real MariaDB, RabbitMQ and HAProxy
# (test_backup_services.py). The component tests of the roles (test_real_infra.py,
# test_real_keystone.py; ~10 min each) repeat what the whole-cloud scenario covers and run alone:
# `bash .ci/lanes/realcloud.sh tests/functional/test_real_infra.py`. The drills of replacement and
# disaster recovery on their own cloud (test_realcloud_drills.py: backup, ctl-1 replaced with the
# probe on, recoveries 13a/13b/13c, ctl-2 killed halfway through its replacement; ~39 min on a loaded
# machine) run alone the same way. Needs root.
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
if [ $# -eq 0 ]; then
  set -- tests/functional/test_backup_services.py tests/functional/test_realcloud.py
fi
# -rP: the figures the scenarios print (probe, monitor, drills) stay in the lane's log
exec .venv/bin/pytest -q -rP -m realcloud --timeout 2400 "$@"
