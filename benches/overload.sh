#!/usr/bin/env bash
# Overload: offered twice what riptide can serve, does it answer the excess T03 at
# once while the packets it accepts keep their latency, and does its memory stay
# flat? The sink holds each Prepare `delay` ms, so riptide's capacity is known:
# shards x in_flight_max / delay packets a second. The loader first sends at that
# capacity, then at twice it (open loop, enough connections to keep the excess
# arriving), and the lines compare the two.
# Usage: benches/overload.sh [seconds] [in_flight_max] [delay-ms] [shards]
# Needs release binaries: cargo build --release --all-features -p riptide-dataplane -p riptide-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
in_flight_max="${2:-64}"
delay_ms="${3:-50}"
shards="${4:-2}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

sink_port="$(free_port)"
"$target/riptide-loadgen" sink --listen "127.0.0.1:${sink_port}" --delay-ms "$delay_ms" 2>/dev/null & pids+=($!)
wait_port "$sink_port"
connector_port="$(free_port)"
admin_port="$(free_port)"
# One Prepare per connection to the sink: a burst would share the delay.
sink_pipeline_max=''
forwarding_config 'kind = "memory"' \
    | sed "s/^admin_token = .*/&\nin_flight_max = ${in_flight_max}/" > "$work/overload.toml"
"$target/riptide" --config "$work/overload.toml" --shards "$shards" 2>"$work/overload.log" & pids+=($!)
riptide_pid=$!
wait_port "$connector_port"

capacity=$(( shards * in_flight_max * 1000 / delay_ms ))
echo "# overload: ${shards} shards x in_flight_max ${in_flight_max}, sink delay ${delay_ms} ms: capacity ${capacity}/s"
printf "%-10s %8s %11s %10s %9s %9s %9s %9s %9s\n" offered rate fulfilled/s T03/s other p50_ms p99_ms max_ms rss_mib
for factor in 1 2; do
    rate=$(( capacity * factor ))
    # Enough connections that each sends one packet per delay at the offered rate,
    # with room: the loader keeps one request in flight per connection.
    connections=$(( rate * delay_ms / 1000 * 2 ))
    result="$("$target/riptide-loadgen" send --target "http://127.0.0.1:${connector_port}/ilp" \
        --token loader-token-0123456789 --destination test.sink.overload --connections "$connections" \
        --rate "$rate" --duration-s "$seconds" --amount 1 --json)"
    python3 - "${factor}x" "$rate" "$(rss_mib "$riptide_pid")" "$result" <<'PY'
import json, sys
label, rate, rss, result = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
seconds = result["seconds"]
busy = result["rejects"].get("T03", 0)
other = sum(result["rejects"].values()) - busy + sum(result["errors"].values())
latency = result["latency_ms"]
print(f"{label:<10} {rate:8d} {result['fulfilled'] / seconds:11.0f} {busy / seconds:10.0f} {other:9d} "
      f"{latency['p50']:9.2f} {latency['p99']:9.2f} {latency['max']:9.2f} {rss:>9}")
PY
done
