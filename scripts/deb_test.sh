#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages, as a user gets them: builds them with
# `cpack -G DEB` (cmake/package.cmake), checks what each holds, installs
# them with dpkg on this machine, builds and runs the out-of-tree
# consumers against the installed packages (scripts/consumer_test.sh
# --installed /usr: pkg-config and find_package, C and C++, shared and
# static) and the README's C++ quick start, then removes the packages.
# Needs root (or sudo); refuses to run where a libsegops not installed by
# these packages is already in /usr.
#
#   scripts/deb_test.sh [BUILD_DIR]     (default build/deb)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/deb}
jobs=$(nproc)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ -e /usr/include/segops.h ] && ! dpkg -S /usr/include/segops.h >/dev/null 2>&1; then
    fail "/usr/include/segops.h exists and belongs to no package: not overwriting it"
fi

echo "=== deb: build the packages in $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DSEGOPS_WERROR=ON -DSEGOPS_TESTS=OFF -DSEGOPS_BENCH=OFF >/dev/null
cmake --build "$build" -j"$jobs" >/dev/null
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >/dev/null)
mapfile -t debs < <(ls "$build"/*.deb)
[ ${#debs[@]} -eq 3 ] || fail "want 3 packages, got: ${debs[*]}"
names=()
for d in "${debs[@]}"; do
    names+=("$(dpkg-deb -f "$d" Package)")
    echo "$(basename "$d"): $(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version);" \
         "Depends: $(dpkg-deb -f "$d" Depends)"
done

# What each package holds.
contents() { dpkg-deb -c "$build/$1"_*.deb | awk '{print $6}'; }
major=$(sed -n 's/^#define SEGOPS_VERSION_MAJOR //p' include/segops.h)
minor=$(sed -n 's/^#define SEGOPS_VERSION_MINOR //p' include/segops.h)
if [ "$major" -eq 0 ]; then soversion=0.$minor; else soversion=$major; fi
runtime=libsegops$soversion
[ -e "$(ls "$build/$runtime"_*.deb)" ] || fail "no package $runtime"
has() { # package, regex
    contents "$1" | grep -Eq "$2" || fail "$1 lacks $2"
}
hasnt() {
    if contents "$1" | grep -Eq "$2"; then fail "$1 holds $2"; fi
}
has "$runtime" "/usr/lib/[^/]+/libsegops\.so\.$soversion$"
has "$runtime" "/usr/lib/[^/]+/libsegops\.so\.[0-9.]+\.[0-9]+$"
has "$runtime" "/usr/share/doc/libsegops/LICENSE$"
has "$runtime" "/usr/share/doc/libsegops/CHANGELOG\.md$"
hasnt "$runtime" "include/|\.a$|libsegops\.so$|/bin/"
dpkg-deb -I "$build/$runtime"_*.deb shlibs >/dev/null || fail "$runtime has no shlibs file"
for f in /usr/include/segops.h /usr/include/segops.hpp "libsegops\.so$" "libsegops\.a$" \
         "pkgconfig/segops\.pc$" "cmake/segops/segopsConfig\.cmake$"; do
    has libsegops-dev "$f"
done
has segops-tools "/usr/bin/segops-send$"
has segops-tools "/usr/bin/segops-sink$"
echo "ok: package contents"

remove() {
    echo "=== deb: remove ${names[*]}"
    $sudo dpkg --purge "${names[@]}" >/dev/null
}
echo "=== deb: install with dpkg"
$sudo dpkg -i "${debs[@]}" >/dev/null
trap remove EXIT
dpkg -s "${names[@]}" >/dev/null

scripts/consumer_test.sh --installed /usr

echo "=== deb: the README's C++ quick start against the installed package"
work=$(mktemp -d /tmp/segops-deb.XXXXXX)
# shellcheck disable=SC2046
c++ -std=c++17 -Wall -Wextra -Werror -pedantic examples/quickstart.cpp \
    $(pkg-config --cflags --libs segops) -o "$work/quickstart_cpp"
ldd "$work/quickstart_cpp" | grep -Eq "libsegops\.so\.$soversion => (/usr)?/lib/" ||
    fail "quickstart.cpp does not use the installed library"
rm -rf "$work"
echo "ok: README C++ quick start builds against the package"

trap - EXIT
remove
[ ! -e /usr/include/segops.h ] || fail "/usr/include/segops.h left after removal"
echo "deb: all checks passed"
