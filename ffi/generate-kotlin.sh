#!/usr/bin/env bash
# Generates the Kotlin bindings from the built library: ffi/generate-kotlin.sh <out-dir>
# (uniffi library mode: the bindings describe exactly what the .so exports).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: ffi/generate-kotlin.sh <out-dir>}"
target="${CARGO_TARGET_DIR:-target}"
# The same feature set as the test command, so nothing is compiled twice.
cargo build --workspace --features suivi-core/cli,suivi-ffi/bindgen
"$target/debug/uniffi-bindgen" generate --library "$target/debug/libsuivi_ffi.so" --language kotlin --out-dir "$out" --no-format
echo "Kotlin bindings in $out"
