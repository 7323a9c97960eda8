#!/bin/bash
# Runs every cargo-fuzz target for a bounded time and fails if any finds a crash (panic,
# sanitizer report, out-of-memory or timeout). This is what `make fuzz` runs.
#
#   FUZZ_SECONDS    seconds per target (default 30)
#   FUZZ_TARGETS    space-separated targets to run (default: all, from `cargo fuzz list`)
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default address; none is faster, catches less)
#   CARGO           cargo to use (default cargo)
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags
# (sanitizer, coverage passes) that cargo-fuzz passes. Installs cargo-fuzz if it is missing.
# Full libFuzzer output goes to fuzz/target/fuzz-logs/<target>.log, crash inputs to
# fuzz/artifacts/<target>/.
set -euo pipefail

fuzz=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz"
cargo=${CARGO:-cargo}
seconds=${FUZZ_SECONDS:-30}
sanitizer=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

case $seconds in
'' | *[!0-9]*)
    echo "run.sh: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac

if ! "$cargo" fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz"
    "$cargo" install cargo-fuzz --locked
fi

./seed.sh
"$cargo" fuzz build --sanitizer "$sanitizer"

targets=${FUZZ_TARGETS:-$("$cargo" fuzz list)}
logs=$fuzz/target/fuzz-logs
mkdir -p "$logs"
failed=()
for t in $targets; do
    log=$logs/$t.log
    echo "fuzzing $t for ${seconds}s (log: $log)"
    # -timeout: one input taking this long is a hang on hostile input, reported as a crash.
    if "$cargo" fuzz run --sanitizer "$sanitizer" "$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
        echo "  ok: ${runs:-?} runs, ${rate:-?} exec/s, peak rss ${rss:-?} MB"
    else
        echo "  FAILED: $t found a crash; its report:" >&2
        # From the first panic or sanitizer report to cargo-fuzz's reproduce hints.
        start=$(grep -n -m1 -E 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' \
            "$log" | cut -d: -f1 || true)
        sed -n "${start:-1},\$p" "$log" | sed '/^Error: Fuzz target exited/,$d' | head -n 150 >&2
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets with crashes: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "all fuzz targets ran ${seconds}s each without a crash"
