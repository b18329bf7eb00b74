#!/usr/bin/env bash
# fashion_cnn's full training run: five epochs on all 60,000 Fashion-MNIST
# training images, then the 10,000 test images at 0.90 accuracy or better
# (CI trains on a slice instead: tests/e2e/test_cnn.c). Takes about 35 s per
# seed on two idle cores, minutes on a loaded machine.
#
#   bash bench/cnn_accuracy.sh              # seed 42 (the example's own)
#   SEEDS="42 1 7" bash bench/cnn_accuracy.sh
#
# Environment: BUILD_DIR (default build), SEEDS (default 42), FLOOR (default 0.90).
# Exit status 1 when a seed ends below FLOOR.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
SEEDS=${SEEDS:-42}
FLOOR=${FLOOR:-0.90}
bin=$BUILD_DIR/examples/fashion_cnn/fashion_cnn
[ -x "$bin" ] || { echo "cnn_accuracy.sh: $bin is not built" >&2; exit 2; }

status=0
for seed in $SEEDS; do
    start=$(date +%s)
    line=$("$bin" fit --epochs 5 --seed "$seed" --verbose 0 | tail -n 1)
    acc=$(echo "$line" | sed -n 's/.*accuracy=\([0-9.]*\).*/\1/p')
    verdict=ok
    if [ -z "$acc" ] || awk -v a="$acc" -v f="$FLOOR" 'BEGIN {exit !(a < f)}'; then
        verdict="below $FLOOR"
        status=1
    fi
    echo "seed $seed: $line ($(($(date +%s) - start)) s) $verdict"
done
exit "$status"
