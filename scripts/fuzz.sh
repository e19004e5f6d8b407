#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets and runs each for SECONDS (default 10) from
# its seed corpus; new inputs go to build/fuzz/corpus-<target>, crashes to
# build/fuzz/.  Long run: scripts/fuzz.sh 3600
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DSEGOPS_FUZZ=ON -DSEGOPS_TESTS=OFF \
      -DSEGOPS_BENCH=OFF -DSEGOPS_WERROR=ON >/dev/null
cmake --build build/fuzz -j"$(nproc)" >/dev/null
for t in fuzz/fuzz_*.c; do
    name=$(basename "$t" .c)
    out="build/fuzz/corpus-$name"
    mkdir -p "$out"
    printf '%-22s ' "$name"
    build/fuzz/fuzz/"$name" -max_total_time="$secs" -artifact_prefix=build/fuzz/ \
        -print_final_stats=1 "$out" "fuzz/corpus/$name" 2>&1 |
        awk '/stat::number_of_executed_units/ {print $2 " executions"}'
    test "${PIPESTATUS[0]}" -eq 0
done
