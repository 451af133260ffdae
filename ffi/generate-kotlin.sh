#!/usr/bin/env bash
# Generates the Kotlin bindings from the built host library (uniffi library mode: the bindings
# describe exactly what the library exports):
#   ffi/generate-kotlin.sh <out-dir>             builds the workspace as the tests do, then generates
#   ffi/generate-kotlin.sh <out-dir> --ffi-only  builds the library and the generator only (Gradle)
#   ffi/generate-kotlin.sh <out-dir> --no-build  generates from what is built
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: ffi/generate-kotlin.sh <out-dir> [--ffi-only|--no-build]}"
mode="${2:-}"
target="${CARGO_TARGET_DIR:-target}"
case "$mode" in
  # The same feature set as the test command, so nothing is compiled twice.
  "") cargo build --workspace --features suivi-core/cli,suivi-ffi/bindgen ;;
  --ffi-only) cargo build -p suivi-ffi --features bindgen --lib --bin uniffi-bindgen ;;
  --no-build) ;;
  *) echo "unknown option $mode"; exit 2 ;;
esac
# The host library's name on this OS.
case "$(uname -s)" in
  Darwin) library="libsuivi_ffi.dylib" ;;
  MINGW* | MSYS* | CYGWIN*) library="suivi_ffi.dll" ;;
  *) library="libsuivi_ffi.so" ;;
esac
"$target/debug/uniffi-bindgen" generate --library "$target/debug/$library" --language kotlin --out-dir "$out" --no-format
echo "Kotlin bindings in $out"
