#!/usr/bin/env bash
# Every test of the project: formatting, lints, the Rust tests of all crates (unit, property,
# crash, end-to-end over loopback; the storage suite on SQLite and on PostgreSQL), a smoke run of the benchmark, the Kotlin bindings and the
# demo app's logic and unit tests on the JVM, and the Android resource and APK checks.
set -euo pipefail
cd "$(dirname "$0")/.."
# One feature set for every step, so each dependency is compiled once.
BUILD=(--workspace --features suivi-core/cli,suivi-ffi/bindgen)
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== ARCHITECTURE.md: every path and identifier it names is in the code"
python3 tests/check-architecture.py
echo "== no module cycle: within every module, its children never use each other in a circle"
python3 tests/check-module-cycles.py
echo "== cargo clippy"
cargo clippy "${BUILD[@]}" --all-targets -- -D warnings
echo "== cargo build"
# The binaries first: end-to-end tests run suivi-server and suivi as separate processes.
cargo build "${BUILD[@]}"
echo "== PostgreSQL test cluster (127.0.0.1:55432): the storage suite and the multi-instance soak"
SUIVI_TEST_POSTGRES="${SUIVI_TEST_POSTGRES:-$(bash tests/postgres.sh)}"
export SUIVI_TEST_POSTGRES
echo "== cargo test"
cargo test "${BUILD[@]}"
echo "== benchmark smoke run (tiny sizes, lan profile; the busy server on SQLite and on two PostgreSQL instances)"
"${CARGO_TARGET_DIR:-target}/debug/suivi-bench" --smoke --postgres
echo "== Kotlin bindings, demo app logic and its unit tests on the JVM"
bash tests/kotlin.sh
echo "== Android resources: aapt2 against API 29, zipalign, apksigner, badging"
bash tests/android-resources.sh
