#!/usr/bin/env bash
# Measure cgrad's training binaries against the PyTorch reference, back to back,
# in one run, on the same machine. See bench/README.md.
#
#   bash bench/run.sh                 # every model whose binary is built (mlp, cnn, lstm)
#   bash bench/run.sh mlp             # only the MLP
#   bash bench/run.sh --setup mlp     # run scripts/setup.sh --torch first
#   bash bench/run.sh --epochs 3 mlp  # longer real-training runs (default 1 epoch)
#   bash bench/run.sh --no-torch      # only cgrad's numbers
#
# Environment: BUILD_DIR (default: build), BENCH_OUT (raw logs; default:
# $BUILD_DIR/bench), TORCH_THREADS (default: "1 2"), TRAIN_ITERS (default: 1000),
# PREDICT_ITERS (default: 3000). OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are left
# as you set them; the values in effect are printed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
BENCH_OUT=${BENCH_OUT:-$BUILD_DIR/bench}
TORCH_THREADS=${TORCH_THREADS:-1 2}
TRAIN_ITERS=${TRAIN_ITERS:-1000}
PREDICT_ITERS=${PREDICT_ITERS:-3000}
PY=/usr/bin/python3

epochs=1
do_setup=0
use_torch=1
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --setup) do_setup=1 ;;
        --no-torch) use_torch=0 ;;
        --epochs) epochs=${2:?--epochs needs a value}; shift ;;
        --epochs=*) epochs=${1#--epochs=} ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        mlp|cnn|lstm) models+=("$1") ;;
        *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
[ "${#models[@]}" -gt 0 ] || models=(mlp cnn lstm)

# model -> training binary (built by meson from examples/<dir>/model.c)
binary_for() {
    case "$1" in
        mlp) echo "$BUILD_DIR/examples/fashion_mlp/fashion_mlp" ;;
        cnn) echo "$BUILD_DIR/examples/fashion_cnn/fashion_cnn" ;;
        lstm) echo "$BUILD_DIR/bench/lstm/lstm_bench" ;;
    esac
}

# training batch of the benchmark: the examples' own (LSTM(32) on windows of 12 trains at 32)
batch_for() { [ "$1" = lstm ] && echo 32 || echo 64; }

step() { printf '==> %s\n' "$*"; }

# Last numeric value of `key=<number>` in a file, or "n/a".
kv() {
    local v=""
    [ -f "$2" ] && v=$(sed -n "s/.*\<$1=\([-+0-9.eE]*\).*/\1/p" "$2" | tail -n 1)
    echo "${v:-n/a}"
}

# Column `name` of the last data row of a CSV file with a header, or "n/a".
csv_last() {
    [ -f "$2" ] || { echo n/a; return; }
    awk -F, -v col="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        c && NF >= c { v = $c }
        END { print (v == "" ? "n/a" : v) }' "$2"
}

# a / b formatted as "2.26x", or "n/a".
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[-+0-9.eE]+$/ && b ~ /^[-+0-9.eE]+$/ && b + 0 > 0) printf "%.2fx\n", a / b
        else print "n/a" }'
}

# best (max or min) of numeric arguments, ignoring "n/a".
best() {
    local how=$1; shift
    printf '%s\n' "$@" | awk -v how="$how" '
        /^[-+0-9.eE]+$/ { if (!n++ || (how == "max" ? $1 > b : $1 < b)) b = $1 }
        END { print (n ? b : "n/a") }'
}

# FLOPs per sample of a model, forward and backward ("FWD BWD"), from the summary in its emitted header
# (the binary's NAME.h beside it), or "n/a n/a".
flops_for() {
    local h
    h="$(dirname "$1")/$(basename "$1").h"
    [ -f "$h" ] && sed -n 's/.*FLOPs per sample: forward \([0-9,]*\), backward \([0-9,]*\).*/\1 \2/p' "$h" \
        | tr -d , | head -n 1 | grep . || echo "n/a n/a"
}

# GFLOP/s of a throughput: flops per sample times samples/s ("n/a" when either is missing).
gflops_of() {
    awk -v f="$1" -v r="$2" 'BEGIN {
        if (f ~ /^[0-9.eE+]+$/ && r ~ /^[-+0-9.eE]+$/) printf "%.1f\n", f * r * 1e-9; else print "n/a" }'
}

# "G GFLOP/s = P% of peak" for G against a peak figure, or "n/a".
of_peak() {
    awk -v g="$1" -v p="$2" 'BEGIN {
        if (g ~ /^[-+0-9.eE]+$/ && p ~ /^[-+0-9.eE]+$/ && p + 0 > 0) printf "%s GFLOP/s = %.1f%% of %s\n", g, 100 * g / p, p
        else print "n/a" }'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", b - a }'; }

# --- preparation -------------------------------------------------------------------
if [ "$do_setup" -eq 1 ]; then
    bash scripts/setup.sh --torch
fi
if [ ! -d "$BUILD_DIR" ]; then
    echo "run.sh: no $BUILD_DIR/ directory; run 'bash scripts/setup.sh' first (or pass --setup)" >&2
    exit 1
fi
mkdir -p "$BENCH_OUT"

if [ "$use_torch" -eq 1 ]; then
    if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
        echo "run.sh: '$PY -c \"import torch\"' failed; skipping the PyTorch reference" \
             "(install python3-torch, e.g. 'bash scripts/setup.sh --torch')"
        use_torch=0
    fi
fi

# --- conditions ----------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
buildtype=$(grep -o '"name": "buildtype", "value": "[a-z]*"' \
                "$BUILD_DIR/meson-info/intro-buildoptions.json" 2>/dev/null | sed 's/.*"\([a-z]*\)"$/\1/' || true)
echo "conditions:"
echo "  date                  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "  cpu                   ${cpu:-unknown} ($(nproc) logical cores)"
echo "  load average          $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "  OPENBLAS_NUM_THREADS  ${OPENBLAS_NUM_THREADS:-unset (OpenBLAS default: all cores)}"
echo "  OMP_NUM_THREADS       ${OMP_NUM_THREADS:-unset}"
echo "  cgrad build           $BUILD_DIR (buildtype=${buildtype:-unknown}), $(cc --version 2>/dev/null | head -n 1)"
if [ "$use_torch" -eq 1 ]; then
    echo "  torch                 $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null), threads: $TORCH_THREADS"
fi
echo "  epochs (fit, torch)   $epochs; bench iters: train $TRAIN_ITERS x batch 64 (lstm: 32), predict $PREDICT_ITERS x batch 1"
echo "  raw logs              $BENCH_OUT/"
echo

# --- the machine's limit: FMA peak, AVX-512 and AVX2, 1 and 2 threads (bench/peak.c) --------
# Run before the models and again after them: other programs may hold a core during either run, so each
# figure is the higher of the two.
peak1=n/a peak2=n/a
higher() { awk -v a="$1" -v b="$2" 'BEGIN { if (b !~ /^[-+0-9.eE]+$/) print a; else if (a !~ /^[-+0-9.eE]+$/ || b + 0 > a + 0) print b; else print a }'; }
run_peak() {
    local log=$BENCH_OUT/peak.$1.log p1 p2
    if [ ! -x "$BUILD_DIR/bench/peak" ]; then
        [ "$1" = before ] && echo "skip peak: $BUILD_DIR/bench/peak is not built (x86-64 only)" && echo
        return 0
    fi
    step "peak ($1 the models): $BUILD_DIR/bench/peak (FMA loops, GFLOP/s)"
    "$BUILD_DIR/bench/peak" >"$log" 2>&1 || echo "  failed (exit $?), see $log"
    sed 's/^/  /' "$log"
    p1=$(kv peak_avx512_1t_gflops "$log") p2=$(kv peak_avx512_2t_gflops "$log")
    if [ "$p1" = n/a ]; then  # no AVX-512: the AVX2 figures are the limit
        p1=$(kv peak_avx2_1t_gflops "$log") p2=$(kv peak_avx2_2t_gflops "$log")
    fi
    [ "$p2" != n/a ] || p2=$p1
    peak1=$(higher "$peak1" "$p1") peak2=$(higher "$peak2" "$p2")
    echo
}
run_peak before

# --- measurements ------------------------------------------------------------------
table=()
row() { table+=("$(printf '%-4s %-24s %s' "$1" "$2" "$3")"); }

for model in "${models[@]}"; do
    bin=$(binary_for "$model")
    if [ ! -x "$bin" ]; then
        echo "skip $model: $bin is not built"
        echo
        continue
    fi
    out=$BENCH_OUT/$model
    rm -f "$out".*

    batch=$(batch_for "$model")
    step "$model: $bin bench --batch-size $batch --iters $TRAIN_ITERS"
    "$bin" bench --batch-size "$batch" --iters "$TRAIN_ITERS" >"$out.bench_train.log" 2>&1 \
        || echo "  failed (exit $?), see $out.bench_train.log"
    ours_train=$(kv train_samples_per_sec "$out.bench_train.log")
    echo "  train_samples_per_sec=$ours_train"

    step "$model: $bin bench --batch-size 1 --iters $PREDICT_ITERS"
    "$bin" bench --batch-size 1 --iters "$PREDICT_ITERS" >"$out.bench_predict.log" 2>&1 \
        || echo "  failed (exit $?), see $out.bench_predict.log"
    ours_pred=$(kv predict_us_per_sample "$out.bench_predict.log")
    echo "  predict_us_per_sample=$ours_pred"

    ours_fit=n/a ours_acc=n/a
    if [ "$model" != lstm ]; then   # the LSTM's data (a 257-month series) is too small for a timed epoch
        step "$model: $bin fit --epochs $epochs --verbose 2 --history $out.history.csv"
        t0=$(now)
        "$bin" fit --epochs "$epochs" --verbose 2 --history "$out.history.csv" >"$out.fit.log" 2>&1 \
            || echo "  failed (exit $?), see $out.fit.log"
        fit_wall=$(elapsed "$t0" "$(now)")
        ours_fit=$(csv_last samples_per_sec "$out.history.csv")
        ours_acc=$(grep '^test:' "$out.fit.log" 2>/dev/null | tail -n 1 | sed -n 's/.*accuracy=\([0-9.]*\).*/\1/p' || true)
        ours_acc=${ours_acc:-n/a}
        echo "  samples_per_sec=$ours_fit (last epoch), test accuracy=$ours_acc, wall ${fit_wall}s"
    fi

    t_train=() t_pred=() t_acc=() t_cols_train="" t_cols_pred="" t_cols_acc=""
    if [ "$use_torch" -eq 1 ]; then
        for t in $TORCH_THREADS; do
            step "$model: torch reference, $t thread(s), $epochs epoch(s)"
            "$PY" bench/torch_ref.py "$model" --epochs "$epochs" --threads "$t" --iters "$TRAIN_ITERS" \
                >"$out.torch${t}t.log" 2>&1 || echo "  failed (exit $?), see $out.torch${t}t.log"
            tr=$(kv train_samples_per_sec "$out.torch${t}t.log")
            pr=$(kv predict_us_per_sample "$out.torch${t}t.log")
            ac=$(kv test_accuracy "$out.torch${t}t.log")
            echo "  train_samples_per_sec=$tr predict_us_per_sample=$pr test_accuracy=$ac"
            t_train+=("$tr") t_pred+=("$pr") t_acc+=("$ac")
            t_cols_train+=" torch(${t}t)=$tr"
            t_cols_pred+=" torch(${t}t)=$pr"
            t_cols_acc+=" torch(${t}t)=$ac"
        done
        torch_train=$(best max "${t_train[@]}")
        torch_pred=$(best min "${t_pred[@]}")
        r_bench="  ratio=$(ratio "$ours_train" "$torch_train")"
        r_fit="  ratio=$(ratio "$ours_fit" "$torch_train")"
        r_pred="  ratio=$(ratio "$torch_pred" "$ours_pred")"
    else
        r_bench="" r_fit="" r_pred=""
    fi
    echo

    row "$model" "train samples/s"  "cgrad=$ours_train $t_cols_train$r_bench"
    if [ "$model" != lstm ]; then
        row "$model" "fit samples/s"    "cgrad=$ours_fit $t_cols_train$r_fit"
    fi
    row "$model" "predict us/sample" "cgrad=$ours_pred $t_cols_pred$r_pred"
    # the same runs in GFLOP/s against the machine's peak: training (forward + backward per sample; the
    # optimizer's few FLOPs not counted) and batch-$batch prediction on the pool's threads (2-thread peak),
    # batch-1 prediction on one (1-thread peak)
    read -r f_fwd f_bwd <<<"$(flops_for "$bin")"
    f_step=$(awk -v a="$f_fwd" -v b="$f_bwd" 'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/) print a + b; else print "n/a" }')
    ours_pred_b=$(kv predict_us_per_sample "$out.bench_train.log")
    us_to_rate() { awk -v u="$1" 'BEGIN { if (u ~ /^[-+0-9.eE]+$/ && u + 0 > 0) print 1e6 / u; else print "n/a" }'; }
    # formatted once the peak has been measured again after the models (PEAK1 and PEAK2 stand for it)
    row "$model" "train GFLOP/s" "cgrad: $(gflops_of "$f_step" "$ours_train") PEAK2"
    row "$model" "predict b$batch us/sample" "cgrad=$ours_pred_b: $(gflops_of "$f_fwd" "$(us_to_rate "$ours_pred_b")") PEAK2"
    row "$model" "predict b1 GFLOP/s" "cgrad: $(gflops_of "$f_fwd" "$(us_to_rate "$ours_pred")") PEAK1"
    if [ "$model" != lstm ]; then
        row "$model" "test accuracy"    "cgrad=$ours_acc $t_cols_acc"
    fi
done

if [ "${#table[@]}" -eq 0 ]; then
    echo "nothing measured"
    exit 1
fi
run_peak after
for i in "${!table[@]}"; do  # "G PEAKk" -> "G GFLOP/s = P% of peak"
    r=${table[$i]}
    case "$r" in
        *" PEAK1" | *" PEAK2")
            [ "${r##* }" = PEAK1 ] && p=$peak1 || p=$peak2
            r=${r% PEAK?}
            table[$i]="${r% *} $(of_peak "${r##* }" "$p")" ;;
    esac
done

echo "results (throughput ratio = cgrad / best torch; predict ratio = best torch latency / cgrad;"
echo "         above 1.00x means cgrad is faster; 'train' is 'bench', 'fit' is a real epoch with data loading):"
printf '%s\n' "${table[@]}"
