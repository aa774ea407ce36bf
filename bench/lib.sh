# Shared by compare.sh, streams.sh and soak.sh (sourced, not run): building
# the load tool, installing the peer gateway, starting nginx, hoosh and
# noveum pinned to their cores, reading a process's CPU and memory, probing
# TCP_NODELAY, and killing everything this script started on exit.
#
# Settings (environment):
#   HOOSH            hoosh binary (./target/release/hoosh)
#   BENCH_TARGET_DIR cargo target dir for loadgen and noveum (../bench-target,
#                    next to the checkout: never the workspace's target/)
#   BENCH_TOOLS      cargo install root for noveum-ai-gateway (../bench-tools)
#   GW_CORE          core the gateway under test runs on (0)
#   LOAD_CORE        core nginx, the drip upstream and the load generators run on (1)
#   KEEP_WORK=1      keep the scratch dir (configs, logs, data dirs)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOOSH=${HOOSH:-$ROOT/target/release/hoosh}
BENCH_TARGET_DIR=${BENCH_TARGET_DIR:-$(cd "$ROOT/.." && pwd)/bench-target}
BENCH_TOOLS=${BENCH_TOOLS:-$(cd "$ROOT/.." && pwd)/bench-tools}
GW_CORE=${GW_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
LOADGEN=$BENCH_TARGET_DIR/release/loadgen
NOVEUM=$BENCH_TOOLS/bin/noveum-ai-gateway
NOVEUM_VERSION=2.0.1
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hoosh-bench.XXXXXX")
# A governed key's secret: made up for the run, never stored.
BENCH_KEY="hk-bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# Every process we start, killed on exit (nginx by its pid file).
STARTED_PIDS=()
cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2> /dev/null || true
  done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2> /dev/null || true
  sleep 0.2
  for pid in "${STARTED_PIDS[@]}"; do
    kill -9 "$pid" 2> /dev/null || true
  done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "scratch kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

ensure_tools() {
  local t
  for t in wrk nginx strace sqlite3 jq python3 curl taskset; do
    command -v "$t" > /dev/null || { echo "missing: $t (apt-get install wrk nginx-light strace sqlite3 jq)" >&2; exit 1; }
  done
  [ -x "$HOOSH" ] || { echo "no hoosh binary at $HOOSH (cargo build --release -p hoosh)" >&2; exit 1; }
  # A private copy: a rebuild during the run must not change what is measured.
  HOOSH_BUILT=$(date -u -r "$HOOSH" +%Y-%m-%dT%H:%M:%SZ)
  cp "$HOOSH" "$WORK/hoosh"
  HOOSH=$WORK/hoosh
}

# Builds bench/loadgen (its own lock, outside the workspace) when missing or older than its sources.
ensure_loadgen() {
  if [ -x "$LOADGEN" ] && [ -z "$(find "$ROOT/bench/loadgen/src" "$ROOT/bench/loadgen/Cargo.toml" -newer "$LOADGEN")" ]; then
    return
  fi
  log "building loadgen into $BENCH_TARGET_DIR"
  CARGO_TARGET_DIR=$BENCH_TARGET_DIR cargo build --release --locked --manifest-path "$ROOT/bench/loadgen/Cargo.toml" >&2
}

# Installs the peer from crates.io when missing (about 8 min on 2 cores).
# Returns non-zero, having said why, when it cannot be built.
ensure_noveum() {
  [ -x "$NOVEUM" ] && return 0
  log "installing noveum-ai-gateway $NOVEUM_VERSION from crates.io (takes ~8 min on 2 cores)"
  local t0=$SECONDS
  if ! CARGO_TARGET_DIR=$BENCH_TARGET_DIR cargo install noveum-ai-gateway --version "$NOVEUM_VERSION" \
      --locked --root "$BENCH_TOOLS" > "$WORK/noveum-install.log" 2>&1; then
    log "noveum-ai-gateway did not build (log: $WORK/noveum-install.log):"
    tail -5 "$WORK/noveum-install.log" >&2
    return 1
  fi
  log "noveum-ai-gateway installed in $((SECONDS - t0)) s"
}

# Waits until URL answers 2xx (up to 15 s).
wait_http() {
  local _
  for _ in $(seq 150); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# utime + stime, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU µs per request from two tick readings and a request count.
cpu_us_per_req() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$HZ" 'BEGIN { printf "%.1f", (n > 0 ? (b - a) * 1e6 / hz / n : 0) }'; }

# The upstream: nginx, one worker on LOAD_CORE, answering instantly.
# /json/v1/chat/completions: a fixed chat.completion; /sse/v1/chat/completions:
# a fixed SSE body (role chunk, 3 content chunks, finish, usage, [DONE]),
# whatever the request says. A gateway is pointed at /json or /sse as its
# provider's base URL.
NGINX_JSON='{"id":"chatcmpl-x","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}'
sse_chunk() { # content-delta-json finish-json
  printf 'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}\n\n' "$1" "$2"
}
nginx_sse_body() {
  sse_chunk '{"role":"assistant","content":""}' null
  sse_chunk '{"content":"Hello!"}' null
  sse_chunk '{"content":" How can I"}' null
  sse_chunk '{"content":" help you today?"}' null
  sse_chunk '{}' '"stop"'
  printf 'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}\n\n'
  printf 'data: [DONE]\n\n'
}
start_nginx() { # port
  local sse
  sse=$(nginx_sse_body; echo .) # the dot keeps the trailing blank line
  sse=${sse%.}
  cat > "$WORK/nginx.conf" << NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
worker_rlimit_nofile 20000;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$1 backlog=4096;
    location = /json/v1/chat/completions { default_type application/json; return 200 '$NGINX_JSON'; }
    location = /sse/v1/chat/completions { default_type text/event-stream; return 200 '$sse'; }
    location ~ /v1/models\$ { default_type application/json; return 200 '{"object":"list","data":[{"id":"gpt-4o","object":"model","created":0,"owned_by":"x"}]}'; }
  }
}
NGINX
  taskset -c "$LOAD_CORE" nginx -c "$WORK/nginx.conf"
  wait_http "http://127.0.0.1:$1/json/v1/models"
}
nginx_worker_pid() { pgrep -P "$(cat "$WORK/nginx.pid")" | head -1; }

# A hoosh config: one openai-compatible provider at BASE_URL serving every
# model; health probes and local models off (nothing but the proxy path).
#   plain:    open (no keys): still meters against the global pool, writes
#             the ledger and the audit chain.
#   governed: a virtual key (Bearer $BENCH_KEY) with token and dollar budgets,
#             RPM, TPM and a concurrency cap, all far above what the run uses.
# CACHE on|off is [cache] enabled. Extra lines (e.g. [server] settings) may
# follow as further arguments.
write_hoosh_config() { # file port base_url plain|governed on|off [server-line...]
  local file=$1 port=$2 base=$3 mode=$4 cache=$5
  shift 5
  {
    echo "[server]"
    echo "port = $port"
    local line
    for line in "$@"; do echo "$line"; done
    cat << TOML
[health]
interval_secs = 0
[local]
enabled = false
[cache]
enabled = $([ "$cache" = on ] && echo true || echo false)
[audit]
enabled = true
[[providers]]
name = "nginx"
type = "openai-compatible"
base_url = "$base/v1"
models = ["*"]
TOML
    if [ "$mode" = governed ]; then
      cat << TOML
[governance]
master_key_env = "HOOSH_BENCH_MASTER_UNSET"
[[governance.keys]]
name = "bench"
key_env = "HOOSH_BENCH_KEY"
budget = { tokens = 100000000000, usd = 1000000.0, period = "daily" }
rpm = 100000000
tpm = 100000000000
max_concurrency = 100000
TOML
    fi
  } > "$file"
}

# Starts hoosh on GW_CORE; sets GW_PID.
start_hoosh() { # config data-dir port
  HOOSH_BENCH_KEY=$BENCH_KEY HOOSH_LOG=warn taskset -c "$GW_CORE" "$HOOSH" serve --config "$1" \
    --data-dir "$2" > "$2.log" 2>&1 &
  GW_PID=$!
  STARTED_PIDS+=("$GW_PID")
  wait_http "http://127.0.0.1:$3/health"
}

# Starts noveum-ai-gateway on GW_CORE in transparent mode (no Nova Guard
# policies, no platform bridge), its OpenAI route pointed at BASE_URL
# (it appends /v1/chat/completions); sets GW_PID.
start_noveum() { # port base_url log
  HOST=127.0.0.1 PORT=$1 OPENAI_BASE_URL=$2 RUST_LOG=warn NOVEUM_GUARD_ENABLED=false \
    taskset -c "$GW_CORE" "$NOVEUM" > "$3" 2>&1 &
  GW_PID=$!
  STARTED_PIDS+=("$GW_PID")
  wait_http "http://127.0.0.1:$1/health"
}

# Stops a process we started and waits for it (hoosh flushes its ledger and
# audit chain on SIGTERM).
stop_pid() {
  kill "$1" 2> /dev/null || true
  local _
  for _ in $(seq 100); do
    kill -0 "$1" 2> /dev/null || return 0
    sleep 0.1
  done
  kill -9 "$1" 2> /dev/null || true
}

# Whether PID sets TCP_NODELAY on the connections it accepts and on those it
# opens to UPSTREAM_PORT (0: not a proxy). Traces accept/connect/setsockopt
# while curl sends two requests on one kept-alive connection, twice. Prints
# "client=yes|no|? upstream=yes|no|?|-".
probe_nodelay() { # pid url upstream_port curl-args...
  local pid=$1 url=$2 up=$3 trace=$WORK/strace.$1
  shift 3
  strace -f -qq -e trace=accept,accept4,connect,setsockopt -p "$pid" -o "$trace" 2> /dev/null &
  local st=$!
  sleep 1
  curl -s -o /dev/null -o /dev/null "$@" "$url" "$url" || true
  curl -s -o /dev/null -o /dev/null "$@" "$url" "$url" || true
  sleep 0.5
  kill -INT "$st" 2> /dev/null || true
  wait "$st" 2> /dev/null || true
  python3 "$ROOT/bench/nodelay.py" "$trace" "$up"
}
