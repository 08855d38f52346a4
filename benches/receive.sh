#!/usr/bin/env bash
# Local STREAM receive end to end on this machine, side by side in one run: STREAM
# payments over SPSP to a wallet (loader -> riptide's receiver), each packet decrypted,
# credited in the ledger, counted in the receipt store and answered encrypted:
#   1. embedded ledger and embedded store,
#   2. TigerBeetle and Redis (the production backends),
#   3. TigerBeetle and a Redis Cluster of 3 primaries (redis_cluster = true).
# Each run reports the CPU time per fulfilled packet of riptide and, where they
# run, of TigerBeetle and the Redis nodes (in that order, `cpu.processes`), and
# Redis's commands per fulfilled packet, from its own INFO commandstats.
# Usage: benches/receive.sh [seconds] [connections] [shards]
#   RIPTIDE=<binary> runs that riptide instead of the tree's release build (for A/B).
#   RUNS="receive-tigerbeetle-redis ..." runs only the runs named (labels below).
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

config() { # $1 ledger section, $2 receipts section
    node_config
    cat <<TOML
[ledger]
$1

[receipts]
$2

$(asset_and_loader_config)

[[wallets]]
id = "shop"
asset = "USD"
TOML
}

run() { # $1 label, $2 ledger section, $3 receipts section; $4... the engines' pids
    local label="$1" ledger="$2" receipts="$3" cpu_pids=()
    shift 3
    [[ -z "${RUNS:-}" || " $RUNS " == *" $label "* ]] || return 0
    connector_port="$(free_port)"; admin_port="$(free_port)"; public_port="$(free_port)"
    config "$ledger" "$receipts" > "$work/$label.toml"
    "${RIPTIDE:-$target/riptide}" --config "$work/$label.toml" --shards "$shards" 2>"$work/$label.log" & pids+=($!)
    for pid in "${pids[-1]}" "$@"; do cpu_pids+=(--cpu-pid "$pid"); done
    wait_port "$connector_port"; wait_port "$public_port"
    save_balances_before
    reset_redis_stats
    "$target/riptide-loadgen" stream --target "http://127.0.0.1:${connector_port}/ilp" \
        --token loader-token-0123456789 --spsp "http://127.0.0.1:${public_port}/shop" \
        --connections "$connections" --duration-s "$seconds" --amount 1 --json "${cpu_pids[@]}" \
        | sed "s/^/{\"run\":\"$label\",\"result\":/; s/\$/}/"
    sleep 1.1 # the shards publish their counters once a second
    curl -s -H "Authorization: Bearer bench-admin-token-0123456789" "http://127.0.0.1:${admin_port}/metrics" \
        > "$work/metrics.txt"
    awk '/^riptide_store_pipelines_total/ { p = $2 } /^riptide_store_pipeline_ops_total/ { o = $2 }
         /^riptide_ledger_batch_events\{quantile="0.5"\}/ { e = $2 }
         END { if (p > 0) printf "# Redis pipelines (warm-up included): %d, %.1f operations each; ", p, o / p;
               printf "ledger requests: %s transfers at the median\n", e }' "$work/metrics.txt"
    report_redis_commands
    # Every Fulfill booked exactly, by the ledger's own balances (benches/booked.py);
    # the ledger is shared by the runs on TigerBeetle, so from the balances before.
    check_booked receiving:shop
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
}

stat_nodes=()
run "receive-embedded" 'kind = "memory"' ''

start_tigerbeetle
redis_port="$(free_port)"
"$RIPTIDE_REDIS_SERVER" --save '' --appendonly no --bind 127.0.0.1 --port "$redis_port" >/dev/null 2>&1 & pids+=($!)
redis_pid=$!
wait_port "$redis_port"
stat_nodes=("127.0.0.1:$redis_port")
run "receive-tigerbeetle-redis" "kind = \"tigerbeetle\"
addresses = \"127.0.0.1:${tb_port}\"" "redis_url = \"redis://127.0.0.1:${redis_port}/\"" "$tb_pid" "$redis_pid"
start_redis_cluster 0
stat_nodes=("${redis_nodes[@]}")
run "receive-tigerbeetle-redis-cluster" "kind = \"tigerbeetle\"
addresses = \"127.0.0.1:${tb_port}\"" "redis_url = \"redis://${redis_nodes[0]}/\"
redis_cluster = true" "$tb_pid" "${redis_pids[@]}"
