#!/usr/bin/env bash
# A/B of riptide builds on local STREAM receive: benches/receive.sh's run RUN (default
# receive-tigerbeetle-redis; receive-embedded, receive-tigerbeetle-redis-cluster) through
# each binary in turn, for a number of rounds, so that a change is compared with the
# build before it under the same drift of a noisy machine. Each run starts its own
# engines, as receive.sh does, and checks its money in the ledger.
# Prints one line per run (binary, fulfilled packets/s, p99 ms, riptide CPU µs per
# packet, and the engines' CPU µs per packet after it), then each binary's averages.
# Usage: benches/ab-receive.sh seconds connections rounds binary...
#   SHARDS sets riptide's shards (default 2). Each run starts every engine receive.sh
#   starts (TigerBeetle, one Redis, a Redis Cluster), whichever run it measures.
# Needs release binaries of riptide-loadgen (cargo build --release -p riptide-loadgen).
set -euo pipefail
[ "$#" -ge 4 ] || { echo "usage: benches/ab-receive.sh seconds connections rounds binary..." >&2; exit 2; }
seconds="$1"; connections="$2"; rounds="$3"; shift 3
binaries=()
for binary in "$@"; do
    binaries+=("$(realpath "$binary")")
done
cd "$(dirname "$0")/.."
run_label="${RUN:-receive-tigerbeetle-redis}"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for _ in $(seq 1 "$rounds"); do
    for binary in "${binaries[@]}"; do
        output="$(RIPTIDE="$binary" RUNS="$run_label" benches/receive.sh "$seconds" "$connections" "${SHARDS:-2}" 2>&1)" || {
            echo "$output" >&2
            echo "ab-receive: $binary: benches/receive.sh failed" >&2
            exit 1
        }
        if ! grep -q ': exact$' <<<"$output"; then
            echo "$output" >&2
            echo "ab-receive: $binary: the money did not check exact" >&2
            exit 1
        fi
        grep '^{' <<<"$output" | python3 -c 'import json, sys
r = json.loads(sys.stdin.readline())["result"]
cpu = [p["us_per_fulfilled"] for p in r["cpu"]["processes"]]
print("%s\t%.0f\t%.3f\t%.1f\t%s" % (sys.argv[1], r["fulfilled_per_second"], r["latency_ms"]["p99"],
    cpu[0], " + ".join("%.1f" % c for c in cpu[1:])))' "$binary" | tee -a "$results"
    done
done
python3 - "$results" <<'PY'
import sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    binary, pps, p99, cpu, _engines = line.rstrip("\n").split("\t")
    runs[binary].append((float(pps), float(p99), float(cpu)))
for binary, rows in runs.items():
    n = len(rows)
    print("# %s: %d runs, %.0f packets/s, p99 %.3f ms, %.1f us riptide CPU per packet (averages)" % (
        binary, n, sum(r[0] for r in rows) / n, sum(r[1] for r in rows) / n, sum(r[2] for r in rows) / n))
PY
