#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (mock vendors are real
# HTTP servers on port 0; the bundled local models run in-process), then the
# official OpenAI and Anthropic Python SDKs, the Node SDKs and Claude Code
# against the real `hoosh` binary. The cluster tests use a real PostgreSQL
# and Redis, which scripts/services.sh installs or starts first.
#
# The default local models are fetched once into HOOSH_MODELS_DIR (default
# ~/.cache/hoosh/models) with `hoosh pull --defaults`; tests that need them
# say "skipping" when they are absent, but this script always provides them.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL and Redis, for the cluster tests.
./scripts/services.sh

cargo build --workspace --bins
export HOOSH_MODELS_DIR="${HOOSH_MODELS_DIR:-${HOME:-/root}/.cache/hoosh/models}"
"${CARGO_TARGET_DIR:-target}/debug/hoosh" pull --defaults --models-dir "$HOOSH_MODELS_DIR"
export HOOSH_TEST_MODELS_DIR="$HOOSH_MODELS_DIR"
export HOOSH_TEST_GGUF="$HOOSH_MODELS_DIR/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
export HOOSH_TEST_MINILM_DIR="$HOOSH_MODELS_DIR/minilm-l6"
# Every `hoosh serve` the tests start keeps its usage ledger here, not in
# ~/.local/share/hoosh.
HOOSH_DATA_DIR="$(mktemp -d)"
export HOOSH_DATA_DIR
trap 'rm -rf "$HOOSH_DATA_DIR"' EXIT

cargo test --workspace --no-fail-fast

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
# The agent CLIs and Node SDKs the e2e suite runs, pinned by package-lock.json.
npm ci --prefix tests/e2e/clients --no-audit --no-fund --loglevel=error
.venv/bin/python -m pytest tests/e2e -q
