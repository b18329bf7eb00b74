#!/usr/bin/env bash
# Builds a Debian package of cgrad (prefix /usr) with dpkg-deb:
#
#   bash scripts/deb.sh [OUT_DIR]     # writes OUT_DIR/cgrad_VERSION_ARCH.deb (default: build-deb/)
#
# It configures a release build in build-deb/build, installs it into a staging
# folder with `meson install --destdir`, writes DEBIAN/control (the runtime
# packages the tool and the generated binaries need, and the -dev ones the
# tool compiles against) and packs it. `dpkg -i` then installs what
# `meson install` would, under /usr.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(realpath -m "${1:-$root/build-deb}")
build=$out/build
stage=$out/stage

version=$(sed -n "s/^  version : '\([^']*\)',$/\1/p" "$root/meson.build")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "deb.sh: no version in meson.build" >&2; exit 1; }

rm -rf "$stage"
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" --prefix /usr -Dbuildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >"$out/ninja.log" 2>&1 || { tail -20 "$out/ninja.log" >&2; exit 1; }
meson install -C "$build" --destdir "$stage" --quiet

mkdir -p "$stage/DEBIAN"
size=$(du -sk "$stage/usr" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: cgrad
Version: $version
Architecture: $arch
Maintainer: cgrad maintainers <cgrad@localhost>
Installed-Size: $size
Depends: gcc | c-compiler, libc6-dev, zlib1g-dev, libopenblas-dev
Suggests: graphviz, gcc-arm-none-eabi
Section: devel
Priority: optional
Description: graph compiler that writes neural-network training code in C
 cgrad builds a neural network from a C builder API, differentiates it ahead
 of time and writes the forward pass, the backward pass and the optimizer step
 as standalone C: a per-model training binary with a Keras-style command line,
 or portable code for firmware (no heap, no stdio).
EOF
deb=$out/cgrad_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
