#!/usr/bin/env bash
# Every check on a fresh machine: set-up, lint, types, docs, the unit lane (with property, golden and
# crash tests), then each functional lane (testbed, Ironic, Mistral), which installs what it needs.
# Ends with one line summing every lane: "lifecycle: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export LIFECYCLE_CACHE=${LIFECYCLE_CACHE:-/tmp/lifecycle-cache}  # lane venvs, reused across runs
mkdir -p "$LIFECYCLE_CACHE"
results=$(mktemp -d)
status=0
step() { echo; echo "==> $*"; }

step lint;  .venv/bin/ruff check lifecycle tests bench scripts || status=1
            .venv/bin/ruff format --check lifecycle tests bench scripts || status=1
step types; .venv/bin/mypy || status=1
step docs   # the operator documentation (docs/): any mkdocs warning fails the run
if [ ! -x .venv/bin/mkdocs ]; then
  .venv/bin/pip install -q -e ".[docs]" 2>&1 | grep -v "is ignored: it is neither a file"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
site=$(mktemp -d)
.venv/bin/mkdocs build --strict --site-dir "$site" || status=1
rm -rf "$site"
step "unit lane"
PYTEST_ADDOPTS="--junitxml=$results/unit.xml" \
  .venv/bin/pytest -q -m "not testbed and not realcloud and not ironic and not mistral" tests || status=1
for lane in ${LIFECYCLE_LANES:-testbed realcloud ironic mistral}; do
  step "$lane lane"
  if [ -f ".ci/lanes/$lane.sh" ]; then
    PYTEST_ADDOPTS="--junitxml=$results/$lane.xml" bash ".ci/lanes/$lane.sh" || status=1
  else
    echo "no lane script .ci/lanes/$lane.sh"
  fi
done
.venv/bin/python scripts/junit_summary.py "$results"/*.xml || status=1
exit $status
