#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install the build dependencies (scripts/deps.sh build), build
# the library, tools and examples (no tests, no benchmarks), run the demo
# against the embedded local SegOps sink (no account, no network).
#   scripts/demo.sh [--events N] [--threads T] [--rate R] [--burst] [--queue N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSEGOPS_TESTS=OFF -DSEGOPS_BENCH=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
exec build/release/examples/segops-demo "$@"
