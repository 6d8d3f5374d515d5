#!/usr/bin/env bash
# Set up a fresh Debian machine for lifecycle: system packages and the project's virtualenv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}; run as root or install them" >&2
  fi
fi

# git does not keep file modes beyond +x: the example secrets files must be private again
chmod 600 inventories/*/secrets.yaml

if [ ! -x .venv/bin/lifecycle ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
fi
.venv/bin/pip install -q -e '.[test]' 2>&1 | grep -v "is ignored: it is neither a file" || true
.venv/bin/lifecycle --version
