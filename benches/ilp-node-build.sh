#!/usr/bin/env bash
# Builds interledger-rs's ilp-node (the Rust connector, archived in 2022) for the
# side-by-side in benches/wrk.sh (ILP_NODE=<the binary it prints>). It needs a
# checkout of https://github.com/interledger-rs/interledger-rs (measured: its last
# commit, 544b6dbc) given as ILRS_SRC, and libssl-dev (Debian). With rustc 1.95 it
# builds after three changes, made on a copy:
#   - openssl 0.10.32 and openssl-sys 0.9.60 predate OpenSSL 3: `cargo update -p
#     openssl -p openssl-sys`;
#   - rustc now warns, denied by the crates, of a never-type fallback:
#     RUSTFLAGS="-A dependency_on_unit_never_type_fallback";
#   - its build script reads the git commit: the copy is made a repository.
# Usage: ILRS_SRC=/path/to/interledger-rs benches/ilp-node-build.sh
#   ILRS_BUILD_DIR (default ~/.cache/riptide/interledger-rs): where the copy builds.
set -euo pipefail
src="${ILRS_SRC:?give ILRS_SRC=/path/to/an/interledger-rs/checkout}"
build="${ILRS_BUILD_DIR:-$HOME/.cache/riptide/interledger-rs}"
if [ ! -x "$build/target/release/ilp-node" ]; then
    rm -rf "$build"
    mkdir -p "$build"
    (cd "$src" && tar --exclude=./target --exclude=./.git -cf - .) | (cd "$build" && tar -xf -)
    cd "$build"
    git init -q
    git add -A
    git -c user.email=bench@riptide.invalid -c user.name=bench commit -qm "interledger-rs snapshot"
    cargo update -p openssl -p openssl-sys >&2
    RUSTFLAGS="-A dependency_on_unit_never_type_fallback" cargo build --release --bin ilp-node >&2
fi
echo "$build/target/release/ilp-node"
