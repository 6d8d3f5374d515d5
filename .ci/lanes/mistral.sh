#!/usr/bin/env bash
# Mistral lane: a real Mistral 23.0.0 service (api, engine, executor, notifier) with RabbitMQ from
# Debian, both on 127.0.0.1, running exported plans on the sim driver and, on the testbed (SSH hosts
# in network namespaces, Debian's openssh-server), with the Ansible driver. Mistral,
# python-mistralclient and this package go into their own virtualenv (pins:
# lifecycle/mistral/constraints.txt), cached under $LIFECYCLE_CACHE (default /tmp/lifecycle-cache).
# Needs root (RabbitMQ runs as root under a temporary directory; the testbed makes namespaces).
# About 2 min of installs on a fresh machine, 6-7 min of tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
ensure_venv
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  # keep Debian from starting its system-wide broker (on 0.0.0.0): the lane runs its own
  own_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=yes
  fi
  apt_install rabbitmq-server
  [ "$own_policy" = no ] || rm -f /usr/sbin/policy-rc.d
fi
# the testbed test (the demo upgrade through Mistral with the Ansible driver) needs sshd and ip
ensure_testbed_packages
export LIFECYCLE_CACHE="${LIFECYCLE_CACHE:-/tmp/lifecycle-cache}"
venv=$(.venv/bin/python -c 'from lifecycle.mistral.lane import ensure_venv; print(ensure_venv())' \
  2> >(grep -v 'is ignored: it is neither a file' >&2))  # fails the lane here if pip fails
echo "mistral lane: virtualenv $venv"
exec .venv/bin/pytest -q -m mistral --timeout 900 tests/functional
