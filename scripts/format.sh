#!/usr/bin/env bash
# One style for the C sources: formats them with .clang-format, or with
# --check lists what differs and fails (the `style` test runs that).
#
# The files: compiler/, runtime/ and tests/ (*.c, *.h), except the golden
# emitted files (tests/ops/golden: they are the emitter's output, compared byte
# for byte) and the templates (emitted text: their layout is the emitted
# code's). Hand-laid tables sit between /* clang-format off */ and on.
#
# The check needs clang-format 14 (Debian 12's): other versions lay out some
# constructs differently, so with another version it skips (exit 77).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "format.sh: unknown argument '$1' (--check, --help)" >&2; exit 2 ;;
esac

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
    echo "format.sh: $CLANG_FORMAT is not installed (scripts/setup.sh installs it)" >&2
    exit 77
fi
version=$("$CLANG_FORMAT" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$version" != 14 ]; then
    echo "format.sh: $CLANG_FORMAT is version ${version:-unknown}; the style is fixed with version 14" >&2
    exit 77
fi

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "format.sh: not a git checkout; the file list comes from git ls-files" >&2
    exit 77
fi
mapfile -t files < <(git ls-files 'compiler/*.[ch]' 'runtime/*.[ch]' 'tests/*.[ch]' | grep -v '^tests/ops/golden/')
if [ "${#files[@]}" -eq 0 ]; then
    echo "format.sh: no sources found (run it inside the git checkout)" >&2
    exit 2
fi
if [ "$check" -eq 1 ]; then
    "$CLANG_FORMAT" --dry-run -Werror "${files[@]}"
    echo "format.sh: ${#files[@]} files follow .clang-format"
else
    "$CLANG_FORMAT" -i "${files[@]}"
fi
