#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time (default 15 s); fails on a panic
# (a broken invariant), a slow input (-timeout) or a memory blow-up (-rss_limit_mb).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Works on a stable toolchain: cargo-fuzz passes -Z flags, which RUSTC_BOOTSTRAP=1 allows for
# this crate's build only; no sanitizer (the code is safe Rust: panics, timeouts and memory
# are what is hunted). cargo-fuzz is installed once into a tool folder outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-15}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(filter contacts_query identity search)

tools="${KITH_TOOLS_DIR:-/var/tmp/kith-tools}"
target_dir="${KITH_FUZZ_TARGET_DIR:-/var/tmp/kith-fuzz-target}"
if ! [ -x "$tools/bin/cargo-fuzz" ]; then
  echo "installing cargo-fuzz into $tools" >&2
  CARGO_INSTALL_ROOT="$tools" CARGO_TARGET_DIR="$tools/build" cargo install cargo-fuzz --locked
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --release --debug-assertions --target-dir "$target_dir")

cargo fuzz build "${flags[@]}"
bin="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  echo "fuzzing $t for $seconds s" >&2
  mkdir -p "$work/$t" fuzz/artifacts/"$t"
  # New inputs go to a scratch folder; the committed corpus (second folder) is only read.
  # The binary built above, run directly: `cargo fuzz run` would build again first.
  if "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" "$work/$t" "fuzz/corpus/$t" \
    -dict=fuzz/dict -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 2>"$work/$t.log"; then
    grep -E '^Done' "$work/$t.log" >&2 || true
  else
    # The broken invariant (or the timeout / memory report), then the input's location.
    grep -E -A3 "panicked at|ERROR: libFuzzer|SUMMARY" "$work/$t.log" >&2 || true
    grep -E "Test unit written to" "$work/$t.log" >&2 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FUZZ FAILURE in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
