#!/usr/bin/env bash
# wrk beside riptide-loadgen, against the same targets in one run, at several
# connection counts, so that each target is measured at its best and the bundled
# loader is measured against wrk:
#   0. a plain hyper server (benches/src/bin/plain_hyper_sink.rs), wrk only: the
#      floor for a sink,
#   a. riptide-loadgen's sink alone (no connector),
#   b. riptide (embedded ledger, the peers of forwarding.sh) in front of that sink,
#   c. ilp-connector (npm, benches/reference) in front of that sink,
#   d. with ILP_NODE=<path> (benches/ilp-node-build.sh), interledger-rs's ilp-node
#      (on a Redis of its own, whose CPU is reported beside it) in front of it.
# wrk (2 threads) POSTs 100,000 distinct Prepares in turn (benches/wrk/prepares.py,
# .lua), so that ilp-connector's duplicate-packet cache answers none of them; the
# loader makes its own. Each run reports answered/s, p50, p99 and the CPU time of
# the process in the middle (the sink in a) per answer.
# Usage: benches/wrk.sh [seconds] [shards]
#   CONNECTIONS (default "16 50 256"): connection counts, each with each loader.
# Needs wrk (Debian: apt-get install wrk), Node.js and npm, and release binaries:
# cargo build --release -p riptide-dataplane -p riptide-loadgen -p riptide-benches --bin plain_hyper_sink
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
shards="${2:-2}"
connection_counts="${CONNECTIONS:-16 50 256}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

command -v wrk >/dev/null || { echo "benches/wrk.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
if [ ! -d benches/reference/node_modules ]; then
    (cd benches/reference && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
python3 benches/wrk/prepares.py 100000 test.sink.bench 3600 > "$work/prepares.hex"
ticks_per_second="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# $1 label, $2 URL, $3 pid in the middle, $4 connections; $5, a helper's pid (the
# middle process's Redis) whose CPU per answer is reported too.
with_wrk() {
    local before after helper_before=0 helper_after=0
    before="$(cpu_ticks "$3")"
    [ -n "${5:-}" ] && helper_before="$(cpu_ticks "$5")"
    PREPARES="$work/prepares.hex" TOKEN=loader-token-0123456789 \
        wrk -t2 -c"$4" -d"${seconds}s" -s benches/wrk/prepares.lua "$2" > "$work/wrk.out"
    after="$(cpu_ticks "$3")"
    [ -n "${5:-}" ] && helper_after="$(cpu_ticks "$5")"
    python3 - "$1" "$4" "$before" "$after" "$ticks_per_second" "$work/wrk.out" "$helper_before" "$helper_after" <<'PY'
import json, sys
label, connections, before, after, hz, path, helper_before, helper_after = sys.argv[1:]
line = [l for l in open(path) if l.startswith("{")][-1]
r = json.loads(line)
per_answer = lambda b, a: (int(a) - int(b)) / int(hz) * 1e6 / max(1, r["requests"])
cpu_us = per_answer(before, after)
helper = f"  + {per_answer(helper_before, helper_after):.1f} us/answer in Redis" if helper_after != "0" else ""
print(f"{label:<14} wrk      {connections:>4}  {r['requests'] / r['seconds']:9,.0f}/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  {cpu_us:6.1f} us/answer{helper}  non-2xx {r['non_2xx']} errors {r['socket_errors']}")
PY
}

# $1 label, $2 URL, $3 pid in the middle, $4 connections; $5 as for with_wrk.
with_loadgen() {
    local helper=()
    [ -n "${5:-}" ] && helper=(--cpu-pid "$5")
    "$target/riptide-loadgen" send --target "$2" --token loader-token-0123456789 \
        --destination test.sink.bench --connections "$4" --warmup-s 1 --duration-s "$seconds" \
        --amount 1 --cpu-pid "$3" "${helper[@]}" --json > "$work/loadgen.out"
    python3 - "$1" "$4" "$work/loadgen.out" <<'PY'
import json, sys
label, connections, path = sys.argv[1:]
r = json.load(open(path))
processes = r["cpu"]["processes"] if r.get("cpu") else []
cpu = processes[0]["us_per_fulfilled"] if processes else float("nan")
helper = f"  + {processes[1]['us_per_fulfilled']:.1f} us/answer in Redis" if len(processes) > 1 else ""
failed = sum(r["rejects"].values()) + sum(r["errors"].values())
print(f"{label:<14} loadgen  {connections:>4}  {r['fulfilled_per_second']:9,.0f}/s  p50 {r['latency_ms']['p50']:7.2f} ms  p99 {r['latency_ms']['p99']:7.2f} ms  {cpu:6.1f} us/answer{helper}  failed {failed}")
PY
}

# $1 label, $2 URL, $3 pid in the middle; $4 as $5 of with_wrk.
both_loaders() {
    for connections in $connection_counts; do
        with_wrk "$1" "$2" "$3" "$connections" "${4:-}"
        with_loadgen "$1" "$2" "$3" "$connections" "${4:-}"
    done
}

echo "# target         loader   conns   answered/s  latency                       CPU of the middle process"
# The floor: a plain hyper server that answers every POST with a fixed body
# (wrk only: it sends no ILP answer a loader could check).
hyper_port="$(free_port)"
"$target/plain_hyper_sink" "127.0.0.1:${hyper_port}" & pids+=($!)
hyper_pid=$!
wait_port "$hyper_port"
for connections in $connection_counts; do
    with_wrk hyper-sink "http://127.0.0.1:${hyper_port}/ilp" "$hyper_pid" "$connections"
done
kill "$hyper_pid"; wait "$hyper_pid" 2>/dev/null || true

start_sink
both_loaders sink "http://127.0.0.1:${sink_port}/ilp" "$sink_pid"

connector_port="$(free_port)"
admin_port="$(free_port)"
forwarding_config 'kind = "memory"' > "$work/riptide.toml"
"$target/riptide" --config "$work/riptide.toml" --shards "$shards" 2>"$work/riptide.log" & pids+=($!)
riptide_pid=$!
wait_port "$connector_port"
both_loaders riptide "http://127.0.0.1:${connector_port}/ilp" "$riptide_pid"
fulfilled="$(curl -s -H "Authorization: Bearer bench-admin-token-0123456789" \
    "http://127.0.0.1:${admin_port}/metrics" | awk -F' ' '/^riptide_packets_total\{peer="loader",outcome="fulfilled"\}/ { print $2 }')"
echo "# riptide fulfilled ${fulfilled:-?} packets in all (wrk's and the loader's)"
kill "$riptide_pid"; wait "$riptide_pid" 2>/dev/null || true

start_reference
# Node's JIT first: a few seconds of load, not measured.
PREPARES="$work/prepares.hex" TOKEN=loader-token-0123456789 \
    wrk -t2 -c16 -d5s -s benches/wrk/prepares.lua "http://127.0.0.1:${loader_port}/ilp" >/dev/null
both_loaders ilp-connector "http://127.0.0.1:${loader_port}/ilp" "$reference_pid"
echo "# ilp-connector: $(grep -c "deduplicate packet cache hit" "$work/reference.log" || true) answers from its duplicate-packet cache"

if [ -n "${ILP_NODE:-}" ]; then
    start_ilp_node
    both_loaders interledger-rs "http://127.0.0.1:${ilrs_port}/accounts/loader/ilp" "$ilrs_pid" "$ilrs_redis_pid"
fi
