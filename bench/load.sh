#!/usr/bin/env bash
# Whole-process gateway overhead: wrk against an nginx upstream that answers
# instantly with fixed OpenAI JSON, directly and through hoosh, at several
# concurrencies. Prints a markdown table (RPS, p50/p99, added latency, RSS,
# CPU per request).
#
# Needs: wrk, nginx (apt-get install wrk nginx-light), a release build
# (cargo build --release -p hoosh). hoosh runs pinned to core 0; nginx and wrk
# to core 1, so the generator does not steal the gateway's CPU.
#
# GOVERNED=1 runs the governed path: a virtual key (Bearer auth) with token
# and dollar budgets, RPM/TPM and concurrency limits, cost from the price
# table and one SQLite ledger row per request. Otherwise the gateway runs
# open (no keys), which still meters against the global pool and writes the
# ledger.
#
# Usage: [GOVERNED=1] bench/load.sh [seconds-per-run] [concurrency...]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
shift || true
CONCS=${*:-1 16 64}
WORK=$(mktemp -d)
UP_PORT=18090
GW_PORT=18091
BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
RESP='{"id":"chatcmpl-x","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}'

cleanup() {
  [ -n "${GW_PID:-}" ] && kill "$GW_PID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP_PORT;
    location /v1/chat/completions { default_type application/json; return 200 '$RESP'; }
    location /v1/models { default_type application/json; return 200 '{"object":"list","data":[{"id":"gpt-4o","object":"model","created":0,"owned_by":"x"}]}'; }
  }
}
NGINX
taskset -c 1 nginx -c "$WORK/nginx.conf"

cat > "$WORK/hoosh.toml" <<TOML
[server]
port = $GW_PORT
[health]
interval_secs = 0
[local]
enabled = false
[[providers]]
name = "nginx"
type = "openai-compatible"
base_url = "http://127.0.0.1:$UP_PORT/v1"
models = ["*"]
TOML
BENCH_KEY="hk-bench-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
AUTH=""
if [ "${GOVERNED:-0}" = 1 ]; then
  cat >> "$WORK/hoosh.toml" <<TOML
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
  AUTH="wrk.headers[\"Authorization\"] = \"Bearer $BENCH_KEY\""
fi
HOOSH_BENCH_KEY=$BENCH_KEY HOOSH_LOG=warn taskset -c 0 ./target/release/hoosh serve --config "$WORK/hoosh.toml" \
  --data-dir "$WORK/data" > /dev/null 2>&1 &
GW_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$GW_PORT/health" > /dev/null && break; sleep 0.1; done

cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
$AUTH
LUA

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$GW_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }

run() { # url conc -> "rps p50_ms p99_ms requests"
  taskset -c 1 wrk -t1 -c"$2" -d"${DUR}s" --latency -s "$WORK/post.lua" "$1" > "$WORK/out" 2>&1
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)}
    /requests in/ {n=$1}
    END {printf "%s %.3f %.3f %s\n", rps, p50, p99, n}' "$WORK/out"
}

IDLE_RSS=$(rss_kb)
echo "| concurrency | direct RPS | direct p50 / p99 (ms) | hoosh RPS | hoosh p50 / p99 (ms) | added p50 / p99 (ms) | hoosh CPU µs/req | hoosh RSS after (MB) |"
echo "|---|---|---|---|---|---|---|---|"
for c in $CONCS; do
  read -r d_rps d_p50 d_p99 _ < <(run "http://127.0.0.1:$UP_PORT/v1/chat/completions" "$c")
  t0=$(cpu_ticks)
  read -r g_rps g_p50 g_p99 g_n < <(run "http://127.0.0.1:$GW_PORT/v1/chat/completions" "$c")
  t1=$(cpu_ticks)
  hz=$(getconf CLK_TCK)
  cpu_us=$(awk -v a="$t0" -v b="$t1" -v n="$g_n" -v hz="$hz" 'BEGIN { printf "%.1f", (b-a) * 1e6 / hz / n }')
  add50=$(awk -v a="$g_p50" -v b="$d_p50" 'BEGIN { printf "%.3f", a-b }')
  add99=$(awk -v a="$g_p99" -v b="$d_p99" 'BEGIN { printf "%.3f", a-b }')
  echo "| $c | $d_rps | $d_p50 / $d_p99 | $g_rps | $g_p50 / $g_p99 | $add50 / $add99 | $cpu_us | $(( $(rss_kb) / 1024 )) |"
done
echo
echo "hoosh idle RSS: $(( IDLE_RSS / 1024 )) MB; ${DUR}s per run; wrk -t1; hoosh on core 0, nginx + wrk on core 1; governed=${GOVERNED:-0}."
if command -v sqlite3 > /dev/null; then
  echo "ledger rows: $(sqlite3 "$WORK/data/hoosh.db" 'select count(*) from ledger' 2>/dev/null || echo '?')"
fi
