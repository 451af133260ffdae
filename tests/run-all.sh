#!/usr/bin/env bash
# Every test of the project: formatting, lints, the Rust tests of all crates (unit, property,
# crash, end-to-end over loopback), a smoke run of the benchmark, and the Kotlin bindings and
# demo app logic on the JVM.
set -euo pipefail
cd "$(dirname "$0")/.."
# One feature set for every step, so each dependency is compiled once.
BUILD=(--workspace --features suivi-core/cli,suivi-ffi/bindgen)
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy "${BUILD[@]}" --all-targets -- -D warnings
echo "== cargo build"
# The binaries first: end-to-end tests run suivi-server and suivi as separate processes.
cargo build "${BUILD[@]}"
echo "== cargo test"
cargo test "${BUILD[@]}"
echo "== benchmark smoke run (tiny sizes, lan profile)"
"${CARGO_TARGET_DIR:-target}/debug/suivi-bench" --smoke
echo "== Kotlin bindings and demo logic on the JVM"
bash tests/kotlin.sh
