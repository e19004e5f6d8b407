#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install dependencies, build everything, run the demo against
# the embedded local SegOps sink (no account, no network).
#   scripts/demo.sh [--events N] [--threads T]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
exec build/release/examples/segops-demo "$@"
