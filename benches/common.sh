# Helpers shared by the benchmark scripts (sourced, not run).
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# The loader's sink on a free port, from ${target}; sets sink_port and sink_pid.
# SINK_THREADS sets its worker threads (default: one per core).
start_sink() {
    sink_port="$(free_port)"
    "$target/riptide-loadgen" sink --listen "127.0.0.1:${sink_port}" --threads "${SINK_THREADS:-0}" \
        2>/dev/null & pids+=($!)
    sink_pid=$!
    wait_port "$sink_port"
}

# A single-replica TigerBeetle on a free port, formatted in the work folder; sets
# tb_port and tb_pid. It runs as TigerBeetle says to benchmark it, without
# --development (Direct IO enforced, its default cache and batch sizes);
# TB_DEVELOPMENT=1 runs it as the tests do, with --development.
start_tigerbeetle() {
    tb_port="$(free_port)"
    local development=()
    [[ "${TB_DEVELOPMENT:-0}" == 1 ]] && development=(--development)
    "$RIPTIDE_TIGERBEETLE_BIN" format --cluster=0 --replica=0 --replica-count=1 "${development[@]}" "$work/tb" \
        >"$work/tb-format.log" 2>&1 || {
        cat "$work/tb-format.log" >&2
        echo "TigerBeetle could not format $work/tb (TB_DEVELOPMENT=1 allows a filesystem without Direct IO)" >&2
        exit 1
    }
    "$RIPTIDE_TIGERBEETLE_BIN" start --addresses="127.0.0.1:${tb_port}" "${development[@]}" --experimental \
        --limit-request=1MiB --memory-lsm-manifest=1MiB "$work/tb" >/dev/null 2>&1 & pids+=($!)
    tb_pid=$!
    wait_port "$tb_port"
}

# The [node] table of a bench riptide on ${connector_port}, ${admin_port} and
# ${public_port}.
node_config() {
    cat <<TOML
[node]
ilp_address = "test.riptide"
connector_port = ${connector_port}
admin_port = ${admin_port}
public_port = ${public_port}
stream_secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
admin_token = "bench-admin-token-0123456789"

TOML
}

# The USD asset and the loader's peer account, common to every bench riptide;
# LOADER_PEER_EXTRA adds lines to the loader's peer (its limits).
asset_and_loader_config() {
    cat <<TOML
[[assets]]
code = "USD"
scale = 2
ledger = 1
initial_liquidity = 1000000000

[[peers]]
id = "loader"
asset = "USD"
incoming_tokens = ["loader-token-0123456789"]
initial_liquidity = 1000000000000000
${LOADER_PEER_EXTRA:-}
TOML
}

# Prepares to the sink go in bursts of up to this many (outgoing_pipeline_max);
# SINK_PIPELINE_MAX= (empty) leaves the key out: one Prepare per connection, and
# builds older than the option still run.
sink_pipeline_max="${SINK_PIPELINE_MAX-16}"

# A riptide between the loader (peer `loader`) and the sink (peer `sink`, on
# ${sink_port}), listening on ${connector_port} and ${admin_port}, with
# ${sink_pipeline_max}.
forwarding_config() { # $1 ledger section
    public_port="$(free_port)"
    node_config
    cat <<TOML
[ledger]
$1

$(asset_and_loader_config)

[[peers]]
id = "sink"
asset = "USD"
outgoing_url = "http://127.0.0.1:${sink_port}/ilp"
outgoing_token = "to-sink"
routes = ["test.sink"]
${sink_pipeline_max:+outgoing_pipeline_max = ${sink_pipeline_max}}
TOML
}

# Resident memory of process $1, in MiB.
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# ilp-connector (benches/reference) between the loader and the sink: sets
# loader_port and reference_pid, and waits until it is ready (30 s at most).
start_reference() {
    loader_port="$(free_port)"
    REFERENCE_LOADER_PORT="$loader_port" REFERENCE_LOADER_TOKEN=loader-token-0123456789 \
        REFERENCE_SINK_PORT="$(free_port)" REFERENCE_SINK_URL="http://127.0.0.1:${sink_port}/ilp" \
        node benches/reference/connector.js >"$work/reference.log" 2>&1 & pids+=($!)
    reference_pid=$!
    for _ in $(seq 1 600); do
        grep -qs "reference connector ready" "$work/reference.log" && return 0
        kill -0 "$reference_pid" 2>/dev/null || { cat "$work/reference.log" >&2; echo "ilp-connector did not start" >&2; exit 1; }
        sleep 0.05
    done
    echo "ilp-connector not ready after 30 s" >&2
    exit 1
}

# Redis's own command counts on the nodes in $stat_nodes (host:port each): reset
# before a run, then summed over the nodes and divided by the packets riptide
# fulfilled (amounts of 1; read from $work/metrics.txt). Counts, unlike rates, do not
# move with this machine's noise, so they show what a change does to Redis's work.
redis_cli() { # $1 host:port, then the command
    "$(dirname "$RIPTIDE_REDIS_SERVER")/redis-cli" -h "${1%:*}" -p "${1#*:}" "${@:2}"
}
reset_redis_stats() {
    local node
    for node in "${stat_nodes[@]}"; do redis_cli "$node" config resetstat >/dev/null; done
}
report_redis_commands() {
    local node packets
    ((${#stat_nodes[@]})) || return 0
    packets="$(awk '/^riptide_fulfilled_amount_total\{peer="loader"\}/ { print $2 }' "$work/metrics.txt")"
    for node in "${stat_nodes[@]}"; do redis_cli "$node" info commandstats; done |
        awk -F'[:,=]' -v packets="${packets:-0}" '/^cmdstat_/ { calls[substr($1, 9)] += $3 }
            END { if (packets == 0) exit
                  printf "# Redis commands per fulfilled packet (warm-up included):"
                  for (c in calls) if (calls[c] / packets >= 0.001) printf " %s %.3f", c, calls[c] / packets
                  print "" }'
}

# A Redis Cluster of 3 primaries with $1 replicas each, on free ports, created with
# redis-cli and ok on every node; sets redis_nodes (host:port) and redis_pids.
start_redis_cluster() {
    local cli port bus node
    cli="$(dirname "$RIPTIDE_REDIS_SERVER")/redis-cli"
    redis_pids=(); redis_nodes=()
    for _ in $(seq 1 $((3 * (1 + $1)))); do
        port="$(free_port)"; bus="$(free_port)"
        mkdir -p "$work/redis-$port"
        "$RIPTIDE_REDIS_SERVER" --cluster-enabled yes --cluster-port "$bus" --save '' --appendonly no \
            --bind 127.0.0.1 --port "$port" --dir "$work/redis-$port" >/dev/null 2>&1 & pids+=($!)
        redis_pids+=($!); redis_nodes+=("127.0.0.1:$port")
        wait_port "$port"
    done
    "$cli" --cluster create "${redis_nodes[@]}" --cluster-replicas "$1" --cluster-yes >/dev/null
    for node in "${redis_nodes[@]}"; do
        until "$cli" -h 127.0.0.1 -p "${node#*:}" cluster info | grep -q "cluster_state:ok"; do
            sleep 0.1
        done
    done
    sleep 1 # the replicas' first sync
}

# A throwaway CA ($work/ca.pem) and a certificate it signs for $2 (a
# subjectAltName such as IP:127.0.0.1), in $work/$1.pem with its key $work/$1.key.
make_bench_certificate() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=$1" -keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\n' "$2" > "$work/san.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/$1.pem" 2>/dev/null
}

# interledger-rs's ilp-node ($ILP_NODE, from benches/ilp-node-build.sh) on a Redis of
# its own, forwarding the loader's account to the sink (same asset: no rates), as
# ilp-connector does in start_reference; sets ilrs_port, ilrs_pid and ilrs_redis_pid.
start_ilp_node() {
    local redis_port settle_port admin=ilrs-admin-token
    redis_port="$(free_port)"; ilrs_port="$(free_port)"; settle_port="$(free_port)"
    "$RIPTIDE_REDIS_SERVER" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        >/dev/null 2>&1 & pids+=($!)
    ilrs_redis_pid=$!
    wait_port "$redis_port"
    cat > "$work/ilp-node.json" <<JSON
{
  "ilp_address": "test.ilrs",
  "secret_seed": "$(python3 -c 'import os; print(os.urandom(32).hex())')",
  "admin_auth_token": "$admin",
  "database_url": "redis://127.0.0.1:${redis_port}/",
  "http_bind_address": "127.0.0.1:${ilrs_port}",
  "settlement_api_bind_address": "127.0.0.1:${settle_port}"
}
JSON
    "$ILP_NODE" "$work/ilp-node.json" >"$work/ilp-node.log" 2>&1 & pids+=($!)
    ilrs_pid=$!
    wait_port "$ilrs_port"
    local account
    for account in \
        '{"username":"loader","asset_code":"USD","asset_scale":2,"ilp_address":"test.loader","ilp_over_http_incoming_token":"loader-token-0123456789","min_balance":"-9000000000000000000","routing_relation":"Child"}' \
        "{\"username\":\"sink\",\"asset_code\":\"USD\",\"asset_scale\":2,\"ilp_address\":\"test.sink\",\"ilp_over_http_url\":\"http://127.0.0.1:${sink_port}/ilp\",\"ilp_over_http_outgoing_token\":\"sink-token\",\"routing_relation\":\"Peer\"}"; do
        curl -sf -X POST -H "Authorization: Bearer $admin" -H "Content-Type: application/json" \
            -d "$account" "http://127.0.0.1:${ilrs_port}/accounts" >/dev/null \
            || { cat "$work/ilp-node.log" >&2; echo "ilp-node refused an account" >&2; exit 1; }
    done
}

# The balances of the riptide on ${admin_port}, kept as those before a run.
save_balances_before() {
    curl -s -H "Authorization: Bearer bench-admin-token-0123456789" "http://127.0.0.1:${admin_port}/v1/balances" \
        > "$work/before.json"
}

# After a run through the riptide on ${admin_port}: every Fulfill booked exactly in
# the ledger since save_balances_before, from the loader's account to $1 (kind:name;
# benches/booked.py). Prints its verdict; a wrong one does not stop the script.
check_booked() {
    python3 benches/booked.py "http://127.0.0.1:${admin_port}" bench-admin-token-0123456789 \
        peer:loader "$1" "$work/before.json" || true
}
