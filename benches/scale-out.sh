#!/usr/bin/env bash
# Local STREAM receive through 1, 2 and 3 data planes behind HAProxy (mode tcp,
# round robin), all on one TigerBeetle and one Redis Cluster of 3 primaries, in one
# run: what adding data planes gives on this machine. Every process shares the same
# cores, so on a 2-core machine the figures show the cost of a data plane, not the
# scaling of a fleet of hosts.
#   REDIS_WAIT_REPLICAS=1 adds a replica per primary and waits for it per credit.
# Each run reports fulfilled/s, p50, p99, and the CPU time per packet of every
# riptide together, of TigerBeetle, of the Redis nodes together and of HAProxy.
# Usage: benches/scale-out.sh [seconds] [connections] [shards per data plane]
# Needs haproxy (Debian) and release binaries:
# cargo build --release --all-features -p riptide-dataplane -p riptide-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-64}"
shards="${3:-1}"
wait_replicas="${REDIS_WAIT_REPLICAS:-0}"
target="${CARGO_TARGET_DIR:-target}/release"
haproxy_bin="$(command -v haproxy || echo /usr/sbin/haproxy)"
# shellcheck source=benches/common.sh
source benches/common.sh

[ -x "$haproxy_bin" ] || { echo "benches/scale-out.sh: needs haproxy (apt-get install haproxy)" >&2; exit 1; }
ticks_per_second="$(getconf CLK_TCK)"
cpu_ticks() { local sum=0; for pid in "$@"; do sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done; echo "$sum"; }

start_tigerbeetle
replicas=0; [ "$wait_replicas" -gt 0 ] && replicas=1
start_redis_cluster "$replicas"

config() {
    node_config
    cat <<TOML
[ledger]
kind = "tigerbeetle"
addresses = "127.0.0.1:${tb_port}"

[receipts]
redis_url = "redis://${redis_nodes[0]}/"
redis_cluster = true
redis_wait_replicas = ${wait_replicas}

$(asset_and_loader_config)

[[wallets]]
id = "shop"
asset = "USD"
TOML
}

echo "# data planes, fulfilled/s, p50 ms, p99 ms, CPU us per packet: riptides, TigerBeetle, Redis, HAProxy (shards ${shards} each, ${connections} connections, wait_replicas ${wait_replicas})"
for count in 1 2 3; do
    riptide_pids=(); backends=""; first_public=""
    for index in $(seq 1 "$count"); do
        connector_port="$(free_port)"; admin_port="$(free_port)"; public_port="$(free_port)"
        config > "$work/riptide-$count-$index.toml"
        "$target/riptide" --config "$work/riptide-$count-$index.toml" --shards "$shards" \
            2>"$work/riptide-$count-$index.log" & pids+=($!)
        riptide_pids+=($!)
        wait_port "$connector_port"; wait_port "$public_port"
        backends+="    server riptide${index} 127.0.0.1:${connector_port} check inter 1s"$'\n'
        [ -n "$first_public" ] || first_public="$public_port"
    done
    balancer_port="$(free_port)"
    cat > "$work/haproxy-$count.cfg" <<CFG
global
    maxconn 8192
defaults
    mode tcp
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend packets
    bind 127.0.0.1:${balancer_port}
    default_backend riptides
backend riptides
    balance roundrobin
${backends}
CFG
    "$haproxy_bin" -db -f "$work/haproxy-$count.cfg" >/dev/null 2>&1 & pids+=($!)
    haproxy_pid=$!
    wait_port "$balancer_port"
    # Warm-up, then the measured run with every process's CPU around it.
    "$target/riptide-loadgen" stream --target "http://127.0.0.1:${balancer_port}/ilp" \
        --token loader-token-0123456789 --spsp "http://127.0.0.1:${first_public}/shop" \
        --connections "$connections" --duration-s 2 --amount 1 --json >/dev/null
    before=("$(cpu_ticks "${riptide_pids[@]}")" "$(cpu_ticks "$tb_pid")" "$(cpu_ticks "${redis_pids[@]}")" "$(cpu_ticks "$haproxy_pid")")
    "$target/riptide-loadgen" stream --target "http://127.0.0.1:${balancer_port}/ilp" \
        --token loader-token-0123456789 --spsp "http://127.0.0.1:${first_public}/shop" \
        --connections "$connections" --duration-s "$seconds" --amount 1 --json > "$work/run-$count.json"
    after=("$(cpu_ticks "${riptide_pids[@]}")" "$(cpu_ticks "$tb_pid")" "$(cpu_ticks "${redis_pids[@]}")" "$(cpu_ticks "$haproxy_pid")")
    python3 - "$count" "$ticks_per_second" "$work/run-$count.json" "${before[@]}" "${after[@]}" <<'PY'
import json, sys
count, hz, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
before = [int(x) for x in sys.argv[4:8]]
after = [int(x) for x in sys.argv[8:12]]
r = json.load(open(path))
fulfilled = max(1, r["fulfilled"])
cpu = [(a - b) / hz * 1e6 / fulfilled for a, b in zip(after, before)]
failed = sum(r["rejects"].values()) + sum(r["errors"].values())
print(f"{count}  {r['fulfilled_per_second']:9,.0f}/s  p50 {r['latency_ms']['p50']:6.2f}  p99 {r['latency_ms']['p99']:7.2f}  "
      f"CPU us: riptides {cpu[0]:5.1f}  TigerBeetle {cpu[1]:5.1f}  Redis {cpu[2]:5.1f}  HAProxy {cpu[3]:5.1f}  failed {failed}")
PY
    kill "$haproxy_pid" "${riptide_pids[@]}"; wait "$haproxy_pid" "${riptide_pids[@]}" 2>/dev/null || true
done
