#!/usr/bin/env bash
# The installed tree, away from the trees it was built in: `meson install`
# into a DESTDIR, the prefix moved to another folder, then, in a clean
# environment (PATH: the moved bin and the system's), the tool's --help and
# flags, pkg-config, both manual pages, and examples/external built three
# ways (its Makefile, its CMake project, `cgrad build`) and trained on iris.
#
#   bash tests/e2e/install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "install: $*" >&2
    exit 1
}

meson install -C "$build" --destdir "$tmp/stage" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
    fail "meson install failed: $(tail -5 "$tmp/install.log")"
tool=$(find "$tmp/stage" -path '*/bin/cgrad' -type f)
[ -n "$tool" ] || fail "no bin/cgrad was installed"
mv "$(dirname "$(dirname "$tool")")" "$tmp/moved"
rm -rf "$tmp/stage"
prefix=$tmp/moved
pcdir=$(dirname "$(find "$prefix" -name cgrad-rt.pc)")
for f in bin/cgrad include/cgrad/cgrad.h include/cgrad/cgrad_rt.h include/cgrad/activations.def \
         share/man/man1/cgrad.1 share/man/man7/cgrad-model.7; do
    [ -f "$prefix/$f" ] || fail "$f was not installed"
done
for lib in libcgrad libcgrad_rt libcgrad_gemm; do
    find "$prefix" -name "$lib.a" -o -name "$lib.so" | grep -q . || fail "$lib was not installed"
done
[ -f "$pcdir/cgrad.pc" ] || fail "cgrad.pc was not installed"
if grep -aF -e "$src" -e "$build" "$prefix/bin/cgrad" >/dev/null; then
    fail "bin/cgrad names the source or build tree: $(strings "$prefix/bin/cgrad" | grep -F -e "$src" -e "$build" | head -3)"
fi

# Everything below sees only the moved tree and the system.
clean() {
    env -i PATH="$prefix/bin:/usr/bin:/bin" HOME="$tmp" LANG=C PKG_CONFIG_PATH="$pcdir" "$@"
}

out=$(clean cgrad --help) || fail "cgrad --help exited $?"
clean cgrad build --help >/dev/null || fail "cgrad build --help exited $?"
(cd "$tmp" && clean cgrad build "$src/examples/external/model.c" -o asked-help --help >/dev/null) ||
    fail "cgrad build MODEL.c --help exited $?"
[ ! -e "$tmp/asked-help" ] || fail "cgrad build MODEL.c --help built the model instead of only printing the help"
grep -q -- '--emit-only' <<<"$out" || fail "cgrad --help does not describe --emit-only"
if clean cgrad --no-such-flag >/dev/null 2>"$tmp/err"; then
    fail "cgrad --no-such-flag exited 0"
fi
grep -q '^usage: cgrad build' "$tmp/err" || fail "an unknown flag does not print the usage"
if clean cgrad build --no-such-flag >/dev/null 2>"$tmp/err"; then
    fail "cgrad build --no-such-flag exited 0"
fi
grep -q '^usage: cgrad build' "$tmp/err" || fail "cgrad build with an unknown flag does not print the usage"
[ "$(clean cgrad --version)" = "cgrad $(sed -n "s/^#define CGRT_VERSION \"\([^\"]*\)\".*/\1/p" \
    "$prefix/include/cgrad/cgrad_rt.h")" ] || fail "cgrad --version disagrees with cgrad_rt.h"
cflags=$(clean cgrad --print-cflags)
[[ $cflags == "-I$prefix/include/cgrad "* ]] ||
    fail "--print-cflags does not name the moved include folder: $cflags"
pc=$(clean pkg-config --cflags --libs cgrad-rt) || fail "pkg-config --cflags --libs cgrad-rt failed"
grep -q -- '-lcgrad_rt' <<<"$pc" || fail "pkg-config cgrad-rt has no -lcgrad_rt: $pc"
[ "$(realpath "$(sed -n 's/^-I\([^ ]*cgrad\) .*/\1/p' <<<"$pc")")" = "$prefix/include/cgrad" ] ||
    fail "pkg-config cgrad-rt does not point into the moved tree: $pc"
for page in man1/cgrad.1 man7/cgrad-model.7; do
    text=$(clean man -l -P cat "$prefix/share/man/$page" 2>&1) || fail "man -l $page failed"
    grep -q '^NAME' <<<"$text" && grep -q '^SYNOPSIS' <<<"$text" || fail "man -l $page renders no NAME/SYNOPSIS"
done

# examples/external, trained to the accuracy iris allows (its test part: 30 rows).
cp -r "$src/examples/external" "$tmp/proj"
cp "$src/examples/data/iris.csv" "$tmp/proj/"
check_trains() {
    local what=$1 bin=$2
    (cd "$tmp/proj" && clean "$bin" fit --data iris.csv --epochs 60 --verbose 0 >"$tmp/fit.log" 2>&1) ||
        fail "$what: fit failed: $(tail -3 "$tmp/fit.log")"
    local acc
    acc=$(sed -n 's/^test: .*accuracy=\([0-9.]*\).*/\1/p' "$tmp/fit.log")
    awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.8) }' || fail "$what: test accuracy ${acc:-none} < 0.8"
    echo "install: $what trains: test accuracy $acc"
}
(cd "$tmp/proj" && clean make >"$tmp/make.log" 2>&1) || fail "make failed: $(tail -5 "$tmp/make.log")"
check_trains Makefile ./iris
(cd "$tmp/proj" && clean cmake -S . -B cmake-build >"$tmp/cmake.log" 2>&1 &&
    clean cmake --build cmake-build >>"$tmp/cmake.log" 2>&1) || fail "cmake failed: $(tail -5 "$tmp/cmake.log")"
check_trains CMake cmake-build/iris
(cd "$tmp/proj" && clean cgrad build model.c -o tool-build >"$tmp/build.log" 2>&1) ||
    fail "cgrad build failed: $(tail -5 "$tmp/build.log")"
check_trains "cgrad build" tool-build/iris
