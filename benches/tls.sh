#!/usr/bin/env bash
# What TLS to a peer costs riptide: the same Node sink (tests/interop/https_sink.js,
# Node's http and https servers with ilp-packet) over plain HTTP and over TLS, one
# after the other in one run, closed loop through riptide (embedded ledger). The
# sink, not riptide, bounds the rate here, so the figure to compare is riptide's CPU
# per packet (and the p99). Certificates come from openssl: a CA pinned for the peer
# and a certificate for localhost.
# Usage: benches/tls.sh [seconds] [connections] [shards]
# Needs release binaries (cargo build --release --all-features -p riptide-dataplane
# -p riptide-loadgen) and the npm packages (scripts/setup-npm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-16}"
shards="${3:-2}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

make_bench_certificate sink DNS:localhost

tls_port="$(free_port)"
plain_port="$(free_port)"
node tests/interop/https_sink.js "$tls_port" "$work/sink.key" "$work/sink.pem" to-sink-token-0123456789 >/dev/null & pids+=($!)
node tests/interop/https_sink.js "$plain_port" plain - to-sink-token-0123456789 >/dev/null & pids+=($!)
wait_port "$tls_port"
wait_port "$plain_port"

connector_port="$(free_port)"
admin_port="$(free_port)"
public_port="$(free_port)"
{
    node_config
    printf '[ledger]\nkind = "memory"\n\n'
    asset_and_loader_config
    printf '\n[[peers]]\nid = "tls"\nasset = "USD"\noutgoing_url = "https://localhost:%s/ilp"\noutgoing_token = "to-sink-token-0123456789"\nroutes = ["test.tls"]\noutgoing_ca_pem = """\n%s\n"""\n' \
        "$tls_port" "$(cat "$work/ca.pem")"
    printf '\n[[peers]]\nid = "plain"\nasset = "USD"\noutgoing_url = "http://127.0.0.1:%s/ilp"\noutgoing_token = "to-sink-token-0123456789"\nroutes = ["test.plain"]\n' \
        "$plain_port"
} > "$work/tls.toml"
"$target/riptide" --config "$work/tls.toml" --shards "$shards" 2>"$work/riptide.log" & pids+=($!)
riptide_pid=$!
sleep 0.5
kill -0 "$riptide_pid" 2>/dev/null || { cat "$work/riptide.log" >&2; exit 1; }
wait_port "$connector_port"

echo "# TLS to a peer: ${shards} shards, ${connections} connections, ${seconds} s each, the same Node sink"
for peer in plain tls plain tls; do
    "$target/riptide-loadgen" send --target "http://127.0.0.1:${connector_port}/ilp" \
        --token loader-token-0123456789 --destination "test.${peer}.bench" \
        --connections "$connections" --duration-s "$seconds" --amount 1 --cpu-pid "$riptide_pid" --json \
        | python3 -c "
import json, sys
r = json.load(sys.stdin)
l = r['latency_ms']
cpu = r['cpu']['us_per_fulfilled'] if r['cpu'] else None
failed = sum(r['rejects'].values()) + sum(r['errors'].values())
print(f\"{sys.argv[1]:<6} {r['fulfilled_per_second']:8.0f}/s  p50 {l['p50']:.2f} ms  p99 {l['p99']:.2f} ms  riptide {cpu:.1f} us/packet  failed {failed}\")
" "$peer"
done
