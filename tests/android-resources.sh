#!/usr/bin/env bash
# The Android checks this machine can run without an Android SDK: compile the app's resources
# with Debian's aapt2 against the API 29 framework (android-framework-res), link them with a copy
# of the manifest into an APK, align it with zipalign, sign and verify it with apksigner, and
# assert its badging (package, SDK levels, locales, launchable activity, icon, label) and its
# default (French) strings. What this proves and what still needs an Android toolchain:
# android-demo/README.md, "What is verified where".
set -euo pipefail
cd "$(dirname "$0")/.."
app=android-demo/app
framework=/usr/share/android-framework-res/framework-res.apk
for tool in aapt2 aapt zipalign apksigner keytool; do
  command -v "$tool" >/dev/null || { echo "$tool not found (bash .ci/setup installs it)"; exit 1; }
done
[ -f "$framework" ] || { echo "$framework not found (apt-get install android-framework-res)"; exit 1; }
work="${CARGO_TARGET_DIR:-target}/android-resources"
rm -rf "$work" && mkdir -p "$work"

# SDK levels and version as the Gradle build declares them (app/build.gradle.kts).
gradle="$app/build.gradle.kts"
# minSdk is `minApi`, also the API level cargo-ndk links the library against.
min_sdk=$(sed -n 's/^val minApi = \([0-9]*\).*/\1/p' "$gradle")
grep -q '^ *minSdk = minApi$' "$gradle" || { echo "$gradle: minSdk is not minApi"; exit 1; }
grep -q '"--platform", minApi.toString()' "$gradle" || { echo "$gradle: cargo-ndk is not given minApi"; exit 1; }
target_sdk=$(sed -n 's/^ *targetSdk = \([0-9]*\).*/\1/p' "$gradle")
version_code=$(sed -n 's/^ *versionCode = \([0-9]*\).*/\1/p' "$gradle")
version_name=$(sed -n 's/^ *versionName = "\(.*\)".*/\1/p' "$gradle")
[ -n "$min_sdk" ] && [ -n "$target_sdk" ] || { echo "cannot read the SDK levels from $gradle"; exit 1; }

# The real manifest must keep backups and transfers away from the store.
manifest="$app/src/main/AndroidManifest.xml"
for needed in 'android:allowBackup="false"' 'android:dataExtractionRules="@xml/data_extraction_rules"' \
  'android:fullBackupContent="@xml/backup_rules"'; do
  grep -q "$needed" "$manifest" || { echo "the manifest lacks $needed"; exit 1; }
done
for domain in root file database sharedpref external; do
  [ "$(grep -c "domain=\"$domain\"" "$app/src/main/res/xml/data_extraction_rules.xml")" -eq 2 ] \
    || { echo "data_extraction_rules.xml does not exclude $domain from both backup and transfer"; exit 1; }
done

# Native libraries for 64-bit phones linked for 16 KB pages (no NDK here to check a built one).
for triple in aarch64-linux-android x86_64-linux-android; do
  python3 - "$triple" <<'PY' || { echo ".cargo/config.toml: $triple is not linked for 16 KB pages"; exit 1; }
import sys, tomllib
flags = tomllib.load(open(".cargo/config.toml", "rb"))["target"][sys.argv[1]]["rustflags"]
assert "link-arg=-Wl,-z,max-page-size=16384" in flags, flags
PY
done
# The release build shrinks with R8 and keeps what JNA and the bindings reach by reflection.
grep -q 'isMinifyEnabled = true' "$gradle" && grep -q '"proguard-rules.pro"' "$gradle" \
  || { echo "$gradle: no minified release build with proguard-rules.pro"; exit 1; }
for rule in '-keep class com.sun.jna.** { *; }' '-keep class org.suivi.core.** { *; }' \
  '-keep class * implements com.sun.jna.** { *; }' '-keepattributes RuntimeVisibleAnnotations,'; do
  grep -qF -- "$rule" "$app/proguard-rules.pro" || { echo "proguard-rules.pro lacks: $rule"; exit 1; }
done

# A copy made for API 29: the package Gradle would inject, and without the attributes newer
# than the framework aapt2 links against (the real manifest keeps them).
python3 - "$manifest" "$work/AndroidManifest.xml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
newer = ["dataExtractionRules", "localeConfig"]  # API 31, API 33
for attr in newer:
    text, n = re.subn(r'\s+android:%s="[^"]*"' % attr, "", text)
    assert n == 1, "expected android:%s once in the manifest" % attr
text = text.replace("<manifest ", '<manifest package="org.suivi.demo" ', 1)
open(sys.argv[2], "w").write(text)
PY

aapt2 compile --dir "$app/src/main/res" -o "$work/resources.zip"
aapt2 link -I "$framework" --manifest "$work/AndroidManifest.xml" -o "$work/unaligned.apk" \
  --min-sdk-version "$min_sdk" --target-sdk-version "$target_sdk" \
  --version-code "$version_code" --version-name "$version_name" "$work/resources.zip"
zipalign -p -f 4 "$work/unaligned.apk" "$work/aligned.apk"
zipalign -c 4 "$work/aligned.apk"
keytool -genkeypair -keystore "$work/check.jks" -storepass suivi-check -keypass suivi-check \
  -alias check -keyalg EC -groupname secp256r1 -validity 2 -dname "CN=Suivi resource check" >/dev/null 2>&1
apksigner sign --ks "$work/check.jks" --ks-pass pass:suivi-check --key-pass pass:suivi-check \
  --min-sdk-version "$min_sdk" --out "$work/suivi-resources.apk" "$work/aligned.apk"
apksigner verify --min-sdk-version "$min_sdk" --verbose "$work/suivi-resources.apk" > "$work/verify.txt"
grep -q "Verified using v2 scheme (APK Signature Scheme v2): true" "$work/verify.txt" \
  || { cat "$work/verify.txt"; echo "APK signature v2 not verified"; exit 1; }

aapt dump badging "$work/suivi-resources.apk" > "$work/badging.txt"
expect() {
  grep -qF -- "$1" "$work/badging.txt" || { cat "$work/badging.txt"; echo "badging lacks: $1"; exit 1; }
}
expect "package: name='org.suivi.demo' versionCode='$version_code' versionName='$version_name'"
expect "sdkVersion:'$min_sdk'"
expect "targetSdkVersion:'$target_sdk'"
expect "launchable-activity: name='org.suivi.demo.ui.StartActivity'"
expect "application-label:'Suivi'"
expect "uses-permission: name='android.permission.INTERNET'"
# The default locale '--_--' holds the French strings; English and Arabic are the others.
expect "locales: '--_--' 'ar' 'en'"
expect "icon='res/mipmap-anydpi-v26/ic_launcher.xml'"
grep -q "^application: .*icon=" "$work/badging.txt" || { echo "no launcher icon"; exit 1; }
aapt2 dump resources "$work/suivi-resources.apk" > "$work/resources.txt"
grep -A3 "string/search_hint" "$work/resources.txt" | grep -q '() "Rechercher un enfant"' \
  || { grep -A3 "string/search_hint" "$work/resources.txt"; echo "the default strings are not French"; exit 1; }
echo "android resources: $(basename "$work/suivi-resources.apk") linked against API 29, aligned, signed, verified; badging as declared"

# tests/apk-check.sh, the check for an APK built elsewhere, made to pass and to fail: the linked
# APK with native libraries (host-built stand-ins, ELF64 like arm64's) as Gradle packs them
# (stored, page-aligned), signed.
cat > "$work/stub.c" <<'C'
int suivi_stub(void) { return 42; }
C
cc -shared -fPIC -s -Wl,-z,max-page-size=16384 -Wl,-z,common-page-size=16384 -o "$work/good.so" "$work/stub.c"
cc -shared -fPIC -s -Wl,-z,max-page-size=4096 -Wl,-z,common-page-size=4096 -o "$work/4k.so" "$work/stub.c"
cc -shared -fPIC -Wl,-z,max-page-size=16384 -o "$work/symbols.so" "$work/stub.c"
with_libs() { # with_libs <name> <abi>=<so>...
  local name=$1; shift
  python3 - "$work/unaligned.apk" "$work/libs-$name-unaligned.apk" "$@" <<'PY'
import shutil, sys, zipfile
shutil.copy(sys.argv[1], sys.argv[2])
with zipfile.ZipFile(sys.argv[2], "a") as z:
    for spec in sys.argv[3:]:
        abi, so = spec.split("=")
        z.write(so, "lib/%s/libsuivi_ffi.so" % abi, compress_type=zipfile.ZIP_STORED)
PY
  zipalign -p -f 4 "$work/libs-$name-unaligned.apk" "$work/libs-$name-aligned.apk"
  apksigner sign --ks "$work/check.jks" --ks-pass pass:suivi-check --key-pass pass:suivi-check \
    --min-sdk-version "$min_sdk" --out "$work/libs-$name.apk" "$work/libs-$name-aligned.apk"
}
with_libs good arm64-v8a="$work/good.so" armeabi-v7a="$work/good.so"
with_libs x86 arm64-v8a="$work/good.so" armeabi-v7a="$work/good.so" x86_64="$work/good.so"
with_libs 4k arm64-v8a="$work/4k.so" armeabi-v7a="$work/good.so"
with_libs unstripped arm64-v8a="$work/symbols.so" armeabi-v7a="$work/good.so"
bash tests/apk-check.sh "$work/libs-good.apk"
refuses() { # refuses <apk> <words the refusal must say>
  local out
  if out=$(bash tests/apk-check.sh "$1" 2>&1); then echo "apk-check passed $1: $out"; exit 1; fi
  grep -qF -- "$2" <<<"$out" || { echo "apk-check refused $1 without saying '$2': $out"; exit 1; }
}
refuses "$work/libs-x86.apk" "native code is 'arm64-v8a' 'armeabi-v7a' 'x86_64'"
refuses "$work/libs-4k.apk" "arm64-v8a/libsuivi_ffi.so has a LOAD segment aligned to 0x1000 bytes"
refuses "$work/libs-unstripped.apk" "is not stripped"
echo "apk check: passes a phone-ready APK, refuses one with x86_64, a 4 KiB-aligned library, an unstripped one"
