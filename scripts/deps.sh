#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages the build, the demo and the tests need.
# Does nothing when they are already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev
      liburing-dev libbearssl-dev libck-dev libcriterion-dev
      nginx-light tinyproxy-bin openssl ca-certificates python3-prometheus-client valgrind
      abigail-tools)
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
