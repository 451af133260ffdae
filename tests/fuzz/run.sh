#!/usr/bin/env bash
# Fuzzes every target for SECONDS seconds each (default 60) with cargo fuzz on nightly, then
# prints the figures RELIABILITY.md quotes. A crash is saved under artifacts/<target>/: copy it
# to regressions/<target>/ with a name that says what it was, add a named test, fix the bug.
#   bash tests/fuzz/run.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(protocol_decode server_push device_page case_changes form_values json_import case_document)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
# Outside the clone, like the main build; the sanitizer build is separate from it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/suivi/fuzz-target}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  cargo +nightly fuzz run --fuzz-dir . "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 | tee "artifacts/$t.log" \
    | grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+== ERROR|SUMMARY)" || true
  echo "$t: $(ls "corpus/$t" | wc -l) corpus files, $(ls "artifacts/$t" | wc -l) crash files"
done
