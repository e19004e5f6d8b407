#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak test (not part of CI): 8 producers against a flaky sink behind the
# chaos proxy, a sample row every 10 s, an exact reconciliation at the end.
#   scripts/soak.sh [seconds=600] [--producers N] [--rate EVENTS_PER_S_PER_PRODUCER]
# Environment: SEGOPS_IO=poll|uring picks the I/O driver; BUILD_DIR (default
# build/soak) the build tree.  Exit status 0 when every check held.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/soak}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEGOPS_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target segops-soak >/dev/null
secs=${1:-600}
[ $# -gt 0 ] && shift
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs, SEGOPS_IO=${SEGOPS_IO:-auto}"
exec "$build/tests/segops-soak" "$secs" "$@"
