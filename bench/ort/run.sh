#!/usr/bin/env bash
# ONNX Runtime as an optional inference reference: cgrad's prediction (the `bench` command's
# predict_us_per_sample) against ONNX Runtime's on the same MLP and CNN (bench/ort/export.py writes them
# from bench/torch_ref.py's PyTorch models), batch 64 on 1 and 2 threads (cgrad: its default pool and
# CGRAD_THREADS=1) and batch 1 on 1, run in turn ROUNDS times; medians and the ratio of ONNX Runtime's
# better figure to cgrad's default (above 1.00x: cgrad is faster).
#
#   bash bench/ort/run.sh            # mlp and cnn
#   bash bench/ort/run.sh cnn
#
# Needs node and npm (onnxruntime-node is installed with `npm install --ignore-scripts` into ORT_DIR the
# first time) and /usr/bin/python3 with torch; skipped with a message when any is missing. Nothing in the
# build or the tests depends on it. Environment: BUILD_DIR (default build), ORT_DIR (default
# $BUILD_DIR/bench/ort), ROUNDS (default 3), CALLS64 (batch-64 calls per run, default 200), CALLS1 (default
# 3000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BUILD_DIR=${BUILD_DIR:-build}
ORT_DIR=${ORT_DIR:-$BUILD_DIR/bench/ort}
ROUNDS=${ROUNDS:-3}
CALLS64=${CALLS64:-200}
CALLS1=${CALLS1:-3000}
models=("$@")
[ "${#models[@]}" -gt 0 ] || models=(mlp cnn)

skip() { echo "bench/ort/run.sh: $*; skipping the ONNX Runtime reference"; exit 0; }
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || skip "node or npm is not installed"
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || skip "/usr/bin/python3 has no torch"
mkdir -p "$ORT_DIR"
if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
    [ -f "$ORT_DIR/package.json" ] || echo '{"name": "cgrad-ort-bench", "private": true}' >"$ORT_DIR/package.json"
    (cd "$ORT_DIR" && npm install --ignore-scripts --no-audit --no-fund onnxruntime-node >npm.log 2>&1) ||
        skip "npm install onnxruntime-node failed (see $ORT_DIR/npm.log)"
fi
cp bench/ort/time.js "$ORT_DIR/time.js"
/usr/bin/python3 bench/ort/export.py "$ORT_DIR" >"$ORT_DIR/export.log" 2>&1 ||
    skip "exporting the models failed (see $ORT_DIR/export.log)"

kv() { sed -n "s/.*$1=\([-+0-9.eE]*\).*/\1/p" | tail -n 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2fx", a / b; else print "n/a" }'; }

echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds; onnxruntime-node" \
     "$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "$ORT_DIR/node_modules/onnxruntime-node/package.json" | head -n 1)"
for model in "${models[@]}"; do
    case "$model" in
        mlp) bin=$BUILD_DIR/examples/fashion_mlp/fashion_mlp shape=784 ;;
        cnn) bin=$BUILD_DIR/examples/fashion_cnn/fashion_cnn shape=1x28x28 ;;
        *) echo "bench/ort/run.sh: unknown model '$model' (mlp, cnn)" >&2; exit 2 ;;
    esac
    [ -x "$bin" ] || { echo "skip $model: $bin is not built"; continue; }
    c64=() c64s=() o64a=() o64b=() c1=() o1=()
    for _ in $(seq "$ROUNDS"); do
        # `bench` predicts at least as many times as it trains: --iters sets both
        c64+=("$("$bin" bench --batch-size 64 --iters "$CALLS64" | kv predict_us_per_sample)")
        c64s+=("$(CGRAD_THREADS=1 "$bin" bench --batch-size 64 --iters "$CALLS64" | kv predict_us_per_sample)")
        o64a+=("$(node "$ORT_DIR/time.js" "$ORT_DIR/$model.onnx" "$shape" 1 64 "$CALLS64" | kv predict_us_per_sample)")
        o64b+=("$(node "$ORT_DIR/time.js" "$ORT_DIR/$model.onnx" "$shape" 2 64 "$CALLS64" | kv predict_us_per_sample)")
        c1+=("$("$bin" bench --batch-size 1 --iters "$CALLS1" | kv predict_us_per_sample)")
        o1+=("$(node "$ORT_DIR/time.js" "$ORT_DIR/$model.onnx" "$shape" 1 1 "$CALLS1" | kv predict_us_per_sample)")
    done
    m64=$(median "${c64[@]}") m64s=$(median "${c64s[@]}") ma=$(median "${o64a[@]}") mb=$(median "${o64b[@]}")
    m1=$(median "${c1[@]}") mo1=$(median "${o1[@]}")
    best64=$(printf '%s\n' "$ma" "$mb" | sort -g | head -n 1)
    printf '%-4s predict b64 us/sample  cgrad=%s cgrad(1t)=%s ort(1t)=%s ort(2t)=%s ratio=%s\n' "$model" "$m64" \
        "$m64s" "$ma" "$mb" "$(ratio "$best64" "$m64")"
    printf '%-4s predict b1 us/sample   cgrad=%s ort(1t)=%s ratio=%s\n' "$model" "$m1" "$mo1" "$(ratio "$mo1" "$m1")"
done
