#!/bin/sh
# Run every bench/bench_*.py, save each one's JSON line to bench/results/<name>.json,
# then print ONE table of every figure (bench/report.py) and regenerate the charts
# (docs/perf/*.svg) and the generated part of docs/performance.md from it.
#
#   bench/run_all.sh [--only bench_lan,bench_tui] [--no-docs] [--cut-detection]
#
# --only          run these benches; the others' results from an earlier run are kept
#                 (each bench's row says when and at which commit it ran)
# --no-docs       print the table, leave docs/ alone
# --cut-detection add bench_raw_aiortc's ~40 s cut test
# The LAN and browser benches (bench_discovery, bench_files, bench_group, bench_guest,
# bench_lan, the LAN part of bench_load, bench_cluster's TURN part) need root: they make
# their own network namespaces. bench_cluster (~2 min) also needs redis-server and
# coturn. About 10-14 min in all on a 2-core machine.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
only="" docs=1 raw_args=""
while [ $# -gt 0 ]; do
    case "$1" in
        --only) only=",$2,"; shift ;;
        --no-docs) docs=0 ;;
        --cut-detection) raw_args="--cut-detection" ;;
        *) echo "run_all: unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p bench/results
[ -z "$only" ] && rm -f bench/results/bench_*.json bench/results/bench_*.json.tmp
# Per-bench options that keep the whole run near 10 min (bench_load's default goes on
# to 8000 guests; see its --help).
args_for() {
    case "$1" in
        bench_raw_aiortc) echo "$raw_args" ;;
        bench_load) echo "--sizes 500,1000,2000,4000" ;;
        bench_files) echo "--sizes 1MB,200MB --runs 3" ;;
        *) echo "" ;;
    esac
}
status=0
started=$(date +%s)
for script in bench/bench_*.py; do
    name=$(basename "$script" .py)
    case "$only" in "" | *",$name,"*) ;; *) continue ;; esac
    args=$(args_for "$name")
    echo "== $name $args (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
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
echo "== all benches in $(( $(date +%s) - started )) s" >&2
if [ "$docs" = 1 ]; then
    $PY bench/report.py --write-docs || status=1
else
    $PY bench/report.py || status=1
fi
exit $status
