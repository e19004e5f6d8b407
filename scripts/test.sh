#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and passes every test: gcc and clang with -Werror, the whole suite
# under ASan+UBSan, the concurrency and integration tests under TSan; the
# installed library, its ABI against the baseline, the Debian packages; the
# lanes' stress driver cross-compiled for aarch64 and run under qemu.
# Installs what it needs on a fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
jobs=$(nproc)

run() { # name, cmake args...
    local name=$1; shift
    echo "=== build: $name"
    cmake -S . -B "build/$name" -DSEGOPS_WERROR=ON -DSEGOPS_TESTS=ON "$@" >/dev/null
    cmake --build "build/$name" -j"$jobs" >/dev/null
}

run gcc -DCMAKE_C_COMPILER=gcc
echo "=== docs: Doxygen, every warning an error (Doxyfile: WARN_AS_ERROR)"
cmake --build build/gcc --target doc
echo "=== tests: gcc"
# two test programs at a time: most of them wait on timers and sockets, and
# every test must hold on a busy machine anyway (CI stays under 25 min)
ctest --test-dir build/gcc --output-on-failure -j"$jobs"
echo "=== tests under load: the integration and fault suites while every core is busy"
# Tests must hold on a busy machine: one busy loop per core, at normal
# priority, for the whole stage (and never past it).
hogs=()
for _ in $(seq "$jobs"); do
    timeout 1200 sh -c 'while :; do :; done' &
    hogs+=($!)
done
stop_hogs() { kill "${hogs[@]}" 2>/dev/null || true; wait "${hogs[@]}" 2>/dev/null || true; }
trap stop_hogs EXIT
ctest --test-dir build/gcc --output-on-failure -R 'client|pool|answers|edges|proxy|faults|deadlines|lifecycle|tls|fork'
stop_hogs
trap - EXIT
echo "=== packaging: install, out-of-tree consumers (C, C++; pkg-config, find_package), exported symbols"
scripts/consumer_test.sh build/consumer
echo "=== ABI: build/gcc/libsegops.so against the baseline abi/libsegops.abi (abidiff)"
scripts/abi_check.sh build/gcc
echo "=== Debian packages: cpack -G DEB, installed with dpkg, consumers built against them, removed"
scripts/deb_test.sh build/deb
echo "=== aarch64: the producer core cross-compiled, tests/queue_stress under qemu-aarch64"
# Installs its cross tools with apt and fails (stopping CI) when it cannot.
# Builds and runs aarch64 code paths; not a weak-memory test (qemu-user on
# x86 keeps the host's ordering): see the script's header.
scripts/cross-aarch64.sh build/aarch64

# clang: -Werror build of everything; its tests run in the ASan build below
# (also clang), which keeps CI time in bounds.
run clang -DCMAKE_C_COMPILER=clang

run asan -DCMAKE_C_COMPILER=clang -DSEGOPS_ASAN=ON -DCMAKE_BUILD_TYPE=Debug
echo "=== tests: ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j"$jobs"

run tsan -DCMAKE_C_COMPILER=gcc -DSEGOPS_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "=== tests: TSan (lanes, connections, resolver, sink, client, pool, TLS, faults, deadlines, fork, lifecycle, examples)"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
    ctest --test-dir build/tsan --output-on-failure -R 'queue|conn|resolve|client|pool|sink|tls|fork|lifecycle|answers|edges|proxy|faults|deadlines|seccomp|metrics|segops_send|example'
echo "=== valgrind memcheck: the integration suite (poll driver: valgrind does not model io_uring)"
SEGOPS_IO=poll valgrind -q --trace-children=yes --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
    build/gcc/tests/test_client --jobs 1
echo "=== fuzz: every parser target, ${FUZZ_SECONDS:-10} s each"
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
echo "=== the README's demo command"
scripts/demo.sh --events 2000 --threads 2
echo "=== all test builds passed"
