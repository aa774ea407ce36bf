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
UP_PORT=18090
GW_PORT=18091
BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
# Scratch dir, cleanup of every process started, nginx, the gateway config.
# shellcheck source=bench/lib.sh
. bench/lib.sh

start_nginx "$UP_PORT"
MODE=plain
AUTH=""
if [ "${GOVERNED:-0}" = 1 ]; then
  MODE=governed
  AUTH="wrk.headers[\"Authorization\"] = \"Bearer $BENCH_KEY\""
fi
write_hoosh_config "$WORK/hoosh.toml" "$GW_PORT" "http://127.0.0.1:$UP_PORT/json" "$MODE" on
start_hoosh "$WORK/hoosh.toml" "$WORK/data" "$GW_PORT"

cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
$AUTH
LUA


run() { # url conc -> "rps p50_ms p99_ms requests"
  taskset -c 1 wrk -t1 -c"$2" -d"${DUR}s" --latency -s "$WORK/post.lua" "$1" > "$WORK/out" 2>&1
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)}
    /requests in/ {n=$1}
    END {printf "%s %.3f %.3f %s\n", rps, p50, p99, n}' "$WORK/out"
}

IDLE_RSS=$(rss_kb "$GW_PID")
echo "| concurrency | direct RPS | direct p50 / p99 (ms) | hoosh RPS | hoosh p50 / p99 (ms) | added p50 / p99 (ms) | hoosh CPU µs/req | hoosh RSS after (MB) |"
echo "|---|---|---|---|---|---|---|---|"
for c in $CONCS; do
  read -r d_rps d_p50 d_p99 _ < <(run "http://127.0.0.1:$UP_PORT/json/v1/chat/completions" "$c")
  t0=$(cpu_ticks "$GW_PID")
  read -r g_rps g_p50 g_p99 g_n < <(run "http://127.0.0.1:$GW_PORT/v1/chat/completions" "$c")
  t1=$(cpu_ticks "$GW_PID")
  hz=$(getconf CLK_TCK)
  cpu_us=$(awk -v a="$t0" -v b="$t1" -v n="$g_n" -v hz="$hz" 'BEGIN { printf "%.1f", (b-a) * 1e6 / hz / n }')
  add50=$(awk -v a="$g_p50" -v b="$d_p50" 'BEGIN { printf "%.3f", a-b }')
  add99=$(awk -v a="$g_p99" -v b="$d_p99" 'BEGIN { printf "%.3f", a-b }')
  echo "| $c | $d_rps | $d_p50 / $d_p99 | $g_rps | $g_p50 / $g_p99 | $add50 / $add99 | $cpu_us | $(( $(rss_kb "$GW_PID") / 1024 )) |"
done
echo
echo "hoosh idle RSS: $(( IDLE_RSS / 1024 )) MB; ${DUR}s per run; wrk -t1; hoosh on core 0, nginx + wrk on core 1; governed=${GOVERNED:-0}."
if command -v sqlite3 > /dev/null; then
  echo "ledger rows: $(sqlite3 "$WORK/data/hoosh.db" 'select count(*) from ledger' 2>/dev/null || echo '?')"
fi
