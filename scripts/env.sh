# Environment for building and testing Riptide; `source scripts/env.sh`.
# ZIG_PATH must be the same string in every shell: the TigerBeetle client's build
# script reruns (minutes) whenever it changes.
riptide_site_packages="$(python3 -c 'import site, sys; sys.stdout.write(site.getsitepackages()[0])' 2>/dev/null || true)"
if [ -n "${riptide_site_packages}" ] && [ -x "${riptide_site_packages}/ziglang/zig" ]; then
    export ZIG_PATH="${riptide_site_packages}/ziglang/zig"
fi
export RIPTIDE_CACHE="${RIPTIDE_CACHE:-${HOME}/.cache/riptide}"
export RIPTIDE_TIGERBEETLE_BIN="${RIPTIDE_CACHE}/tigerbeetle-0.16.78/tigerbeetle"
export RIPTIDE_REDIS_SERVER="$(command -v redis-server || echo /usr/bin/redis-server)"
export LIBCLANG_PATH="${LIBCLANG_PATH:-/usr/lib/llvm-14/lib}"
unset riptide_site_packages
