#!/usr/bin/env bash
# Soak: riptide between the loader and the sink at a fixed rate (open loop) for
# minutes, one line per window: what was answered, the latency quantiles, and
# riptide's resident memory. Flat memory and a steady p99 over the whole run are the
# point; a leak or a growing queue shows as a trend.
# Usage: benches/soak.sh [minutes] [rate] [window-seconds] [connections] [shards]
#   LEDGER=tigerbeetle for TigerBeetle instead of the embedded ledger.
# Needs release binaries: cargo build --release --all-features -p riptide-dataplane -p riptide-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
minutes="${1:-5}"
rate="${2:-10000}"
window="${3:-30}"
connections="${4:-64}"
shards="${5:-2}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

start_sink
connector_port="$(free_port)"
admin_port="$(free_port)"
if [ "${LEDGER:-memory}" = tigerbeetle ]; then
    start_tigerbeetle
    ledger="kind = \"tigerbeetle\"
addresses = \"127.0.0.1:${tb_port}\""
else
    ledger='kind = "memory"'
fi
forwarding_config "$ledger" > "$work/soak.toml"
"$target/riptide" --config "$work/soak.toml" --shards "$shards" 2>"$work/soak.log" & pids+=($!)
riptide_pid=$!
wait_port "$connector_port"

echo "# soak: ${LEDGER:-memory} ledger, ${rate}/s open loop, ${connections} connections, ${shards} shards, ${minutes} min in ${window} s windows"
printf "%8s %10s %10s %10s %9s %9s %9s %9s\n" minute answered/s fulfilled failed p50_ms p99_ms max_ms rss_mib
echo "start $(rss_mib "$riptide_pid") MiB resident"
windows=$(( minutes * 60 / window ))
for i in $(seq 1 "$windows"); do
    result="$("$target/riptide-loadgen" send --target "http://127.0.0.1:${connector_port}/ilp" \
        --token loader-token-0123456789 --destination test.sink.soak --connections "$connections" \
        --rate "$rate" --duration-s "$window" --warmup-s 0 --amount 1 --json)"
    python3 - "$i" "$window" "$(rss_mib "$riptide_pid")" "$result" <<'PY'
import json, sys
index, window, rss, result = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
latency = result["latency_ms"]
failed = sum(result["rejects"].values()) + sum(result["errors"].values())
kinds = {**result["rejects"], **result["errors"]}
print(f"{index * window / 60:8.1f} {result['answered_per_second']:10.0f} {result['fulfilled']:10d} {failed:10d} "
      f"{latency['p50']:9.2f} {latency['p99']:9.2f} {latency['max']:9.2f} {rss:>9}"
      + (f"  {kinds}" if kinds else ""))
PY
done
