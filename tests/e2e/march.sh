#!/usr/bin/env bash
# One host binary for every CPU of its level: digits_mlp built with
# `cgrad build --march x86-64-v3` runs here with the GEMM shim's AVX-512
# kernel (chosen at run time) and, under `qemu-x86_64 -cpu Haswell` (a CPU
# without AVX-512), with OpenBLAS, predicting the same values. A probe linked
# with the same library says which path each run takes.
#
#   bash tests/e2e/march.sh CGRAD_TOOL SOURCE_DIR
# Skips (77) without qemu-user, on a CPU without AVX-512, or off x86-64.
set -euo pipefail
tool=$(realpath "$1")
src=$(realpath "$2")
[ "$(uname -m)" = x86_64 ] || { echo "march: not an x86-64 machine"; exit 77; }
command -v qemu-x86_64 >/dev/null || { echo "march: qemu-x86_64 is not installed (Debian qemu-user)"; exit 77; }
grep -qw avx512f /proc/cpuinfo || { echo "march: this CPU has no AVX-512 kernel to choose"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "march: $*" >&2
    exit 1
}
haswell() {
    qemu-x86_64 -cpu Haswell "$@" 2>"$tmp/qemu.err" || fail "under qemu -cpu Haswell, $1 failed: $(grep -v warning "$tmp/qemu.err" | tail -3)"
}

cd "$tmp"
"$tool" build "$src/examples/digits_mlp/model.c" -o v3 --march x86-64-v3 >build.log 2>&1 ||
    fail "cgrad build --march x86-64-v3 failed: $(tail -3 build.log)"
cat >probe.c <<'EOF'
#include <cgrad_gemm.h>
#include <stdio.h>
int main(void)
{
    puts(cgrt_gemm_uses_openblas() ? "openblas" : "kernel");
    return 0;
}
EOF
# shellcheck disable=SC2046 # the flags are words
cc -std=c99 -march=x86-64-v3 $("$tool" --print-cflags) probe.c $("$tool" --print-libs) -o probe ||
    fail "the probe does not build with --print-cflags/--print-libs"
[ "$(./probe)" = kernel ] || fail "built for x86-64-v3 on this AVX-512 CPU, the shim did not choose its kernel"
[ "$(haswell ./probe)" = openblas ] || fail "on a Haswell CPU the shim did not fall back to OpenBLAS"

./v3/digits_mlp fit --data "$src/examples/data/digits.csv.gz" --epochs 3 --verbose 0 --save w.ckpt >fit.log ||
    fail "fit failed"
zcat "$src/examples/data/digits.csv.gz" | awk "NR <= 64" | cut -d, -f1-64 >x.csv
./v3/digits_mlp predict --weights w.ckpt --input x.csv >here.txt || fail "predict failed here"
haswell ./v3/digits_mlp predict --weights w.ckpt --input x.csv >haswell.txt
[ "$(wc -l <haswell.txt)" = 64 ] || fail "under qemu, predict wrote $(wc -l <haswell.txt) rows, not 64"
paste -d, here.txt haswell.txt | awk -F, '
    { n = NF / 2
      for (i = 1; i <= n; i++) {
          d = $i - $(i + n); d = d < 0 ? -d : d
          m = $i < 0 ? -$i : $i; if (d > worst) worst = d
          if (d > 1e-3 * (1 + m)) bad++ } }
    END { printf "march: 64 predictions, here (kernel) against Haswell (OpenBLAS): worst difference %g\n", worst
          exit bad > 0 }' || fail "the two runs predict different values"
