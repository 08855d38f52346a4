#!/usr/bin/env bash
# A peer's latency while others hold thousands of connections open half way (each
# sent the start of a head promising a 64 KiB body): quiet first, then with the
# connections held, in one run. The held connections come from several loopback
# sources, each within connections.per_source_max; the peer sends from 127.0.0.1.
# Usage: benches/held-connections.sh [held] [seconds] [connections] [shards]
# Needs release binaries: cargo build --release --all-features -p riptide-dataplane -p riptide-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
held="${1:-6000}"
seconds="${2:-10}"
connections="${3:-16}"
shards="${4:-2}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

start_sink
connector_port="$(free_port)"
admin_port="$(free_port)"
# The head deadline is raised so that the connections stay held for the whole run
# (by default each would be closed 10 s after its first byte).
{ forwarding_config 'kind = "memory"'; printf '\n[connections]\nhead_timeout_ms = 600000\n'; } > "$work/held.toml"
"$target/riptide" --config "$work/held.toml" --shards "$shards" 2>"$work/held.log" & pids+=($!)
riptide_pid=$!
wait_port "$connector_port"

send() { # $1 label
    result="$("$target/riptide-loadgen" send --target "http://127.0.0.1:${connector_port}/ilp" \
        --token loader-token-0123456789 --destination test.sink.held --connections "$connections" \
        --duration-s "$seconds" --amount 1 --json)"
    python3 - "$1" "$(rss_mib "$riptide_pid")" "$result" <<'PY'
import json, sys
label, rss, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
l = r['latency_ms']
failed = sum(r['rejects'].values()) + sum(r['errors'].values())
print(f"{label:<16} {r['fulfilled_per_second']:8.0f}/s  p50 {l['p50']:.2f} ms  p99 {l['p99']:.2f} ms  "
      f"max {l['max']:.2f} ms  failed {failed}  riptide rss {rss} MiB" + (f"  {r['rejects']} {r['errors']}" if failed else ""))
PY
}

echo "# held connections: ${shards} shards, ${connections} peer connections, ${seconds} s each"
send "quiet"
python3 - "$connector_port" "$held" > "$work/holder.out" 2>&1 <<'PY' & pids+=($!)
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(count):
    source = f"127.0.0.{2 + i // 1000}"
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /ilp HTTP/1.1\r\nContent-Length: 65536\r\n")
    held.append(s)
print(f"holding {len(held)}", flush=True)
time.sleep(3600)
PY
for _ in $(seq 1 600); do grep -q holding "$work/holder.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/holder.out"
open_now="$(curl -s -H "Authorization: Bearer bench-admin-token-0123456789" "http://127.0.0.1:${admin_port}/metrics" \
    | awk '/^riptide_connections_open\{port="connector"\}/ { print $2 }')"
send "with ${open_now} open"
