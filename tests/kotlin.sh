#!/usr/bin/env bash
# The Kotlin side, on the JVM: build the FFI library, generate its Kotlin bindings, compile them
# with the demo app's logic, its unit tests (android-demo/app/src/test) and the bindings' tests
# (ffi/tests/kotlin), then run every JUnit test class against a real suivi-server. kotlinc comes
# from npm; JNA, JUnit 4 and kotlinx-coroutines from Debian (.ci/setup installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
work="$target/kotlin"
kotlin_home="${KOTLIN_HOME:-$HOME/.cache/suivi/kotlin/node_modules/kotlin-compiler}"
jars=/usr/share/java
classpath="$jars/jna.jar:$jars/junit4.jar:$jars/hamcrest-core.jar:$jars/kotlinx-coroutines-core.jar:$jars/atomicfu.jar"
[ -x "$kotlin_home/bin/kotlinc" ] || { echo "kotlinc not found under $kotlin_home (bash .ci/setup installs it)"; exit 1; }
for jar in ${classpath//:/ }; do
  [ -f "$jar" ] || { echo "$jar not found (bash .ci/setup installs it)"; exit 1; }
done

rm -rf "$work" && mkdir -p "$work"
ffi/generate-kotlin.sh "$work/bindings"
"$kotlin_home/bin/kotlinc" -nowarn -cp "$classpath" -d "$work/classes" \
  "$work/bindings" \
  android-demo/app/src/main/kotlin/org/suivi/demo/logic \
  android-demo/app/src/test/kotlin \
  ffi/tests/kotlin
# Every top-level class whose name ends in Test.
tests=$(cd "$work/classes" && find . -name '*Test.class' ! -name '*$*' | sed 's|^\./||; s|\.class$||; s|/|.|g' | sort)
[ -n "$tests" ] || { echo "no test classes found"; exit 1; }
# A hung test fails the run within the deadline instead of holding CI until it is killed.
SUIVI_SERVER_BIN="$target/debug/suivi-server" \
  timeout --kill-after=30 "${SUIVI_KOTLIN_DEADLINE:-900}" java -Djna.library.path="$target/debug" \
  -cp "$work/classes:$kotlin_home/lib/kotlin-stdlib.jar:$classpath" org.junit.runner.JUnitCore $tests
