#!/usr/bin/env bash
# Compiles block_ops.cu with the host C++ compiler under cuda_emu.h and runs block_ops_check.cpp:
# every fused kernel executed thread by thread on the CPU against a naive reference. Exit 0 = all ok.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CXX:-g++} -std=c++20 -O1 -pthread -w "$here/block_ops_check.cpp" -o "$out/check"
"$out/check"
