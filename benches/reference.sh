#!/usr/bin/env bash
# Riptide against the JS reference connector, side by side in one run, same loader,
# same sink, same machine:
#   a. the loader straight to the sink (no connector: the ceiling of the loader),
#   b. through riptide (embedded ledger, same peers as forwarding.sh), closed loop,
#   c. through ilp-connector (npm, ILP-over-HTTP peers via ilp-plugin-http), closed loop,
#   d. through riptide again, open loop at half of its maximum from b;
#   and with BASELINE_RIPTIDE set to an earlier build's binary, b and d again with it
#   (its sink peer's outgoing_pipeline_max is BASELINE_SINK_PIPELINE_MAX, by default
#   the same as riptide's: SINK_PIPELINE_MAX, see common.sh; empty leaves it out).
# Each load run reports the CPU time of the process in the middle (the sink in a) over
# its measured window, so CPU microseconds per fulfilled packet. Then the ratios.
# Usage: benches/reference.sh [seconds] [connections] [shards]
#   WARMUP_S (default 1) and REFERENCE_WARMUP_S (default 5, for ilp-connector) set the
#   unrecorded warm-up before each measured window.
# Needs release binaries: cargo build --release -p riptide-dataplane -p riptide-loadgen
# (--all-features binaries work too) and Node.js with npm.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-32}"
shards="${3:-2}"
# Unrecorded warm-up before each measured window; node's JIT needs a few seconds before
# ilp-connector reaches its rate (about a third of it in the first second here).
warmup="${WARMUP_S:-1}"
reference_warmup="${REFERENCE_WARMUP_S:-5}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

command -v node >/dev/null && command -v npm >/dev/null \
    || { echo "benches/reference.sh: needs Node.js and npm for ilp-connector" >&2; exit 1; }
# The reference connector's pinned packages (benches/reference/package-lock.json).
if [ ! -d benches/reference/node_modules ]; then
    (cd benches/reference && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

start_sink

results="$work/results.jsonl"
send() { # $1 target url, $2 label, $3 pid to measure, $4 warm-up s, then extra loadgen options
    local url="$1" label="$2" pid="$3" warmup_s="$4"
    shift 4
    "$target/riptide-loadgen" send --target "$url" --token loader-token-0123456789 \
        --destination test.sink.bench --connections "$connections" --warmup-s "$warmup_s" \
        --duration-s "$seconds" --amount 1 --cpu-pid "$pid" --json "$@" \
        | sed "s/^/{\"run\":\"${label}\",\"result\":/; s/\$/}/" | tee -a "$results"
}

# a. No connector.
send "http://127.0.0.1:${sink_port}/ilp" "loader-to-sink" "$sink_pid" "$warmup"

# b and d. Riptide, embedded ledger; the same configuration as benches/forwarding.sh.
# $1 the binary, $2 the label of its runs, $3 its sink peer's outgoing_pipeline_max.
riptide_runs() {
    local binary="$1" label="$2" sink_pipeline_max="$3"
    local connector_port admin_port
    connector_port="$(free_port)"
    admin_port="$(free_port)"
    forwarding_config 'kind = "memory"' > "$work/riptide.toml"
    "$binary" --config "$work/riptide.toml" --shards "$shards" 2>"$work/riptide.log" & pids+=($!)
    local riptide_pid=$!
    wait_port "$connector_port"
    send "http://127.0.0.1:${connector_port}/ilp" "$label" "$riptide_pid" "$warmup"
    local half_rate
    half_rate="$(python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
print(max(1, int([r for r in rows if r["run"]==sys.argv[2]][-1]["result"]["fulfilled_per_second"] / 2)))' "$results" "$label")"
    send "http://127.0.0.1:${connector_port}/ilp" "${label}-half-load" "$riptide_pid" "$warmup" --rate "$half_rate"
    kill "$riptide_pid"; wait "$riptide_pid" 2>/dev/null || true
}
riptide_runs "$target/riptide" riptide-memory-ledger "$sink_pipeline_max"
# An earlier build, to compare a change side by side: BASELINE_RIPTIDE=path/to/riptide.
if [ -n "${BASELINE_RIPTIDE:-}" ]; then
    riptide_runs "$BASELINE_RIPTIDE" riptide-baseline "${BASELINE_SINK_PIPELINE_MAX-$sink_pipeline_max}"
fi

# c. ilp-connector: the same peers, USD scale 2, 1:1, no spread, no rate limit.
start_reference
send "http://127.0.0.1:${loader_port}/ilp" "ilp-connector" "$reference_pid" "$reference_warmup"
echo "# ilp-connector $(node -p 'require("./benches/reference/node_modules/ilp-connector/package.json").version') on node $(node --version):" \
    "$(grep -c "deduplicate packet cache hit" "$work/reference.log" || true) answers from its duplicate-packet cache"
kill "$reference_pid"; wait "$reference_pid" 2>/dev/null || true

# Ratios and goals.
python3 - "$results" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    rows[row["run"]] = row["result"]
sink, riptide, reference, half = (rows[k] for k in (
    "loader-to-sink", "riptide-memory-ledger", "ilp-connector", "riptide-memory-ledger-half-load"))

def cpu_us(result):
    processes = (result.get("cpu") or {}).get("processes") or []
    return processes[0]["us_per_fulfilled"] if processes else None

def ratio(a, b):
    return a / b if a is not None and b else None

summary = {
    "riptide_packets_per_second": riptide["fulfilled_per_second"],
    "reference_packets_per_second": reference["fulfilled_per_second"],
    "bare_sink_packets_per_second": sink["fulfilled_per_second"],
    "riptide_cpu_us_per_packet": cpu_us(riptide),
    "reference_cpu_us_per_packet": cpu_us(reference),
    "riptide_over_reference_packets_per_second": ratio(riptide["fulfilled_per_second"], reference["fulfilled_per_second"]),
    "reference_over_riptide_cpu_per_packet": ratio(cpu_us(reference), cpu_us(riptide)),
    "riptide_over_bare_sink_packets_per_second": ratio(riptide["fulfilled_per_second"], sink["fulfilled_per_second"]),
    "riptide_half_load_rate": half["fulfilled_per_second"],
    "riptide_half_load_p99_ms": half["latency_ms"]["p99"],
}
print(json.dumps({"run": "summary", "result": summary}))

def fmt(value, spec):
    return "-" if value is None else format(value, spec)

print("# %-32s %11s %11s %11s %11s %15s" % ("run", "fulfilled/s", "p50 ms", "p99 ms", "p99.9 ms", "CPU us/packet"))
names = ["loader-to-sink", "riptide-memory-ledger", "ilp-connector", "riptide-memory-ledger-half-load",
         "riptide-baseline", "riptide-baseline-half-load"]
for name in names:
    if name not in rows:
        continue
    r = rows[name]
    print("# %-32s %11s %11s %11s %11s %15s" % (
        name, fmt(r["fulfilled_per_second"], ",.0f"), fmt(r["latency_ms"]["p50"], ".3f"),
        fmt(r["latency_ms"]["p99"], ".3f"), fmt(r["latency_ms"]["p99.9"], ".3f"), fmt(cpu_us(r), ".1f")))
goals = [
    ("riptide / ilp-connector packets/s", summary["riptide_over_reference_packets_per_second"], ">=", 10, ".1f", "x"),
    ("ilp-connector / riptide CPU per packet", summary["reference_over_riptide_cpu_per_packet"], ">=", 50, ".1f", "x"),
    ("riptide / bare sink packets/s", summary["riptide_over_bare_sink_packets_per_second"], ">=", 0.40, ".0%", ""),
    ("riptide p99 at half load (ms)", summary["riptide_half_load_p99_ms"], "<", 5, ".3f", ""),
]
for label, value, op, goal, spec, unit in goals:
    met = value is not None and (value >= goal if op == ">=" else value < goal)
    print("# %-40s %10s%s  goal %s %s: %s" % (
        label, fmt(value, spec), unit, op, format(goal, spec) + unit, "met" if met else "NOT met"))
PY
