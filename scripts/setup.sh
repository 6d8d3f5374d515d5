#!/usr/bin/env bash
# Set up a fresh Debian machine for lifecycle: system packages and the project's virtualenv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
missing=$( (testbed_packages; picture_packages) | tr '\n' ' ')
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    # shellcheck disable=SC2086  # one word per package
    apt_install $missing
  else
    echo "setup: missing ${missing}(the testbed and lifecycle graph need them); run as root or install them" >&2
  fi
fi

# git does not keep file modes beyond +x: the example secrets files, and the example nodes files
# that hold BMC passwords (pm_password), must be private again (lifecycle refuses them otherwise)
chmod 600 inventories/*/secrets.yaml
{ grep -l pm_password inventories/*/*.json inventories/*/*.yaml tests/data/*.json \
  tests/data/*.yaml 2>/dev/null || true; } | xargs -r chmod 600

if [ ! -x .venv/bin/lifecycle ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
fi
# the `tripleo` extra (tripleo-common) lets the unit lane check nodes files with TripleO's own
# validate_nodes; a failed install stops here rather than skipping that test quietly
if ! .venv/bin/pip install -q -e '.[test,tripleo]' 2>&1 \
    | { grep -v "is ignored: it is neither a file" || true; }; then
  echo "setup: pip install -e '.[test,tripleo]' failed" >&2
  exit 1
fi
.venv/bin/lifecycle --version
