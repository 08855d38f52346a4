#!/usr/bin/env bash
# The crate boundaries, checked: riptide-proto stays sans-IO (no runtime, socket,
# engine or clock crate anywhere in its dependency tree), and riptidectl, the load
# generator and the fuzz targets do not link the data plane; riptidectl resolves for
# macOS without glommio. Reads the lock file only; builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

names() {
    cargo tree --locked -e normal --prefix none --format '{p}' "$@" | awk '{print $1}' | sort -u
}

status=0
io_crates='^(glommio|hyper|tokio|async-std|smol|mio|io-uring|nix|socket2|redis|tigerbeetle-unofficial|ureq|tiny_http|futures-timer|chrono|time)$'
if found="$(names -p riptide-proto | grep -E "$io_crates")"; then
    echo "check-deps: riptide-proto depends on IO crates: $found" >&2
    status=1
fi
for crate in riptide-control-plane riptide-loadgen; do
    if names -p "$crate" | grep -qx riptide-dataplane; then
        echo "check-deps: $crate links the data plane" >&2
        status=1
    fi
done
if names -p riptide-control-plane --target x86_64-apple-darwin | grep -qx glommio; then
    echo "check-deps: riptidectl needs glommio on macOS" >&2
    status=1
fi
if grep -q 'riptide-dataplane' fuzz/Cargo.toml; then
    echo "check-deps: the fuzz targets link the data plane" >&2
    status=1
fi
[ "$status" -eq 0 ] && echo "check-deps: crate boundaries hold"
exit "$status"
