#!/usr/bin/env bash
# Every test of the project: formatting, lints, the Rust tests of all crates (unit, property,
# crash, end-to-end over loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
FEATURES="--features suivi-core/cli"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets $FEATURES -- -D warnings
echo "== cargo test"
cargo test --workspace $FEATURES
echo "== benchmark smoke run (tiny sizes, lan profile)"
cargo build -p sync-server -p suivi-tests --bins
"${CARGO_TARGET_DIR:-target}/debug/suivi-bench" --smoke
