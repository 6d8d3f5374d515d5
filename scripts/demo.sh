#!/usr/bin/env bash
# The main job, live: set up what is missing, bring up the local testbed (one namespace and one
# sshd per node of inventories/demo), deploy the demo cloud at train, upgrade it to ussuri with
# live progress through real Ansible over SSH, then print the report. Needs root. Re-runnable:
# an old demo testbed is taken down first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
require_root demo "network namespaces, links, sshd; run: sudo bash scripts/demo.sh" 2
ensure_testbed_packages
ensure_venv
chmod 600 inventories/demo/secrets.yaml

export LIFECYCLE_STATE_DIR="${LIFECYCLE_STATE_DIR:-/run/lifecycle-testbed}"
lifecycle=.venv/bin/lifecycle
echo "==> testbed state in $LIFECYCLE_STATE_DIR"
$lifecycle testbed down >/dev/null            # an earlier demo's testbed, by its recorded ids
echo "==> lifecycle testbed up --inventory inventories/demo"
$lifecycle testbed up --inventory inventories/demo
echo "==> lifecycle testbed deploy --inventory inventories/demo"
$lifecycle testbed deploy --inventory inventories/demo
echo "==> lifecycle plan upgrade --inventory inventories/demo --to ussuri"
$lifecycle plan upgrade --inventory inventories/demo --to ussuri | tail -n 25
echo "==> lifecycle run upgrade --inventory inventories/demo --to ussuri --driver testbed"
status=0
$lifecycle run upgrade --inventory inventories/demo --to ussuri --driver testbed --yes || status=$?
echo "==> report"
$lifecycle runs list
$lifecycle runs show last | head -n 40 || true
echo "==> every service after the upgrade (GET / on each daemon)"
.venv/bin/python - <<'PY'
from lifecycle.formats.inventory import load_inventory
from lifecycle.testbed import client

cluster = load_inventory("inventories/demo")
for node in cluster.nodes:
    versions = {}
    for service in cluster.services_of(node):
        answer = client.service_status(cluster, node.name, service, path="/ping")
        versions.setdefault(answer["version"] if answer else "DOWN", []).append(service)
    print(f"  {node.name:<10} " + "; ".join(f"{v}: {', '.join(s)}" for v, s in versions.items()))
PY
echo "the testbed stays up: lifecycle testbed status | down  (LIFECYCLE_STATE_DIR=$LIFECYCLE_STATE_DIR)"
exit $status
