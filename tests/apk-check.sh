#!/usr/bin/env bash
# Checks an APK built elsewhere (an Android toolchain this machine lacks) as Google Play and a
# 16 KB-page phone would: tests/apk-check.sh <app.apk>
# - its signature verifies (apksigner, scheme v2);
# - its native code is exactly arm64-v8a and armeabi-v7a (`aapt dump badging`): no x86_64 in
#   what ships to phones;
# - every 64-bit .so has each LOAD segment aligned to 16 KiB or more (readelf), and no symbol
#   table (stripped).
# tests/android-resources.sh runs it on APKs it assembles with a good and with bad libraries.
set -euo pipefail
apk="${1:?usage: tests/apk-check.sh <app.apk>}"
for tool in apksigner aapt readelf python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found (bash .ci/setup installs it)"; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

apksigner verify --verbose "$apk" > "$work/verify.txt" 2>&1 || { cat "$work/verify.txt"; echo "$apk: signature does not verify"; exit 1; }
grep -q "Verified using v2 scheme (APK Signature Scheme v2): true" "$work/verify.txt" \
  || { echo "$apk: not signed with APK Signature Scheme v2"; exit 1; }

native=$(aapt dump badging "$apk" | sed -n "s/^native-code: //p")
[ "$native" = "'arm64-v8a' 'armeabi-v7a'" ] \
  || { echo "$apk: native code is ${native:-none}, expected 'arm64-v8a' 'armeabi-v7a'"; exit 1; }

python3 - "$apk" "$work" <<'PY'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        if info.filename.startswith("lib/") and info.filename.endswith(".so"):
            out = os.path.join(sys.argv[2], "so", info.filename.replace("/", "_"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "wb") as f:
                f.write(z.read(info))
PY
shopt -s nullglob
libs=("$work"/so/*.so)
[ ${#libs[@]} -gt 0 ] || { echo "$apk: no native library"; exit 1; }
for lib in "${libs[@]}"; do
  name=$(basename "$lib" | sed 's/^lib_//; s/_/\//')
  readelf -h "$lib" | grep -q "Class:.*ELF64" || continue
  # Each LOAD segment's alignment, the last column of `readelf -lW`.
  while read -r align; do
    (( align >= 16384 )) || { echo "$apk: $name has a LOAD segment aligned to $align bytes, not 16 KiB"; exit 1; }
  done < <(readelf -lW "$lib" | awk '$1 == "LOAD" { print $NF }')
  if readelf -SW "$lib" | grep -q '\.symtab'; then
    echo "$apk: $name is not stripped (it has a symbol table)"; exit 1
  fi
done
echo "apk check: $(basename "$apk") verified, native code arm64-v8a and armeabi-v7a, 64-bit libraries 16 KiB-aligned and stripped"
