#!/usr/bin/env bash
# Training throughput of the example binaries on a busy machine: the GEMM
# pool's default size against CGRAD_THREADS=1, with two busy loops pinned one
# per core; and on an idle machine, an older build's default pool against
# this one's. See bench/README.md, "A busy machine".
#
#   bash bench/busy.sh                               # every example, build/
#   BUILD_DIR=build-x bash bench/busy.sh fashion_cnn fashion_mlp
#   OLD_BUILD=/tmp/old/build bash bench/busy.sh      # adds the idle A/B (and the old pool under load)
#
# Conditions (CONDITIONS picks some; each is an A/B interleaved A B A B ...,
# ROUNDS pairs; reported: both medians, their ratio, the median and range of
# the pair ratios):
#   pinned      two busy loops (taskset -c 0 and -c 1), the binary under
#               taskset -c 0: default pool (A) / CGRAD_THREADS=1 (B)
#   busy        the same loops, the binary on any core: A / B as above
#   idle        no loops: BUILD_DIR's default pool (A) / OLD_BUILD's (B)
#   pinned-old, busy-old   as pinned and busy, with OLD_BUILD's binaries
#
# The figure is `BIN bench --iters N`'s train_samples_per_sec (training steps
# on one random batch at the example's batch size); N per example is set so a
# run takes about a second on an idle core.
#
# Environment: BUILD_DIR (default build), OLD_BUILD (unset: no idle, *-old),
# ROUNDS (default 5), CONDITIONS (default "pinned busy" plus "idle" with
# OLD_BUILD), OUT (raw logs; default $BUILD_DIR/bench/busy).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
OLD_BUILD=${OLD_BUILD:-}
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-$BUILD_DIR/bench/busy}
if [ -z "${CONDITIONS:-}" ]; then
    CONDITIONS="pinned busy"
    [ -n "$OLD_BUILD" ] && CONDITIONS="$CONDITIONS idle"
fi

# example -> iterations of `bench` (about a second of training on one idle core)
iters_for() {
    case "$1" in
        fashion_cnn) echo 150 ;;
        fashion_cnn_bn) echo 60 ;;
        fashion_mlp) echo 1500 ;;
        sequence_sum | timeseries_rnn) echo 3000 ;;
        custom_model) echo 20000 ;;
        elec_mlp) echo 100000 ;;
        *) echo 50000 ;;
    esac
}

# The examples with a training binary that links the GEMM shim (linear_regression and custom_loop are
# portable-flavour programs of their own, without the pool).
all=(fashion_mlp fashion_cnn fashion_cnn_bn digits_mlp elec_mlp custom_layer custom_model functional transfer
     sequence_sum timeseries_rnn)
examples=("$@")
[ "${#examples[@]}" -gt 0 ] || examples=("${all[@]}")

unset CGRAD_THREADS CGRAD_GEMM   # A runs the pool's default size
mkdir -p "$OUT"
loops=()
start_loops() {
    taskset -c 0 sh -c 'while :; do :; done' &
    loops+=($!)
    taskset -c 1 sh -c 'while :; do :; done' &
    loops+=($!)
    sleep 1
}
stop_loops() {
    for pid in "${loops[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    loops=()
}
trap stop_loops EXIT

# One run: prints train_samples_per_sec of `env VARS BIN bench --iters N` (under PREFIX); logs to $log.
one() {
    local prefix=$1 vars=$2 bin=$3 n=$4 log=$5 v
    # shellcheck disable=SC2086
    env $vars $prefix "$bin" bench --iters "$n" >>"$log" 2>&1 || true
    v=$(grep -o 'train_samples_per_sec=[0-9.]*' "$log" | tail -n 1 | cut -d= -f2)
    echo "${v:-0}"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build: $BUILD_DIR${OLD_BUILD:+, old build: $OLD_BUILD}; $ROUNDS interleaved pairs per figure"
printf '%-16s %-11s %12s %12s %8s %8s  %s\n' example condition A B A/B pairs "pair range"

for cond in $CONDITIONS; do
    case "$cond" in
        pinned | busy | idle) new=$BUILD_DIR ;;
        pinned-old | busy-old) new=$OLD_BUILD ;;
        *) echo "busy.sh: unknown condition '$cond'" >&2; exit 2 ;;
    esac
    if [ -z "$new" ] || { [ "$cond" = idle ] && [ -z "$OLD_BUILD" ]; }; then
        echo "skip $cond: OLD_BUILD is not set"
        continue
    fi
    prefix=""
    case "$cond" in pinned*) prefix="taskset -c 0" ;; esac
    case "$cond" in idle) ;; *) start_loops ;; esac
    for ex in "${examples[@]}"; do
        a_bin=$new/examples/$ex/$ex b_bin=$a_bin a_vars="" b_vars="CGRAD_THREADS=1"
        if [ "$cond" = idle ]; then
            b_bin=$OLD_BUILD/examples/$ex/$ex b_vars=""
        fi
        if [ ! -x "$a_bin" ] || [ ! -x "$b_bin" ]; then
            echo "skip $ex: $a_bin or $b_bin is not built"
            continue
        fi
        n=$(iters_for "$ex")
        log=$OUT/$ex.$cond
        rm -f "$log".*
        as=() bs=() rs=()
        for r in $(seq "$ROUNDS"); do
            a=$(one "$prefix" "$a_vars" "$a_bin" "$n" "$log.a.log")
            b=$(one "$prefix" "$b_vars" "$b_bin" "$n" "$log.b.log")
            as+=("$a") bs+=("$b")
            rs+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')")
            echo "$ex $cond round $r: A=$a B=$b" >>"$OUT/raw.log"
        done
        am=$(median "${as[@]}") bm=$(median "${bs[@]}") rm_=$(median "${rs[@]}")
        lo=$(printf '%s\n' "${rs[@]}" | sort -g | head -n 1) hi=$(printf '%s\n' "${rs[@]}" | sort -g | tail -n 1)
        printf '%-16s %-11s %12.1f %12.1f %7.2fx %7.2fx  %s-%s\n' "$ex" "$cond" "$am" "$bm" \
            "$(awk -v a="$am" -v b="$bm" 'BEGIN {print (b > 0 ? a / b : 0)}')" "$rm_" "$lo" "$hi"
    done
    stop_loops
done
