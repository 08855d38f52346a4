#!/usr/bin/env bash
# A/B of riptide builds: closed-loop forwarding (embedded ledger, the configuration of
# forwarding.sh) through each binary in turn, for a number of rounds, so that a change
# is compared against the build before it under the same drift of a noisy machine.
# Prints one line per run (binary, fulfilled packets/s, p99 ms, riptide CPU µs per
# packet), then each binary's averages.
# Usage: benches/ab.sh seconds connections rounds binary[@shards[,pipeline]]...
#   A binary runs on SHARDS shards (default 2), or on the count after its @: the same
#   binary twice, as riptide@1 and riptide@2, compares shard counts side by side.
#   After a comma, the sink peer's outgoing_pipeline_max (default SINK_PIPELINE_MAX,
#   see common.sh): riptide@2,1 against riptide@2,16 compares bursts.
#   LEDGER=tigerbeetle runs every binary against one TigerBeetle (started here, shared
#   by the runs) instead of the embedded ledger.
# Needs release binaries of riptide-loadgen (cargo build --release -p riptide-loadgen).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
[ "$#" -ge 4 ] || { echo "usage: benches/ab.sh seconds connections rounds binary[@shards[,pipeline]]..." >&2; exit 2; }
seconds="$1"; connections="$2"; rounds="$3"; shift 3
shards="${SHARDS:-2}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

start_sink
ledger_section='kind = "memory"'
if [ "${LEDGER:-memory}" = "tigerbeetle" ]; then
    start_tigerbeetle
    ledger_section="kind = \"tigerbeetle\"
addresses = \"127.0.0.1:${tb_port}\""
fi
results="$work/results.tsv"
default_sink_pipeline_max="$sink_pipeline_max"
for _ in $(seq 1 "$rounds"); do
    for run in "$@"; do
        binary="${run%@*}"
        run_shards="$shards"
        sink_pipeline_max="$default_sink_pipeline_max"
        if [ "$binary" != "$run" ]; then
            run_shards="${run##*@}"
            if [ "${run_shards#*,}" != "$run_shards" ]; then
                sink_pipeline_max="${run_shards#*,}"
                run_shards="${run_shards%%,*}"
            fi
        fi
        connector_port="$(free_port)"
        admin_port="$(free_port)"
        forwarding_config "$ledger_section" > "$work/riptide.toml"
        "$binary" --config "$work/riptide.toml" --shards "$run_shards" 2>"$work/riptide.log" & pids+=($!)
        riptide_pid=$!
        wait_port "$connector_port"
        "$target/riptide-loadgen" send --target "http://127.0.0.1:${connector_port}/ilp" \
            --token loader-token-0123456789 --destination test.sink.bench \
            --connections "$connections" --warmup-s 1 --duration-s "$seconds" --amount 1 \
            --cpu-pid "$riptide_pid" --json \
            | python3 -c 'import json, sys
r = json.load(sys.stdin)
cpu = r["cpu"]["processes"][0]["us_per_fulfilled"]
print("%s\t%.0f\t%.3f\t%.1f" % (sys.argv[1], r["fulfilled_per_second"], r["latency_ms"]["p99"], cpu))' "$run" \
            | tee -a "$results"
        kill "$riptide_pid"; wait "$riptide_pid" 2>/dev/null || true
    done
done
python3 - "$results" <<'PY'
import sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    binary, pps, p99, cpu = line.rstrip("\n").split("\t")
    runs[binary].append((float(pps), float(p99), float(cpu)))
for binary, rows in runs.items():
    n = len(rows)
    print("# %s: %d runs, %.0f packets/s, p99 %.3f ms, %.1f us CPU per packet (averages)" % (
        binary, n, sum(r[0] for r in rows) / n, sum(r[1] for r in rows) / n, sum(r[2] for r in rows) / n))
PY
