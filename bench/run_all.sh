#!/bin/sh
# Run every bench/*.py script; save each one's JSON line to bench/results/<name>.json.
# Usage: bench/run_all.sh [extra args for bench_raw_aiortc, e.g. --cut-detection]
# The LAN benchmarks (bench_discovery, bench_lan) need root (ip netns).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p bench/results
status=0
for script in bench/bench_*.py; do
    name=$(basename "$script" .py)
    args=""
    [ "$name" = bench_raw_aiortc ] && args="$*"
    echo "== $name $args" >&2
    start=$(date +%s)
    # shellcheck disable=SC2086
    if $PY "$script" $args > "bench/results/$name.json.tmp"; then
        mv "bench/results/$name.json.tmp" "bench/results/$name.json"
        echo "   ok in $(( $(date +%s) - start )) s -> bench/results/$name.json" >&2
    else
        echo "   FAILED ($name); output kept in bench/results/$name.json.tmp" >&2
        status=1
    fi
done
exit $status
