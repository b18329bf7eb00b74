#!/usr/bin/env bash
# Set up, build, then train the Fashion-MNIST MLP for 5 epochs.
# Extra arguments are passed on to `fit`, e.g. `bash scripts/demo.sh --epochs 1`.
# The last line printed is the test-set result: `test: loss=... accuracy=...`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

BIN=${BUILD_DIR:-build}/examples/fashion_mlp/fashion_mlp
if [ ! -x "$BIN" ]; then
    echo "demo.sh: $BIN was not built" >&2
    exit 1
fi

printf '==> %s\n' "$BIN fit --epochs 5 $*"
exec "$BIN" fit --epochs 5 "$@"
