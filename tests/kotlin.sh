#!/usr/bin/env bash
# The Kotlin side, on the JVM: build the FFI library, generate its Kotlin bindings, compile them
# with the demo app's logic and the tests (kotlinc from npm, JNA from Debian), run against a real
# suivi-server.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
work="$target/kotlin"
kotlin_home="${KOTLIN_HOME:-$HOME/.cache/suivi/kotlin/node_modules/kotlin-compiler}"
jna="${JNA_JAR:-/usr/share/java/jna.jar}"
[ -x "$kotlin_home/bin/kotlinc" ] || { echo "kotlinc not found under $kotlin_home (bash .ci/setup installs it)"; exit 1; }
[ -f "$jna" ] || { echo "$jna not found (apt-get install libjna-java)"; exit 1; }

rm -rf "$work" && mkdir -p "$work"
ffi/generate-kotlin.sh "$work/bindings"
"$kotlin_home/bin/kotlinc" -nowarn -cp "$jna" -d "$work/classes" \
  "$work/bindings" \
  android-demo/app/src/main/kotlin/org/suivi/demo/logic \
  ffi/tests/kotlin \
  android-demo/app/src/test/kotlin \
  tests/kotlin
SUIVI_SERVER_BIN="$target/debug/suivi-server" \
  java -Djna.library.path="$target/debug" \
  -cp "$work/classes:$kotlin_home/lib/kotlin-stdlib.jar:$jna" org.suivi.test.MainKt
