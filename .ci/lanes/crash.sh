#!/usr/bin/env bash
# The engine's crash and failure lane on its own: kill -9 a real run at random moments and resume
# it, failures with their reports, operators in other processes. It needs nothing beyond the
# project's virtualenv, so the unit lane of scripts/test.sh already runs these tests (marker
# `crash`); this script is for running them alone (LIFECYCLE_LANES=crash bash scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh >/dev/null
exec .venv/bin/pytest -q -m crash tests/functional/test_crash.py \
  tests/functional/test_crash_control.py tests/functional/test_failures.py
