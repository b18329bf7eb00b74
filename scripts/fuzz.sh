#!/usr/bin/env bash
# Builds the libFuzzer targets of the data and checkpoint loaders (tests/fuzz:
# IDX, gzip IDX, CSV, NPY, safetensors checkpoints, time-series CSV) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs them.
#
#   bash scripts/fuzz.sh SECONDS [TARGET...]   # fuzz each target for SECONDS
#   bash scripts/fuzz.sh --runs N [TARGET...]  # N runs of each, fixed seed (what CI runs)
#
# --runs runs the meson test suite `fuzz`: each target starts from its seed
# corpus (tests/fuzz/corpus/TARGET/) and mutates it for N runs in all, with a
# fixed seed, so a run is repeatable; the results land in the build
# directory's meson-logs/testlog.json, which scripts/test.sh counts.
# SECONDS fuzzes with a random seed; what it learns is kept in the build
# directory (tests/fuzz/scratch/TARGET/) for the next run. Either way a crash
# is written to BUILD/tests/fuzz/TARGET-crash-* (or -leak-, -oom-, -timeout-);
# see tests/fuzz/README.md for what to do with it.
#
# Needs clang (with its sanitizer and libFuzzer runtimes, Debian's
# libclang-rt-dev). Environment: FUZZ_BUILD_DIR (default: build-fuzz-clang),
# TEST_PROCESSES (default: 2), TEST_TIMEOUT_MULTIPLIER (default: 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=${FUZZ_BUILD_DIR:-build-fuzz-clang}
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { print }' "$0" >&2; exit 2; }

[ $# -ge 1 ] || usage
runs=""
seconds=""
if [ "$1" = --runs ]; then
    [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage
    runs=$2
    shift 2
elif [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    seconds=$1
    shift
else
    usage
fi

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: clang is not installed (scripts/setup.sh installs it)" >&2
    exit 1
fi
if [ ! -f "$DIR/build.ninja" ]; then
    printf '==> %s\n' "meson setup $DIR (clang, -Dfuzz=true)"
    if ! out=$(CC=clang meson setup "$DIR" -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized 2>&1); then
        printf '%s\n' "$out" >&2
        echo "fuzz.sh: meson setup failed" >&2
        exit 1
    fi
fi
printf '==> %s\n' "ninja -C $DIR fuzz"
if ! out=$(ninja -C "$DIR" fuzz 2>&1); then
    printf '%s\n' "$out" >&2
    echo "fuzz.sh: the build failed" >&2
    exit 1
fi

# The targets: those named, else every fuzz_* executable the build made.
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for exe in "$DIR"/tests/fuzz/fuzz_*; do
        [ -f "$exe" ] && [ -x "$exe" ] && targets+=("$(basename "$exe")")
    done
fi

if [ -n "$runs" ]; then
    rm -rf "$DIR/tests/fuzz/scratch"   # the same start every time
    exec meson test -C "$DIR" --suite fuzz --no-rebuild --print-errorlogs \
        --num-processes "${TEST_PROCESSES:-2}" --timeout-multiplier "${TEST_TIMEOUT_MULTIPLIER:-2}" \
        --test-args="-runs=$runs" "${targets[@]}"
fi

failed=()
for t in "${targets[@]}"; do
    printf '==> %s\n' "$t: $seconds s"
    mkdir -p "$DIR/tests/fuzz/scratch/$t"
    if ! "$DIR/tests/fuzz/$t" -max_total_time="$seconds" -timeout=60 -print_final_stats=1 \
            -artifact_prefix="$DIR/tests/fuzz/$t-" "$DIR/tests/fuzz/scratch/$t" "tests/fuzz/corpus/$t" \
            2>"$DIR/tests/fuzz/$t.log"; then
        failed+=("$t")
        grep -E 'ERROR|SUMMARY|^fuzz:|Test unit written' "$DIR/tests/fuzz/$t.log" | head -n 8 >&2 || true
    fi
    grep -E '^stat::number_of_executed_units|^Done' "$DIR/tests/fuzz/$t.log" | tr '\n' ' '
    echo
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashed: ${failed[*]} (logs: $DIR/tests/fuzz/TARGET.log)" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${#targets[@]} targets"
