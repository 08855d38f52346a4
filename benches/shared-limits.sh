#!/usr/bin/env bash
# What a peer's limit costs, side by side in one run: forwarding (embedded ledger,
# one Redis as the receipt store) from the loader to the sink with
#   1. no limit on the loader,
#   2. a rate and a throughput limit counted on this data plane (limit_scope
#      "dataplane", the default),
#   3. the same limits shared by every data plane (limit_scope "shared": tokens
#      leased from Redis, 20 ms of the limit at a time).
# The limits are far above the load, so that every run measures the cost of
# counting, not the limit itself. Each run reports fulfilled/s, p50, p99, and the
# CPU time per packet of riptide and of Redis.
# Usage: benches/shared-limits.sh [seconds] [connections] [shards]
# Needs release binaries: cargo build --release --all-features -p riptide-dataplane -p riptide-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-64}"
shards="${3:-2}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

start_sink
redis_port="$(free_port)"
"$RIPTIDE_REDIS_SERVER" --save '' --appendonly no --bind 127.0.0.1 --port "$redis_port" >/dev/null 2>&1 & pids+=($!)
redis_pid=$!
wait_port "$redis_port"

run() { # $1 label, $2 the loader peer's limit lines
    connector_port="$(free_port)"; admin_port="$(free_port)"
    LOADER_PEER_EXTRA="$2" forwarding_config 'kind = "memory"' > "$work/$1.toml"
    printf '\n[receipts]\nredis_url = "redis://127.0.0.1:%s/"\n' "$redis_port" >> "$work/$1.toml"
    "$target/riptide" --config "$work/$1.toml" --shards "$shards" 2>"$work/$1.log" & pids+=($!)
    local riptide_pid=$!
    wait_port "$connector_port"
    "$target/riptide-loadgen" send --target "http://127.0.0.1:${connector_port}/ilp" \
        --token loader-token-0123456789 --destination test.sink.bench --connections "$connections" \
        --warmup-s 1 --duration-s "$seconds" --amount 1 --cpu-pid "$riptide_pid" --cpu-pid "$redis_pid" \
        --json > "$work/$1.json"
    python3 - "$1" "$work/$1.json" <<'PY'
import json, sys
label, path = sys.argv[1:]
r = json.load(open(path))
cpu = [p["us_per_fulfilled"] for p in r["cpu"]["processes"]]
failed = sum(r["rejects"].values()) + sum(r["errors"].values())
print(f"{label:<10} {r['fulfilled_per_second']:9,.0f}/s  p50 {r['latency_ms']['p50']:6.2f} ms  p99 {r['latency_ms']['p99']:6.2f} ms  "
      f"riptide {cpu[0]:5.1f} us  Redis {cpu[1]:5.1f} us  failed {failed}")
PY
    kill "$riptide_pid"; wait "$riptide_pid" 2>/dev/null || true
}

limits='rate_limit_packets_per_second = 10000000
throughput_limit_per_second = 10000000000'
echo "# run        fulfilled/s   latency                  CPU per packet (${shards} shards, ${connections} connections)"
run none ''
run dataplane "$limits"
run shared "$limits
limit_scope = \"shared\""
