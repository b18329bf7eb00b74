#!/usr/bin/env bash
# Set up (including the optional PyTorch reference), build, run the whole test
# suite, and finish with one summary line, e.g. `41 passed, 0 failed, 1 skipped`.
# Exits non-zero if anything failed. Extra arguments go to `meson test`
# (for example a suite name: `bash scripts/test.sh --suite ops`).
#
# Then a second build with AddressSanitizer and UndefinedBehaviorSanitizer
# (build-sanitize/) runs the suites that exercise libcgrad and the runtime
# in-process or through the example binaries; its results count in the summary.
# Then the libFuzzer targets of the loaders (scripts/fuzz.sh --runs, clang,
# build-fuzz-clang/) run a fixed number of times each; they count too.
#
# Environment: BUILD_DIR (default: build), TEST_PROCESSES (default: 2),
# TEST_TIMEOUT_MULTIPLIER (default: 2; meson's per-test timeouts are scaled by it),
# CGRAD_SKIP_SANITIZE=1 skips the sanitizer pass, CGRAD_SKIP_FUZZ=1 the fuzz pass.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
export BUILD_DIR

if ! bash scripts/setup.sh --torch; then
    echo "test.sh: setup or build failed; no tests were run" >&2
    echo "0 passed, 1 failed (setup or build failed)"
    exit 1
fi

log=$BUILD_DIR/meson-logs/testlog.json
rm -f "$log"

printf '==> %s\n' "meson test -C $BUILD_DIR"
rc=0
meson test -C "$BUILD_DIR" --print-errorlogs \
    --num-processes "${TEST_PROCESSES:-2}" \
    --timeout-multiplier "${TEST_TIMEOUT_MULTIPLIER:-2}" "$@" || rc=$?

# The sanitizer pass: compiler and runtime under ASan/UBSan (leaks included).
# Not e2e: its `cgrad build` links model programs against the instrumented
# libcgrad without the sanitizer runtime.
SAN_DIR=build-sanitize
san_log=$SAN_DIR/meson-logs/testlog.json
rm -f "$san_log"
if [ "${CGRAD_SKIP_SANITIZE:-0}" != 1 ] && [ $# -eq 0 ]; then
    printf '==> %s\n' "sanitizer build ($SAN_DIR: address, undefined)"
    if { [ -f "$SAN_DIR/build.ninja" ] || meson setup "$SAN_DIR" -Db_sanitize=address,undefined \
            -Db_lundef=false -Dbuildtype=debug >/dev/null; } && ninja -C "$SAN_DIR" >/dev/null; then
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 meson test -C "$SAN_DIR" --print-errorlogs \
            --num-processes "${TEST_PROCESSES:-2}" --timeout-multiplier 4 \
            runtime runtime-gemm ops-builder ops-builder-series ops-golden ops-gradcheck ops-functional ops-builder-rnn \
            ops-gradcheck-rnn ops-names ops-checked ops-builder-misuse e2e_bad_input || rc=$?
    else
        echo "test.sh: the sanitizer build failed" >&2
        rc=1
    fi
fi

# The fuzz pass: every loader's target from its seed corpus, fixed seed and runs.
FUZZ_DIR=build-fuzz-clang
fuzz_log=$FUZZ_DIR/meson-logs/testlog.json
rm -f "$fuzz_log"
if [ "${CGRAD_SKIP_FUZZ:-0}" != 1 ] && [ $# -eq 0 ]; then
    FUZZ_BUILD_DIR=$FUZZ_DIR bash scripts/fuzz.sh --runs 10000 || rc=1
fi

# testlog.json holds one JSON object per test and line, written by Python's
# json.dumps, so the top-level field reads exactly `"result": "<RESULT>"`
# (quotes inside captured stdout/stderr are escaped and cannot match).
count() {
    local n=0 r
    for r in "$@"; do
        for f in "$log" "$san_log" "$fuzz_log"; do
            [ -f "$f" ] || continue
            n=$((n + $(grep -c "\"result\": \"$r\"" "$f" || true)))
        done
    done
    echo "$n"
}
passed=$(count OK EXPECTEDFAIL)
failed=$(count FAIL TIMEOUT ERROR UNEXPECTEDPASS INTERRUPT)
skipped=$(count SKIP)

note=""
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    # meson itself failed (e.g. rebuild error) without recording a failed test
    failed=1
    note=" (meson test exited with status $rc)"
fi

echo
echo "$passed passed, $failed failed, $skipped skipped$note"
[ "$failed" -eq 0 ]
