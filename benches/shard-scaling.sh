#!/usr/bin/env bash
# Shard scaling, for a host with many cores: riptide (embedded ledger, the peers of
# forwarding.sh, bursts to the sink) on 1, 2, 4, ... shards, each executor pinned to
# a CPU of its own (`--cpus`), while the loader and the sink are pinned (taskset) to
# CPUs riptide never uses: riptide takes the first MAX_SHARDS CPUs for every run,
# the loader the first half of the rest, the sink the second half (on a host with
# one CPU left over, they share it). The same loader and sink CPUs for every shard
# count, so only riptide's share changes. First the loader straight to the sink on
# those CPUs (what the tools alone reach), then riptide at each shard count, each
# with wrk (when installed) and riptide-loadgen send, closed loop.
# Reports answered/s, p99, riptide's CPU per answer and that CPU against one
# shard's (issue 16 asks within 15% at 8 shards, and 300K packets/s).
# Usage: benches/shard-scaling.sh [seconds] [connections] [max shards]
#   max shards defaults to half the CPUs this process may use.
# Needs release binaries: cargo build --release -p riptide-dataplane -p riptide-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
seconds="${1:-10}"
connections="${2:-512}"
mapfile -t cpus < <(python3 -c 'import os; print("\n".join(str(c) for c in sorted(os.sched_getaffinity(0))))')
max_shards="${3:-$(( ${#cpus[@]} / 2 > 0 ? ${#cpus[@]} / 2 : 1 ))}"
target="${CARGO_TARGET_DIR:-target}/release"
# shellcheck source=benches/common.sh
source benches/common.sh

[ "$max_shards" -lt "${#cpus[@]}" ] || { echo "benches/shard-scaling.sh: ${#cpus[@]} CPUs leave none for the loader and the sink at $max_shards shards" >&2; exit 2; }
join() { local IFS=,; echo "$*"; }
rest=("${cpus[@]:max_shards}")
half=$(( ${#rest[@]} / 2 > 0 ? ${#rest[@]} / 2 : 1 ))
loader_cpus="$(join "${rest[@]:0:half}")"
sink_cpus="$(join "${rest[@]:$(( ${#rest[@]} > 1 ? half : 0 ))}")"
loader_threads="$(awk -F, '{ print NF }' <<<"$loader_cpus")"
sink_threads="$(awk -F, '{ print NF }' <<<"$sink_cpus")"
echo "# CPUs: riptide ${cpus[*]:0:max_shards}; loader ${loader_cpus} (${loader_threads} threads); sink ${sink_cpus} (${sink_threads} threads)"

sink_port="$(free_port)"
taskset -c "$sink_cpus" "$target/riptide-loadgen" sink --listen "127.0.0.1:${sink_port}" \
    --threads "$sink_threads" 2>/dev/null & pids+=($!)
wait_port "$sink_port"
python3 benches/wrk/prepares.py 100000 test.sink.bench 3600 > "$work/prepares.hex"
ticks_per_second="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# $1 label, $2 URL, $3 pid whose CPU is counted (empty: none); prints one line per loader.
measure() {
    local before after
    if command -v wrk >/dev/null; then
        [ -n "$3" ] && before="$(cpu_ticks "$3")"
        PREPARES="$work/prepares.hex" TOKEN=loader-token-0123456789 taskset -c "$loader_cpus" \
            wrk -t"$loader_threads" -c"$connections" -d"${seconds}s" -s benches/wrk/prepares.lua "$2" > "$work/wrk.out"
        [ -n "$3" ] && after="$(cpu_ticks "$3")"
        python3 - "$1" "${before:-0}" "${after:-0}" "$ticks_per_second" "$work/wrk.out" <<'PY'
import json, sys
label, before, after, hz, path = sys.argv[1:]
r = json.loads([l for l in open(path) if l.startswith("{")][-1])
cpu = (int(after) - int(before)) / int(hz) * 1e6 / max(1, r["requests"])
cpu_text = f"{cpu:6.1f} us/answer" if after != "0" else ""
print(f"{label:<16} wrk      {r['requests'] / r['seconds']:10,.0f}/s  p99 {r['p99_ms']:7.2f} ms  {cpu_text}  non-2xx {r['non_2xx']} errors {r['socket_errors']}")
PY
    fi
    local cpu_pid=()
    [ -n "$3" ] && cpu_pid=(--cpu-pid "$3")
    taskset -c "$loader_cpus" "$target/riptide-loadgen" send --target "$2" --token loader-token-0123456789 \
        --destination test.sink.bench --connections "$connections" --threads "$loader_threads" \
        --warmup-s 1 --duration-s "$seconds" --amount 1 "${cpu_pid[@]}" --json > "$work/loadgen.out"
    python3 - "$1" "$work/loadgen.out" <<'PY'
import json, sys
label, path = sys.argv[1:]
r = json.load(open(path))
processes = r["cpu"]["processes"] if r.get("cpu") else []
cpu_text = f"{processes[0]['us_per_fulfilled']:6.1f} us/answer" if processes else ""
failed = sum(r["rejects"].values()) + sum(r["errors"].values())
print(f"{label:<16} loadgen  {r['fulfilled_per_second']:10,.0f}/s  p99 {r['latency_ms']['p99']:7.2f} ms  {cpu_text}  failed {failed}")
PY
}

echo "# run              loader    answered/s  latency        riptide CPU"
measure "bare sink" "http://127.0.0.1:${sink_port}/ilp" ""
shards=1
while [ "$shards" -le "$max_shards" ]; do
    connector_port="$(free_port)"; admin_port="$(free_port)"
    forwarding_config 'kind = "memory"' > "$work/riptide.toml"
    "$target/riptide" --config "$work/riptide.toml" --shards "$shards" \
        --cpus "$(join "${cpus[@]:0:shards}")" 2>"$work/riptide.log" & pids+=($!)
    riptide_pid=$!
    wait_port "$connector_port"
    measure "riptide@${shards}" "http://127.0.0.1:${connector_port}/ilp" "$riptide_pid"
    kill "$riptide_pid"; wait "$riptide_pid" 2>/dev/null || true
    shards=$(( shards * 2 ))
done
