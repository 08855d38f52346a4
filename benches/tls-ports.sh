#!/usr/bin/env bash
# What serving TLS on the packet port costs riptide: two riptides with the same
# state, one with a plain connector port and one with `[tls] connector_port`,
# forwarding to the same loader sink; the loader (riptide-loadgen send, https://
# with --ca-file for the second) loads one, then the other, twice, in one run.
# Kept connections: the figure is the cost per packet of TLS records, not of
# handshakes. Certificates come from openssl (a CA, and a certificate naming
# 127.0.0.1).
# Usage: benches/tls-ports.sh [seconds] [connections] [shards]
# Needs release binaries (cargo build --release --all-features -p riptide-dataplane
# -p riptide-loadgen).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-16}"
shards="${3:-1}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

make_bench_certificate riptide IP:127.0.0.1

start_sink
declare -A port pid
for kind in plain tls; do
    connector_port="$(free_port)"
    admin_port="$(free_port)"
    {
        forwarding_config 'kind = "memory"'
        if [ "$kind" = tls ]; then
            printf '\n[tls]\ncert_file = "%s"\nkey_file = "%s"\nconnector_port = true\n' \
                "$work/riptide.pem" "$work/riptide.key"
        fi
    } > "$work/$kind.toml"
    "$target/riptide" --config "$work/$kind.toml" --shards "$shards" 2>"$work/$kind.log" & pids+=($!)
    pid[$kind]=$!
    port[$kind]=$connector_port
    wait_port "$connector_port"
done

echo "# The packet port over plain HTTP and over TLS: ${shards} shard(s) each, ${connections} kept connections, ${seconds} s each, the same sink"
for kind in plain tls plain tls; do
    scheme=http
    ca=()
    if [ "$kind" = tls ]; then
        scheme=https
        ca=(--ca-file "$work/ca.pem")
    fi
    "$target/riptide-loadgen" send --target "${scheme}://127.0.0.1:${port[$kind]}/ilp" "${ca[@]}" \
        --token loader-token-0123456789 --destination test.sink.bench \
        --connections "$connections" --duration-s "$seconds" --amount 1 \
        --cpu-pid "${pid[$kind]}" --json \
        | python3 -c "
import json, sys
r = json.load(sys.stdin)
l = r['latency_ms']
cpu = r['cpu']['us_per_fulfilled'] if r['cpu'] else None
failed = sum(r['rejects'].values()) + sum(r['errors'].values())
print(f\"{sys.argv[1]:<6} {r['fulfilled_per_second']:8.0f}/s  p50 {l['p50']:.2f} ms  p99 {l['p99']:.2f} ms  riptide {cpu:.1f} us/packet  failed {failed}\")
" "$kind"
done
