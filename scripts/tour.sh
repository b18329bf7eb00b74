#!/usr/bin/env bash
# Regenerates the quotes in docs/tour.md from the emitted code, so the tour
# never drifts from what cgrad writes; with --check, fails (and shows the
# difference) when the committed tour is stale. The `tour` test runs that.
#
#   bash scripts/tour.sh [--check] [--gen PATH]
#
# --gen: the custom_layer example's model program (default
# build/examples/custom_layer/custom_layer_gen). It emits the portable
# flavour into a temporary folder; each quote in the tour is then cut from
# those files again.
#
# A quote is a marker line followed by a fenced block, which this script
# rewrites:
#   <!-- tour: FILE | fn | NAME -->            the function NAME, with the comment above it
#   <!-- tour: FILE | from | TEXT | to | END -->  first line containing TEXT, through the next containing END
#   <!-- tour: FILE | from | TEXT | lines | N --> N lines from the first containing TEXT
# FILE is an emitted file (custom_layer.c, custom_layer.h) or a path from the
# source root (examples/custom_layer/model.c).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

check=0
gen=$root/build/examples/custom_layer/custom_layer_gen
while [ $# -gt 0 ]; do
    case "$1" in
        --check) check=1 ;;
        --gen) gen=$(realpath -- "${2:?tour.sh: --gen needs a path}"); shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "tour.sh: unknown argument '$1' (--check, --gen PATH, --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ ! -x "$gen" ]; then
    echo "tour.sh: $gen is not built (ninja -C build, or give --gen PATH)" >&2
    exit 2
fi
cd "$root"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$gen" -o "$work/out" --flavour portable >/dev/null

# Prints the quote a marker asks for, or fails naming the tour's line.
quote() {
    local where=$1 file=$2 kind=$3 a=$4 b=${5:-} c=${6:-} path
    case "$file" in
        */*) path=$file ;;
        *) path=$work/out/$file ;;
    esac
    if [ ! -f "$path" ]; then
        echo "tour.sh: docs/tour.md:$where: no file $file" >&2
        return 1
    fi
    awk -v kind="$kind" -v a="$a" -v b="$b" -v c="$c" -v where="$where" -v file="$file" '
        { line[NR] = $0 }
        END {
            first = 0; last = 0
            if (kind == "fn") {
                for (i = 1; i <= NR && !first; i++)
                    if (line[i] ~ /^[A-Za-z]/ && index(line[i], " " a "(") && line[i] !~ /;$/)
                        first = i
                if (first) {
                    for (last = first; last <= NR && line[last] != "}"; last++) {}
                    if (line[first - 1] ~ /\*\/$/)
                        for (first--; first > 1 && line[first] !~ /^\/\*/; first--) {}
                }
            } else if (kind == "from") {
                for (i = 1; i <= NR && !first; i++)
                    if (index(line[i], a))
                        first = i
                if (first && b == "to") {
                    for (last = first; last <= NR && !index(line[last], c); last++) {}
                } else if (first && b == "lines" && c ~ /^[1-9][0-9]*$/) {
                    last = first + c - 1
                } else if (first) {
                    printf "tour.sh: docs/tour.md:%s: after \"from\" comes \"to\" or \"lines N\"\n", where > "/dev/stderr"
                    exit 1
                }
            } else {
                printf "tour.sh: docs/tour.md:%s: unknown quote kind \"%s\" (fn or from)\n", where, kind > "/dev/stderr"
                exit 1
            }
            if (!first || last > NR) {
                printf "tour.sh: docs/tour.md:%s: %s has no %s \"%s\"%s\n", where, file, kind == "fn" ? "function" : "line with", a,
                       first ? " ending as asked" : "" > "/dev/stderr"
                exit 1
            }
            for (i = first; i <= last; i++)
                print line[i]
        }' "$path"
}

# Rewrites the tour: after each marker, the fenced block that follows (if
# any) is dropped and a fresh quote written in its place.
regenerate() {
    local n=0 state=normal line fields
    local marker='^<!-- tour: (.*) -->$'
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        if [ "$state" = old-block ]; then
            [ "$line" = '```' ] && state=normal
            continue
        fi
        if [ "$state" = after-marker ] && [ "${line:0:3}" = '```' ]; then
            state=old-block
            continue
        fi
        state=normal
        printf '%s\n' "$line"
        if [[ $line =~ $marker ]]; then
            IFS='|' read -r -a fields <<<"${BASH_REMATCH[1]}"
            fields=("${fields[@]# }")
            fields=("${fields[@]% }")
            printf '```c\n'
            quote "$n" "${fields[@]}"
            printf '```\n'
            state=after-marker
        fi
    done <docs/tour.md
}

regenerate >"$work/tour.md"
if [ "$check" = 1 ]; then
    if ! diff -u docs/tour.md "$work/tour.md" >"$work/diff"; then
        cat "$work/diff"
        echo "tour.sh: docs/tour.md no longer quotes the emitted code; run bash scripts/tour.sh and read the change" >&2
        exit 1
    fi
    echo "tour.sh: docs/tour.md quotes the emitted code as it is"
else
    cp "$work/tour.md" docs/tour.md
fi
