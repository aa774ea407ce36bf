#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (mock vendors are real
# HTTP servers on port 0), then the official OpenAI Python SDK against the
# real `hoosh` binary.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
cargo test --workspace

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
.venv/bin/python -m pytest tests/e2e -q
