#!/usr/bin/env bash
# The main job, live: set up what is missing, bring up the local testbed (one namespace and one
# sshd per node of inventories/demo), deploy the demo cloud from nothing at 2024.1 (real Galera,
# RabbitMQ, HAProxy, memcached, Keystone and Placement; Nova, Neutron and Ceph are stand-ins),
# then upgrade it to 2026.1 in two SLURP hops with live progress through real Ansible over SSH,
# while the user probe issues tokens and writes through HAProxy; then print the reports.
# Needs root. Re-runnable: an old demo testbed is taken down first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
require_root demo "network namespaces, links, sshd; run: sudo bash scripts/demo.sh" 2
ensure_testbed_packages
ensure_real_service_packages
ensure_venv
chmod 600 inventories/demo/secrets.yaml

export LIFECYCLE_STATE_DIR="${LIFECYCLE_STATE_DIR:-/run/lifecycle-testbed}"
export LIFECYCLE_CACHE="${LIFECYCLE_CACHE:-/var/cache/lifecycle}"
lifecycle=.venv/bin/lifecycle
inventory=inventories/demo
ensure_release_images inventories/demo
echo "==> testbed state in $LIFECYCLE_STATE_DIR"
$lifecycle testbed down >/dev/null            # an earlier demo's testbed, by its recorded ids
echo "==> lifecycle testbed up --inventory $inventory"
$lifecycle testbed up --inventory $inventory
echo "==> lifecycle plan deploy --inventory $inventory"
$lifecycle plan deploy --inventory $inventory | head -n 4
echo "==> lifecycle run deploy --inventory $inventory --driver testbed"
$lifecycle run deploy --inventory $inventory --driver testbed --yes
echo "==> lifecycle testbed status"
$lifecycle testbed status
echo "==> lifecycle plan upgrade --inventory $inventory --to 2026.1"
$lifecycle plan upgrade --inventory $inventory --to 2026.1 | head -n 4
probe_out="$LIFECYCLE_STATE_DIR/demo-probe.json"
echo "==> lifecycle testbed probe --inventory $inventory (in the background, through the upgrade)"
$lifecycle testbed probe --inventory $inventory --out "$probe_out" &
probe=$!
echo "==> lifecycle run upgrade --inventory $inventory --to 2026.1 --driver testbed"
status=0
$lifecycle run upgrade --inventory $inventory --to 2026.1 --driver testbed --yes || status=$?
kill -TERM $probe; wait $probe || true
echo "==> report"
$lifecycle runs list
$lifecycle runs show last | head -n 40 || true
echo "==> what the cloud runs now (observed)"
$lifecycle status --inventory $inventory | head -n 40 || true
echo "==> the user probe through the upgrade ($probe_out)"
cat "$probe_out" 2>/dev/null || true
echo "the testbed stays up: lifecycle testbed status | down  (LIFECYCLE_STATE_DIR=$LIFECYCLE_STATE_DIR)"
exit $status
