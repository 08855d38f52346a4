#!/usr/bin/env bash
# The one test command: installs what is missing, then checks formatting and lints,
# runs every test (unit, property, end-to-end against real TigerBeetle, Redis and Node
# peers), and fuzzes each target for a bounded time. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# shellcheck source=/dev/null
source scripts/env.sh

echo "test: crate boundaries"
scripts/check-deps.sh
echo "test: cargo fmt --check"
cargo fmt --all -- --check
echo "test: cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
echo "test: build binaries for the end-to-end tests"
cargo build --workspace --bins --all-features --locked
echo "test: cargo test"
cargo test --workspace --all-features --locked
echo "test: fuzz smoke"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz-smoke.sh
echo "test: all passed"
