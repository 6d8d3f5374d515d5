# Shared by scripts/*.sh and .ci/lanes/*.sh (source it from the repository's root).

# require_root WHO WHY [STATUS]: stop unless root, saying who needs it and why.
require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$1: needs root ($2)" >&2
    exit "${3:-1}"
  fi
}

# apt_install PACKAGE...: install Debian packages quietly (nothing when none are named).
apt_install() {
  [ $# -gt 0 ] || return 0
  echo "==> installing $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# testbed_packages: what the testbed needs and this machine lacks (sshd, ssh, ip).
testbed_packages() {
  [ -x /usr/sbin/sshd ] || echo openssh-server
  command -v ssh >/dev/null 2>&1 || echo openssh-client
  command -v ip >/dev/null 2>&1 || echo iproute2
}

# picture_packages: what `lifecycle graph` needs and this machine lacks (Graphviz's dot, and a
# font for its PNG and PDF text; matplotlib ships its own for the Gantt chart).
picture_packages() {
  command -v dot >/dev/null 2>&1 || echo graphviz
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || echo fonts-dejavu-core
}

# ensure_picture_packages: install what picture_packages names (root only).
ensure_picture_packages() {
  # shellcheck disable=SC2046  # one word per package
  apt_install $(picture_packages)
}

# ensure_testbed_packages: install what testbed_packages names (root only).
ensure_testbed_packages() {
  # shellcheck disable=SC2046  # one word per package
  apt_install $(testbed_packages)
}

# ensure_venv: the project's .venv, made by scripts/setup.sh when missing.
ensure_venv() {
  [ -x .venv/bin/lifecycle ] || bash scripts/setup.sh
}

# real_service_packages: the Debian packages the testbed's real services run from (Galera,
# RabbitMQ, HAProxy, memcached, and rsync/socat for SST and HAProxy's admin socket) that this
# machine lacks.
real_service_packages() {
  for p in mariadb-server galera-4 mariadb-backup mariadb-client haproxy memcached rsync socat \
           rabbitmq-server; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

# ensure_real_service_packages: install what real_service_packages names (root only) WITHOUT their
# system services starting: the testbed's playbooks start each instance under its host's
# directory, and a distribution mariadb/rabbitmq/haproxy/memcached on the machine's own ports and
# /etc files would stand in their way. A policy-rc.d refusing every start (exit 101, Debian's
# invoke-rc.d policy) is in place during the install only.
ensure_real_service_packages() {
  local missing
  missing=$(real_service_packages)
  [ -n "$missing" ] || return 0
  local policy=/usr/sbin/policy-rc.d had_policy=""
  if [ -e "$policy" ]; then
    had_policy=$(mktemp)
    cp -p "$policy" "$had_policy"
  fi
  printf '#!/bin/sh\n# lifecycle: no service starts while the testbed packages install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  local rc=0
  # shellcheck disable=SC2086  # one word per package
  apt_install $missing || rc=$?
  if [ -n "$had_policy" ]; then
    mv "$had_policy" "$policy"
  else
    rm -f "$policy"
  fi
  return "$rc"
}

# ensure_release_images [INVENTORY]: the release "images" (one virtualenv per OpenStack release
# with Keystone, Placement and gunicorn) under $LIFECYCLE_IMAGES or ${LIFECYCLE_CACHE}/images;
# with an inventory, its release and every later one, else all of them. A current image is reused
# (seconds); a cold build takes minutes each (PyPI). Needs python3-venv (Debian's ensurepip).
ensure_release_images() {
  /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  if [ -n "${1:-}" ]; then
    .venv/bin/lifecycle testbed images -i "$1"
  else
    .venv/bin/lifecycle testbed images
  fi
}
