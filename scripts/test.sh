#!/usr/bin/env bash
# Install the test tools (scripts/install.sh --with-test --with-system), then run every
# check: lint, format, types, JS tests, the whole pytest tree.
#
#   bash scripts/test.sh [pytest args…]
#
# Every step runs even if an earlier one failed; the exit status is non-zero if any
# failed. In CI (CI=true) a skipped test counts as a failure (tests/conftest.py).
set -uo pipefail

cd "$(dirname "$0")/.."

bash scripts/install.sh --with-test --with-system || {
    echo "test: scripts/install.sh failed" >&2
    exit 1
}

failed=()
passed=()
step() {
    local name=$1
    shift
    echo "== $name"
    local start=$SECONDS
    if "$@"; then
        passed+=("$name ($((SECONDS - start))s)")
    else
        echo "test: $name FAILED" >&2
        failed+=("$name")
    fi
}

run_pytest() {
    .venv/bin/pytest -q -ra "$@"
    local rc=$?
    if [ "$rc" = 5 ]; then
        echo "test: pytest collected no tests" >&2
    fi
    return "$rc"
}

step "ruff check" .venv/bin/ruff check .
step "ruff format" .venv/bin/ruff format --check .
step "mypy" .venv/bin/mypy
if [ -d browser/test ]; then
    step "node --test" bash -c 'cd browser && node --test'
fi
step "pytest" run_pytest "$@"

echo "== summary"
for name in "${passed[@]}"; do echo "ok      $name"; done
for name in "${failed[@]}"; do echo "FAILED  $name"; done
[ ${#failed[@]} -eq 0 ]
