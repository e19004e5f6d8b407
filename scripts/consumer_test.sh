#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks libsegops as a user gets it: builds and installs it into a
# temporary prefix (cmake --install), checks what was installed (files,
# soname, exported symbols: segops_* only, no build-tree paths in the CMake
# package), checks that the installed header compiles alone as C11 and
# C++17 under gcc and clang with -Wall -Wextra -Werror -pedantic, then
# builds tests/consumer against the installed tree with pkg-config and
# with find_package(segops), in C and in C++, shared and static, and runs
# every program against the installed segops-sink (loopback) and against
# a port where nothing listens.
#
#   scripts/consumer_test.sh [BUILD_DIR]     (default build/consumer)
#   scripts/consumer_test.sh --installed PREFIX
#       the same checks against a libsegops already installed in PREFIX
#       (e.g. /usr from the Debian packages, scripts/deb_test.sh): nothing
#       is built or installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
installed=
if [ "${1:-}" = "--installed" ]; then
    installed=${2:?usage: consumer_test.sh --installed PREFIX}
    build=
else
    build=${1:-build/consumer}
fi
jobs=$(nproc)
work=$(mktemp -d /tmp/segops-consumer.XXXXXX)
sink_pid=
cleanup() {
    if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; passed=$((passed + 1)); }
passed=0

if [ -n "$installed" ]; then
    echo "=== consumer: libsegops installed in $installed"
    prefix=$installed
else
    echo "=== consumer: build and install libsegops into $work/prefix"
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSEGOPS_WERROR=ON \
        -DSEGOPS_TESTS=OFF -DSEGOPS_BENCH=OFF >/dev/null
    cmake --build "$build" -j"$jobs" >/dev/null
    prefix=$work/prefix
    cmake --install "$build" --prefix "$prefix" >/dev/null
fi

# --- what was installed
# soname: libsegops.so.0.MINOR while the major version is 0, then .so.MAJOR
major=$(sed -n 's/^#define SEGOPS_VERSION_MAJOR //p' include/segops.h)
minor=$(sed -n 's/^#define SEGOPS_VERSION_MINOR //p' include/segops.h)
if [ "$major" -eq 0 ]; then soversion=0.$minor; else soversion=$major; fi
if [ -n "$installed" ]; then
    pc=$(find "$prefix/lib" "$prefix/share" -name segops.pc -print -quit 2>/dev/null)
else
    pc=$(find "$prefix" -name segops.pc -print -quit)
fi
[ -n "$pc" ] || fail "segops.pc not installed"
libdir=$(dirname "$(dirname "$pc")")
so=$(find "$libdir" -maxdepth 1 -name 'libsegops.so.*.*.*' -print -quit)
for f in "$prefix/include/segops.h" "$prefix/include/segops.hpp" "$libdir/libsegops.a" \
         "$libdir/libsegops.so" "$libdir/libsegops.so.$soversion" "$so" \
         "$libdir/cmake/segops/segopsConfig.cmake" \
         "$libdir/cmake/segops/segopsConfigVersion.cmake" \
         "$libdir/cmake/segops/segopsTargets.cmake" \
         "$prefix/bin/segops-send" "$prefix/bin/segops-sink" "$prefix/bin/segops-chaos" \
         "$prefix/share/doc/libsegops/LICENSE" "$prefix/share/doc/libsegops/CHANGELOG.md"; do
    [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
ok "installed files"
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libsegops.so.$soversion" ] || fail "SONAME is '$soname', want libsegops.so.$soversion"
ok "SONAME $soname"
# Exported symbols: every defined dynamic symbol is segops_* (hidden
# visibility by default, SEGOPS_API for the public ones).
exported=$(nm -D --defined-only "$so" | awk '{print $3}')
stray=$(printf '%s\n' "$exported" | grep -v '^segops_' | grep -v '^$' || true)
[ -z "$stray" ] || fail "symbols exported without the segops_ prefix:
$stray"
missing=""
for s in $(sed -n 's/^SEGOPS_API [^(]*[ *]\(segops_[a-z0-9_]*\)(.*/\1/p' include/segops.h); do
    printf '%s\n' "$exported" | grep -qx "$s" || missing="$missing $s"
done
[ -z "$missing" ] || fail "public functions not exported:$missing"
ok "exported symbols: $(printf '%s\n' "$exported" | wc -l), all segops_*, every SEGOPS_API function"
# The static library too: its internal symbols are local (prelinked with
# ld -r, hidden symbols localised), so a program's own sg_* cannot clash.
globals=$(nm -g --defined-only "$libdir/libsegops.a" | awk 'NF == 3 {print $3}')
stray=$(printf '%s\n' "$globals" | grep -v '^segops_' | grep -v '^$' || true)
[ -z "$stray" ] || fail "libsegops.a defines globals without the segops_ prefix:
$stray"
ok "static library: $(printf '%s\n' "$globals" | grep -c .) global symbols, all segops_*"
if grep -rq -e "$root" -e 'PkgConfig::' "$libdir/cmake/segops/"; then
    grep -rn -e "$root" -e 'PkgConfig::' "$libdir/cmake/segops/" >&2
    fail "the CMake package refers to the build tree"
fi
grep -q "^prefix=$prefix\$" "$pc" || fail "segops.pc prefix is not the install prefix: $(head -1 "$pc")"
ok "CMake package free of build-tree paths; segops.pc points at the install prefix"

# --- the installed header alone, strict, in C and C++
echo '#include <segops.h>
int segops_header_check(void);
int segops_header_check(void) { segops_prop p[] = {SEGOPS_STR("k", "v"), SEGOPS_I64("n", 1)};
  return (int)sizeof(p) + SEGOPS_EINVAL; }' > "$work/h.c"
cp "$work/h.c" "$work/h.cpp"
for cc in gcc clang; do
    command -v "$cc" >/dev/null || continue
    for std in c99 c11 c17; do
        "$cc" -std=$std -Wall -Wextra -Werror -pedantic -I"$prefix/include" -c "$work/h.c" \
            -o "$work/h.o" || fail "segops.h: $cc -std=$std"
    done
    ok "segops.h compiles alone: $cc -std=c99/c11/c17 -pedantic -Werror"
done
for cxx in g++ clang++; do
    command -v "$cxx" >/dev/null || continue
    for std in c++11 c++17 c++20; do
        "$cxx" -std=$std -Wall -Wextra -Werror -pedantic -I"$prefix/include" -c "$work/h.cpp" \
            -o "$work/h.o" || fail "segops.h: $cxx -std=$std"
    done
    ok "segops.h compiles alone: $cxx -std=c++11/c++17/c++20 -pedantic -Werror"
    printf '#include <segops.hpp>\nint segops_hpp_check();\nint segops_hpp_check() { segops::client c;\n  return c.track("u", "e", {segops::str("k", "v")}); }\n' > "$work/hpp.cpp"
    for std in c++17 c++20; do
        "$cxx" -std=$std -Wall -Wextra -Werror -pedantic -I"$prefix/include" -c "$work/hpp.cpp" \
            -o "$work/h.o" || fail "segops.hpp: $cxx -std=$std"
    done
    ok "segops.hpp compiles alone: $cxx -std=c++17/c++20 -pedantic -Werror"
done

# --- a local SegOps server: the installed segops-sink on loopback
"$prefix/bin/segops-sink" --port-file "$work/port" --key sk_consumer >"$work/sink.out" 2>&1 &
sink_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || fail "segops-sink did not start: $(cat "$work/sink.out")"
live_url="http://127.0.0.1:$(cat "$work/port")"

# Runs a consumer twice: delivering to the sink, and against nothing.
run_consumer() { # name, binary
    SEGOPS_API_URL=$live_url SEGOPS_API_KEY=sk_consumer "$2" >"$work/run.out" 2>&1 ||
        { cat "$work/run.out"; fail "$1: delivery to segops-sink"; }
    env -u SEGOPS_API_URL -u SEGOPS_API_KEY "$2" >"$work/run.out" 2>&1 ||
        { cat "$work/run.out"; fail "$1: unreachable server"; }
    local so_used
    so_used=$(ldd "$2" | awk '/libsegops\.so/ {print $3}')
    # canonical paths: with merged /usr, ldd names /usr/lib as /lib
    [ -z "$so_used" ] || so_used=$(readlink -f "$so_used")
    case "$so_used" in
        "" | "$(readlink -f "$prefix")"/*) ;;
        *) fail "$1: uses $so_used, not the installed library" ;;
    esac
    ok "$1"
}

# --- pkg-config, plain compiler drivers
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[ "$(pkg-config --modversion segops)" = "$(sed -n 's/^#define SEGOPS_VERSION_STRING "\(.*\)"/\1/p' include/segops.h)" ] ||
    fail "pkg-config --modversion segops"
cflags=$(pkg-config --cflags segops)
libs=$(pkg-config --libs segops)
static_libs=$(pkg-config --static --libs segops | sed 's/-lsegops\b/-l:libsegops.a/')
cc -std=c11 -Wall -Wextra -Werror -pedantic tests/consumer/main.c $cflags $libs \
    -Wl,-rpath,"$libdir" -o "$work/pc_c"
run_consumer "pkg-config, C11, shared (cc)" "$work/pc_c"
c++ -std=c++17 -Wall -Wextra -Werror -pedantic tests/consumer/main.cpp $cflags $libs \
    -Wl,-rpath,"$libdir" -o "$work/pc_cpp"
run_consumer "pkg-config, C++17, shared (c++)" "$work/pc_cpp"
cc -std=c11 -Wall -Wextra -Werror -pedantic tests/consumer/main.c $cflags $static_libs \
    -o "$work/pc_c_static"
ldd "$work/pc_c_static" | grep -q libsegops && fail "static build links libsegops.so"
run_consumer "pkg-config --static, C11, static libsegops.a (cc)" "$work/pc_c_static"

# --- CMake: pkg_check_modules and find_package
cmake -S tests/consumer -B "$work/b_pc" -DCONSUMER_WITH=pkgconfig >/dev/null
cmake --build "$work/b_pc" -j"$jobs" >/dev/null
run_consumer "CMake + pkg-config, C11" "$work/b_pc/consumer_c"
run_consumer "CMake + pkg-config, C++17" "$work/b_pc/consumer_cpp"
unset PKG_CONFIG_PATH
cmake -S tests/consumer -B "$work/b_cm" -DCONSUMER_WITH=cmake -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/b_cm" -j"$jobs" >/dev/null
run_consumer "CMake find_package, C11, segops::segops" "$work/b_cm/consumer_c"
run_consumer "CMake find_package, C++17, segops::segops" "$work/b_cm/consumer_cpp"
ldd "$work/b_cm/consumer_c_static" | grep -q libsegops && fail "segops_static links libsegops.so"
run_consumer "CMake find_package, C11, segops::segops_static" "$work/b_cm/consumer_c_static"
# an ABI-incompatible version must not be accepted: while the major is 0,
# every other 0.MINOR (SameMinorVersion); from 1.0, the next major
if [ "$major" -eq 0 ]; then other=0.$((minor + 1)); else other=$((major + 1)).0; fi
printf 'cmake_minimum_required(VERSION 3.18)\nproject(v C)\nfind_package(segops %s REQUIRED)\n' \
    "$other" > "$work/v.cmake"
mkdir -p "$work/v" && cp "$work/v.cmake" "$work/v/CMakeLists.txt"
if cmake -S "$work/v" -B "$work/v/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
    fail "find_package(segops $other) accepted this version"
fi
ok "find_package refuses segops $other (another ABI)"

# --- segops-send, installed, against the sink
"$prefix/bin/segops-send" --url "$live_url" --key sk_consumer --quiet \
    --user consumer --type installed_send ok=true || fail "installed segops-send"
ok "installed segops-send delivers"

echo "consumer: $passed passed, 0 failed"
