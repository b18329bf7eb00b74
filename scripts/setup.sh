#!/usr/bin/env bash
# Set up a Debian 12 machine for cgrad and build the project into build/.
#
#   bash scripts/setup.sh            # build dependencies + dataset, configure, build
#   bash scripts/setup.sh --torch    # also the optional packages: python3-torch/python3-numpy
#                                    # (the PyTorch-reference tests and bench/), the Arm
#                                    # cross compiler, newlib and QEMU (tests/firmware), and
#                                    # chromium (the e2e_pictures suite renders SVG in it)
#
# Idempotent: packages are installed only when `dpkg -s` says one is missing, so a
# machine that already has everything does no network work. apt-get runs directly
# as root, else through sudo. `apt-get update` runs only if an install fails (for
# example on a fresh image with empty package lists).
#
# Environment: BUILD_DIR (default: build), BUILDTYPE (default: release),
# CGRAD_SKIP_APT=1 to never touch apt, CGRAD_SKIP_BUILD=1 to stop after packages.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILDTYPE=${BUILDTYPE:-release}
want_torch=0
for arg in "$@"; do
    case "$arg" in
        --torch) want_torch=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

# groff-base: the runtime tests render docs/man/cgrad-model.7 (a fresh Debian 12 image lacks it)
# libclang-dev: the libclang engine of `cgrad check` (meson builds it when found)
# graphviz: `--graph` has its dot draw NAME.svg beside NAME.dot
# make, cmake, man-db: the install test builds examples/external both ways and renders the manual pages with man -l
REQUIRED=(meson ninja-build gcc clang clang-format libclang-rt-dev pkg-config zlib1g-dev libopenblas-dev
          libcriterion-dev dataset-fashion-mnist groff-base libclang-dev graphviz make cmake man-db)
# installed best-effort with --torch; the tests that need them skip without them
# (chromium and the 14 packages it brings install in about a minute; make runs examples/firmware's Makefile)
OPTIONAL=(python3-torch python3-numpy gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm chromium qemu-user)

step() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }

# True when the package is fully installed (not merely known, or config-files only).
installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing_of() {
    local p
    for p in "$@"; do
        installed "$p" || printf '%s\n' "$p"
    done
}

SUDO=()
need_root() {
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "setup.sh: need root or sudo to install: $*" >&2
        echo "          install them by hand, or rerun as root" >&2
        return 1
    fi
}

apt_updated=0
apt_install() {
    local cmd=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive
               apt-get install -y --no-install-recommends "$@")
    if "${cmd[@]}"; then
        return 0
    fi
    if [ "$apt_updated" -eq 0 ]; then
        step "apt-get install failed; refreshing package lists and retrying"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
        apt_updated=1
        "${cmd[@]}"
    else
        return 1
    fi
}

# --- packages -----------------------------------------------------------------
if [ "${CGRAD_SKIP_APT:-0}" = 1 ]; then
    step "skipping package check (CGRAD_SKIP_APT=1)"
elif ! command -v dpkg >/dev/null 2>&1; then
    warn "dpkg not found (not Debian?); install by hand: ${REQUIRED[*]}"
else
    mapfile -t miss_req < <(missing_of "${REQUIRED[@]}")
    miss_opt=()
    if [ "$want_torch" -eq 1 ]; then
        mapfile -t miss_opt < <(missing_of "${OPTIONAL[@]}")
    fi

    if [ "${#miss_req[@]}" -eq 0 ] && [ "${#miss_opt[@]}" -eq 0 ]; then
        step "packages: all present, nothing to install"
    else
        if [ "${#miss_req[@]}" -gt 0 ]; then
            step "installing: ${miss_req[*]}"
            need_root "${miss_req[@]}"
            apt_install "${miss_req[@]}"
        fi
        if [ "${#miss_opt[@]}" -gt 0 ]; then
            step "installing (optional): ${miss_opt[*]}"
            # one at a time, so that a package missing from the archive costs only its own tests
            if need_root "${miss_opt[@]}"; then
                for p in "${miss_opt[@]}"; do
                    apt_install "$p" || warn "could not install $p; the tests that need it will skip"
                done
            else
                warn "could not install ${miss_opt[*]}; the PyTorch-reference and firmware tests will skip"
            fi
        fi
    fi
fi

if [ "${CGRAD_SKIP_BUILD:-0}" = 1 ]; then
    step "skipping build (CGRAD_SKIP_BUILD=1)"
    exit 0
fi

# --- configure and build ---------------------------------------------------------
# meson's own output is kept quiet unless it fails.
run_quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "setup.sh: failed: $*" >&2
        exit 1
    fi
}

if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
    step "meson setup --reconfigure $BUILD_DIR (buildtype=$BUILDTYPE)"
    run_quiet meson setup --reconfigure "$BUILD_DIR" --buildtype="$BUILDTYPE" -Dtests=true
else
    step "meson setup $BUILD_DIR (buildtype=$BUILDTYPE)"
    run_quiet meson setup "$BUILD_DIR" --buildtype="$BUILDTYPE" -Dtests=true
fi

step "ninja -C $BUILD_DIR"
ninja -C "$BUILD_DIR"
step "setup done"
