#!/usr/bin/env bash
# Builds hoosh and serves it on 127.0.0.1:8088 in front of a mock
# OpenAI-compatible vendor (until the embedded local model lands, this is the
# no-network, no-key way to see the gateway work). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p hoosh -p hoosh-testkit
./target/release/hoosh-mock-upstream openai 127.0.0.1:18080 &
mock=$!
trap 'kill $mock 2>/dev/null' EXIT
./target/release/hoosh serve --config config/demo.toml "$@"
