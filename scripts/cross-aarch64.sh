#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cross-compiles the producer core (src/queue.c, src/barrier.c,
# src/clock.c) and its stress driver (tests/queue_stress.c) for aarch64
# and runs the driver under qemu-aarch64; every other library source is
# compiled for aarch64 too (not linked or run).  Installs what it needs on
# a fresh Debian 12 machine (root, or sudo); fails loudly when it cannot.
#
# What this proves, and what it does not.  It proves the code builds with
# -Werror for aarch64 against ConcurrencyKit's aarch64 configuration
# (ck_md.h with CK_MD_RMO, so ck's ring fences are real `dmb ishst` /
# `dmb ishld`, checked in the binary below), and that our aarch64 code
# paths run: the cntvct_el0 clock, the C11 fences and acquire/release
# accesses as aarch64 instructions, membarrier() and the CPU-migration
# barrier through the aarch64 system-call ABI.  It does NOT test weak
# memory ordering: qemu-user (TCG) on an x86 host runs the guest's memory
# accesses with the host's stronger (TSO) ordering, so a missing fence
# would not show here.  Only real aarch64 hardware (or a memory-model
# tool) can show that; the ordering argument is written in src/queue.h.
#
# ConcurrencyKit for arm64: libck-dev:arm64 cannot be installed beside the
# amd64 one the native build needs (both are Multi-Arch: same, but their
# /usr/include/ck_md.h differ: CK_MD_TSO vs CK_MD_RMO, so dpkg refuses),
# and the host's ck_md.h would compile ck's fences away on aarch64.  The
# code under test uses only ck_ring.h, which is header-only, so the arm64
# package is downloaded and unpacked into the build directory and only its
# headers are used (likewise liburing's and BearSSL's, for the compile-only
# pass over the rest of the library).
#
# Usage: scripts/cross-aarch64.sh [build-dir]   (default build/aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/aarch64}
mkdir -p "$out"
out=$(cd "$out" && pwd)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

# ---- tools: cross compiler, arm64 libc (static), qemu-user ----
pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu qemu-user-static)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
need_update=0
[ ${#missing[@]} -eq 0 ] || need_update=1
# arm64 package lists, to fetch libck-dev:arm64 (nothing arm64 is installed)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "cross-aarch64: adding the arm64 architecture for apt (package lists only)"
    $sudo dpkg --add-architecture arm64
    need_update=1
fi
if [ "$need_update" -eq 1 ]; then
    $sudo apt-get update -qq || { echo "cross-aarch64: FAILED: apt-get update" >&2; exit 1; }
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "cross-aarch64: installing ${missing[*]}"
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        { echo "cross-aarch64: FAILED: apt-get install ${missing[*]}" >&2; exit 1; }
fi
cc=aarch64-linux-gnu-gcc
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
command -v "$cc" >/dev/null || { echo "cross-aarch64: FAILED: no $cc" >&2; exit 1; }
[ -n "$qemu" ] || { echo "cross-aarch64: FAILED: no qemu-aarch64" >&2; exit 1; }

# ---- arm64 headers (ck; liburing and BearSSL for the compile-only pass),
# unpacked from Debian's arm64 -dev packages into the build dir ----
hdr_pkgs=(libck-dev liburing-dev libbearssl-dev)
vers=""
want=()
for p in "${hdr_pkgs[@]}"; do
    v=$(apt-cache show --no-all-versions "$p:arm64" 2>/dev/null | sed -n 's/^Version: //p' | head -1)
    [ -n "$v" ] || { echo "cross-aarch64: FAILED: apt knows no $p:arm64" >&2; exit 1; }
    vers+="$p=$v "
    want+=("$p:arm64=$v")
done
sysroot="$out/arm64-$(md5sum <<<"$vers" | cut -c1-12)"
if [ ! -f "$sysroot/.complete" ]; then
    dl=$(mktemp -d)
    chmod 0755 "$dl"
    chown _apt "$dl" 2>/dev/null || true # apt downloads as _apt where it can
    (cd "$dl" && apt-get download -qq "${want[@]}") ||
        { echo "cross-aarch64: FAILED: apt-get download ${hdr_pkgs[*]} (arm64)" >&2; rm -rf "$dl"; exit 1; }
    rm -rf "$sysroot"
    for d in "$dl"/*.deb; do
        dpkg-deb -x "$d" "$sysroot"
    done
    rm -rf "$dl"
    touch "$sysroot/.complete"
fi
inc="$sysroot/usr/include"
grep -q '^#define CK_MD_RMO' "$inc/ck_md.h" ||
    { echo "cross-aarch64: FAILED: $inc/ck_md.h is not ck's aarch64 (RMO) configuration" >&2; exit 1; }

# ---- build: the flags of the native build (_GNU_SOURCE as CMake adds it) ----
cflags=(-std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE -pthread
        -Iinclude -Isrc -isystem "$inc")
echo "=== aarch64: $cc $($cc -dumpfullversion); ${vers% }; $(basename "$qemu") $("$qemu" --version | head -1 | sed 's/.*version //')"
# Every library source compiles for aarch64 (objects only: the library
# itself is not linked or run here).
printf '%s\n' src/*.c |
    xargs -P 2 -I{} $cc "${cflags[@]}" -DSEGOPS_BUILDING -fvisibility=hidden -c {} -o /dev/null ||
    { echo "cross-aarch64: FAILED: the library does not compile for aarch64" >&2; exit 1; }
# The driver and the producer core it runs.
srcs=(src/queue.c src/barrier.c src/clock.c tests/queue_stress.c)
objs=()
for s in "${srcs[@]}"; do
    o="$out/$(basename "${s%.c}").o"
    $cc "${cflags[@]}" -c "$s" -o "$o"
    objs+=("$o")
done
$cc -static -pthread -o "$out/queue_stress" "${objs[@]}"
# ck's aarch64 fences made it into the code (a TSO ck_md.h would leave none)
dis=$(aarch64-linux-gnu-objdump -d "$out/queue_stress.o")
for f in 'dmb[[:space:]]+ishst' 'dmb[[:space:]]+ishld' 'mrs[[:space:]].*cntvct_el0'; do
    grep -Eq "$f" <<<"$dis" ||
        { echo "cross-aarch64: FAILED: no '$f' in the aarch64 code" >&2; exit 1; }
done

# ---- run under qemu-user (static binary: no arm64 sysroot needed) ----
# qemu-user emulates sched_setaffinity/getcpu; where the CPU-migration
# barrier cannot run there, the driver reports a skip for it (natively it
# is a failure).  QUEUE_STRESS_SCALE=N divides the load (the full load takes seconds).
echo "=== aarch64: tests/queue_stress under $(basename "$qemu") (not a weak-ordering test: see the header)"
timeout 900 "$qemu" "$out/queue_stress" --scale "${QUEUE_STRESS_SCALE:-1}" --allow-no-migrate
