#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ABI check: compares the shared library of a build tree with the baseline
# kept in the repository (abi/libsegops.abi, written by abidw from the
# public headers' point of view) using abidiff from libabigail (Debian:
# abigail-tools).  Fails on any change of the ABI of the baseline's soname
# other than an addition: a removed or changed function, a struct member
# inserted, removed, moved or retyped.  Additions pass: new functions, and
# members appended to the end of segops_options / segops_counters /
# segops_delivery, the structs that may grow (segops.h, "ABI").
#
# abidiff flags an appended member as an ABI change (exit 4) like any
# other, and libabigail's `has_data_member_inserted_at = end` suppression
# also hides other changes of the same struct (a retyped member next to an
# appended one passed), so the report is read instead: every line of it
# must be one of the few that describe "members appended at the end of a
# growable struct" -- a whitelist, so anything else fails.
#
#   scripts/abi_check.sh BUILD_DIR            check (CI: build/gcc)
#   scripts/abi_check.sh BUILD_DIR --update   rewrite the baseline
#
# Refresh the baseline (--update, and commit abi/libsegops.abi) when the
# change is deliberate: after adding API (so that the next check protects
# it too), or with a new soname (a new 0.MINOR, or a new major from 1.0).
# A soname that differs from the baseline's fails until then.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: abi_check.sh BUILD_DIR [--update]}
baseline=abi/libsegops.abi
so=$(readlink -f "$build/libsegops.so")
[ -f "$so" ] || { echo "abi: no $build/libsegops.so: build first" >&2; exit 1; }
tmp=$(mktemp /tmp/segops-abi.XXXXXX)
trap 'rm -f "$tmp" "$tmp.report"' EXIT

# Public view only (types from include/), no locations or build paths, so
# that the file depends on the code and not on where it was built.
abidw --headers-dir include --drop-private-types --no-show-locs --no-comp-dir-path \
    --no-corpus-path --out-file "$tmp" "$so"
sed -i "s|path='$PWD/|path='|g" "$tmp"

if [ "${2:-}" = "--update" ]; then
    cp "$tmp" "$baseline"
    echo "abi: baseline $baseline rewritten from $so ($(grep -o "soname='[^']*'" "$baseline"))"
    exit 0
fi

want=$(grep -o "soname='[^']*'" "$baseline")
got=$(grep -o "soname='[^']*'" "$tmp")
if [ "$want" != "$got" ]; then
    echo "abi: FAIL: the baseline is for $want, the library has $got." >&2
    echo "abi: a new soname is a deliberate ABI break: refresh the baseline with" >&2
    echo "     scripts/abi_check.sh $build --update   (and commit $baseline)" >&2
    exit 1
fi

rc=0
abidiff --no-added-syms "$baseline" "$tmp" >"$tmp.report" || rc=$?
cat "$tmp.report"
if [ "$rc" -eq 4 ] && python3 - "$tmp.report" <<'PY'
import re, sys
growable = r"segops_(options|counters|delivery)"
allowed = [
    r"(Functions|Variables) changes summary: .*",
    r"\d+ functions? with some indirect sub-type changes?:",
    r"\[C\] 'function .*' has some indirect sub-type changes:",
    r"parameter \d+ of type '.*' has sub-type changes:",
    r"in pointed to type '.*':",
    r"in unqualified underlying type '.*':",
    r"underlying type 'struct %s' changed:" % growable,
    r"type size changed from \d+ to \d+ \(in bits\)",
    r"\d+ data member insertions?:",
    r"'[^']*', at offset \d+ \(in bits\)",
]
old = None
for line in open(sys.argv[1]):
    t = line.strip()
    if not t:
        continue
    if not any(re.fullmatch(a, t) for a in allowed):
        sys.exit("abi: not an append to a growable struct: " + t)
    m = re.fullmatch(r"type size changed from (\d+) to \d+ \(in bits\)", t)
    if m:
        old = int(m.group(1))
    m = re.fullmatch(r"'[^']*', at offset (\d+) \(in bits\)", t)
    if m and (old is None or int(m.group(1)) < old):
        sys.exit("abi: a member inserted before the end: " + t)
PY
then
    echo "abi: only members appended to growable structs: compatible" \
         "(refresh the baseline to protect them: $0 $build --update)"
    rc=0
fi
if [ "$rc" -ne 0 ]; then
    echo "abi: FAIL (abidiff exit $rc: 4 = ABI change, 8 = incompatible, 1/2 = error)." >&2
    echo "abi: $so no longer has the ABI of $baseline ($want)." >&2
    echo "abi: if the change is an intended break, bump the version (soname) and refresh" >&2
    echo "     the baseline: scripts/abi_check.sh $build --update" >&2
    exit 1
fi
echo "abi: $so keeps the ABI of $baseline ($got)"
