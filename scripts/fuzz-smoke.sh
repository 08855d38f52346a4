#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a bounded time (FUZZ_SECONDS, default
# 30). A crash fails the run and leaves the input under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz needs nightly flags; use the nightly toolchain when the machine has one,
# otherwise let stable accept them and fuzz without a sanitizer.
toolchain_args=()
sanitizer_args=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain_args=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
    sanitizer_args=(--sanitizer none)
fi

mkdir -p fuzz/corpus
for target in $(cargo "${toolchain_args[@]}" fuzz list --fuzz-dir fuzz); do
    echo "fuzz: ${target} for ${seconds}s"
    mkdir -p "fuzz/corpus/${target}"
    cp -n fuzz/seeds/"${target}"/* "fuzz/corpus/${target}/" 2>/dev/null || true
    cargo "${toolchain_args[@]}" fuzz run --fuzz-dir fuzz "${sanitizer_args[@]}" "${target}" \
        "fuzz/corpus/${target}" -- -max_total_time="${seconds}" -rss_limit_mb=2048 -print_final_stats=1 \
        2>&1 | tail -n 15
done
echo "fuzz: all targets ran ${seconds}s without a crash"
