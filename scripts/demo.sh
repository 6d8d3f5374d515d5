#!/usr/bin/env bash
# The main job, live: set up what is missing, bring up the local testbed (one namespace and one
# sshd per node of inventories/demo), deploy the demo cloud at train, upgrade it to ussuri with
# live progress through real Ansible over SSH, then print the report. Needs root. Re-runnable:
# an old demo testbed is taken down first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (network namespaces, links, sshd); run: sudo bash scripts/demo.sh" >&2
  exit 2
fi
need_apt=()
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
fi
if [ ! -x .venv/bin/lifecycle ]; then
  echo "==> creating .venv (pip install -e .[test])"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
fi
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
$lifecycle runs list | tail -n 3
run_id=$($lifecycle runs list -f json | .venv/bin/python -c \
  'import json, sys; runs = json.load(sys.stdin); print(runs[-1]["run"] if runs else "")' || true)
[ -n "$run_id" ] && $lifecycle runs show "$run_id" | head -n 40
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
