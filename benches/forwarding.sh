#!/usr/bin/env bash
# Forwarding throughput and latency on this machine, side by side in one run:
#   1. the load generator straight to the sink (no connector: the ceiling of the loader),
#   2. through riptide with the embedded ledger,
#   3. through riptide with TigerBeetle, next to TigerBeetle's own two-phase rate.
# Each run reports the CPU time per fulfilled packet of every process on the path
# (riptide, the sink, TigerBeetle, and the loader itself).
# Usage: benches/forwarding.sh [seconds] [connections] [shards]
# Needs release binaries: cargo build --release --all-features -p riptide-dataplane -p riptide-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-32}"
shards="${3:-2}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

start_sink


send() { # $1 target url, $2 label, then the pids whose CPU time to report
    local url="$1" label="$2"
    shift 2
    local cpu=()
    for pid in "$@"; do cpu+=(--cpu-pid "$pid"); done
    "$target/riptide-loadgen" send --target "$url" --token loader-token-0123456789 \
        --destination test.sink.bench --connections "$connections" --duration-s "$seconds" --amount 1 \
        "${cpu[@]}" --json \
        | sed "s/^/{\"run\":\"$label\",\"result\":/; s/\$/}/"
}

send "http://127.0.0.1:${sink_port}/ilp" "loader-to-sink" "$sink_pid"

connector_port="$(free_port)"
admin_port="$(free_port)"
forwarding_config 'kind = "memory"' > "$work/memory.toml"
"$target/riptide" --config "$work/memory.toml" --shards "$shards" 2>"$work/memory.log" & pids+=($!)
wait_port "$connector_port"
save_balances_before
send "http://127.0.0.1:${connector_port}/ilp" "riptide-memory-ledger" "${pids[-1]}" "$sink_pid"
check_booked peer:sink
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

start_tigerbeetle
connector_port="$(free_port)"
admin_port="$(free_port)"
forwarding_config "kind = \"tigerbeetle\"
addresses = \"127.0.0.1:${tb_port}\"" > "$work/tb.toml"
"$target/riptide" --config "$work/tb.toml" --shards "$shards" 2>"$work/tb.log" & pids+=($!)
wait_port "$connector_port"
save_balances_before
send "http://127.0.0.1:${connector_port}/ilp" "riptide-tigerbeetle" "${pids[-1]}" "$sink_pid" "$tb_pid"
sleep 1.2
curl -s -H "Authorization: Bearer bench-admin-token-0123456789" "http://127.0.0.1:${admin_port}/metrics" \
    > "$work/tb-metrics.txt"
grep -E "^riptide_ledger_(batch_events|request_seconds)" "$work/tb-metrics.txt" | sed "s/^/# /" || true
# Every Fulfill booked exactly, by TigerBeetle's own balances (benches/booked.py).
check_booked peer:sink
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
for batch in 1 16 32 1000; do
    "$target/riptide-loadgen" tb-ceiling --address "127.0.0.1:${tb_port}" --batch "$batch" --in-flight 4 --duration-s "$seconds" \
        | sed "s/^/{\"run\":\"tigerbeetle-two-phase-ceiling\",\"result\":/; s/\$/}/"
done
