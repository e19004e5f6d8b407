#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages a job needs; does nothing when they are
# already there.
#   scripts/deps.sh build   build the library, the tools and the examples,
#                           run the demo (scripts/demo.sh)
#   scripts/deps.sh test    build + every test tool (scripts/test.sh);
#                           the default
set -euo pipefail
build=(build-essential cmake pkg-config liburing-dev libbearssl-dev libck-dev
       ca-certificates)
# tests: Criterion; clang and its runtimes for the -Werror, ASan+UBSan and
# libFuzzer builds; nginx and openssl for the TLS tests; Python's
# Prometheus parser for the metrics test; valgrind; doxygen (docs without
# warnings)
test=(libcriterion-dev clang llvm libclang-rt-14-dev nginx-light tinyproxy-bin openssl
      python3-prometheus-client valgrind doxygen abigail-tools)
case "${1:-test}" in
build) pkgs=("${build[@]}") ;;
test) pkgs=("${build[@]}" "${test[@]}") ;;
*) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
