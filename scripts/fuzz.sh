#!/usr/bin/env bash
# The long fuzz run (issue 6, part 4): every decoder and the session / invite state
# machines under the "full" Hypothesis profile (random seeds, the example database
# on, ~25x the CI examples). CI runs the same tests with the derandomized "ci"
# profile: `pytest tests/fuzz` (about 90 s).
#
#   bash scripts/fuzz.sh                     # full profile
#   P2PCHAT_FUZZ_SCALE=4 bash scripts/fuzz.sh   # 4x more examples still
#   bash scripts/fuzz.sh -k session          # extra pytest arguments
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
export P2PCHAT_FUZZ=full
exec "$PYTHON" -m pytest tests/fuzz -p no:randomly -q --timeout 0 --durations=0 "$@"
