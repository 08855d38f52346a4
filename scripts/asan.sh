#!/usr/bin/env bash
# Riptide under AddressSanitizer: builds every binary and test with the sanitizer
# (and the system allocator, which the sanitizer replaces; mimalloc would hide the
# heap from it) in target/asan, then runs the unit tests of the protocol crate and
# the data plane, and the end-to-end tests against those binaries. A heap error
# ends the process that made it (exit 1) with a report in target/asan/reports,
# and the script fails, printing the reports, when any is there. Not part
# of scripts/test.sh: it rebuilds everything (about 5 minutes here) and the suite
# runs slower under the sanitizer.
# Usage: scripts/asan.sh [arguments for the end-to-end tests' cargo test, e.g. --test start;
#   with any, the unit tests are skipped]
# Repeated starts and stops (the case that found the mesh's use after free):
#   for i in $(seq 50); do scripts/asan.sh --test start || break; done
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source scripts/env.sh
# The sanitizer flag is unstable; RUSTC_BOOTSTRAP lets the stable toolchain take it.
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address --cfg riptide_asan"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_ASAN:-target/asan}"
# Leaks at exit are not errors here: shards end with the process. Reports go to
# files: most tests stop riptide without reading its exit status, and its log
# (where stderr goes) is deleted with the test's folder.
reports="$(realpath -m "${CARGO_TARGET_DIR}")/reports"
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}:log_path=${reports}/asan"
check_reports() {
    if compgen -G "${reports}/asan.*" > /dev/null; then
        cat "${reports}"/asan.* >&2
        echo "AddressSanitizer reported the errors above (${reports})" >&2
        exit 1
    fi
}
trap check_reports EXIT
# An explicit target keeps the sanitizer off build scripts and proc macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --locked --target "$host" --workspace --bins --all-features
if [ "$#" -eq 0 ]; then
    # The unit tests too (the money simulations among them), when no test is named.
    cargo test --locked --target "$host" -p riptide-proto -p riptide-dataplane --all-features --lib
fi
cargo test --locked --target "$host" -p riptide-tests --all-features "$@"
