#!/usr/bin/env bash
# Soak: governed hoosh under steady, moderate load for a long run; does
# memory stay flat, does throughput hold, and does every answered request
# leave exactly one ledger row and one audit entry?
#
# nginx answers fixed JSON instantly; hoosh is governed as in compare.sh
# (virtual key with budgets, RPM/TPM, concurrency cap; ledger, audit chain
# and metrics on; cache off). `loadgen sse` drives it with C connections,
# closed loop, paced to RATE requests/s, until REQUESTS are answered or
# DURATION seconds pass, whichever is first. (Not wrk: wrk cuts off its
# in-flight requests when it stops, which the gateway still answers and
# records, so its counts cannot be compared row for row; loadgen reads its
# last answers to the end.) Every ROUND seconds: requests answered,
# errors, and the gateway's RSS. At the end the gateway is stopped (SIGTERM
# flushes the ledger and the audit chain) and then: ledger rows (all, and
# status 200), audit `inference` entries, both against requests
# answered (plus the one warm-up request); database sizes; and how long
# `hoosh audit verify` takes over the whole chain. hoosh on core GW_CORE;
# nginx and loadgen on LOAD_CORE.
#
# Usage: [C=32] [RATE=2000] [REQUESTS=1000000] [ROUND=60] [OUT=dir] bench/soak.sh [duration-seconds (600)]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${1:-600}
C=${C:-32}
RATE=${RATE:-2000}
REQUESTS=${REQUESTS:-1000000}
ROUND=${ROUND:-60}
OUT=${OUT:-$ROOT/bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
UP_PORT=${UP_PORT:-18097}
GW_PORT=${GW_PORT:-18098}

ensure_tools
ensure_loadgen
mkdir -p "$OUT"
start_nginx "$UP_PORT"
DATA=$WORK/data
write_hoosh_config "$WORK/hoosh.toml" "$GW_PORT" "http://127.0.0.1:$UP_PORT/json" governed off
start_hoosh "$WORK/hoosh.toml" "$DATA" "$GW_PORT"
URL=http://127.0.0.1:$GW_PORT/v1/chat/completions
echo '{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}' > "$WORK/body.json"
curl -sf -o /dev/null -H "Authorization: Bearer $BENCH_KEY" -H 'content-type: application/json' -d @"$WORK/body.json" "$URL"
WARMUP=1
sleep 0.5
RSS_START=$(rss_kb "$GW_PID")
CPU_START=$(cpu_ticks "$GW_PID")
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "soak: c=$C, $RATE req/s, until $REQUESTS requests or $DURATION s; rounds of $ROUND s"

taskset -c "$LOAD_CORE" "$LOADGEN" sse --url "$URL" --body "$WORK/body.json" -H "Authorization: Bearer $BENCH_KEY" \
  -c "$C" -d "$DURATION" --rate "$RATE" --requests "$REQUESTS" --every-s "$ROUND" \
  > "$OUT/loadgen.json" 2> "$OUT/rounds.jsonl" &
LG=$!
STARTED_PIDS+=("$LG")
# The gateway's RSS at the end of each round, beside loadgen's own round lines.
: > "$OUT/rss.txt"
t0=$SECONDS
next=$((t0 + ROUND))
while kill -0 "$LG" 2> /dev/null; do
  sleep 1
  if ((SECONDS >= next)); then
    echo "$(rss_kb "$GW_PID")" >> "$OUT/rss.txt"
    log "  $((SECONDS - t0)) s: $(tail -1 "$OUT/rounds.jsonl")"
    next=$((next + ROUND))
  fi
done
wait "$LG" || { echo "loadgen failed: $(tail -3 "$OUT/rounds.jsonl")" >&2; exit 1; }
RSS_END=$(rss_kb "$GW_PID")
RSS_PEAK=$(hwm_kb "$GW_PID")
CPU_END=$(cpu_ticks "$GW_PID")
stop_pid "$GW_PID"

ANSWERED=$(jq .requests "$OUT/loadgen.json")
ERRORS=$(jq .errors "$OUT/loadgen.json")
LEDGER=$(sqlite3 "$DATA/hoosh.db" 'select count(*) from ledger')
LEDGER_200=$(sqlite3 "$DATA/hoosh.db" 'select count(*) from ledger where status = 200')
AUDIT=$(sqlite3 "$DATA/audit.db" "select count(*) from audit where json_extract(json, '\$.kind') like 'inference%'")
AUDIT_ALL=$(sqlite3 "$DATA/audit.db" 'select count(*) from audit')
size_mb() { du -cb "$@" 2> /dev/null | awk 'END { printf "%.1f", $1 / 1048576 }'; }
HOOSH_DB_MB=$(size_mb "$DATA"/hoosh.db*)
AUDIT_DB_MB=$(size_mb "$DATA"/audit.db*)
v0=$(date +%s.%N)
VERIFY=$("$HOOSH" audit verify --data-dir "$DATA" 2>&1 | tail -1) || VERIFY="FAILED: $VERIFY"
VERIFY_S=$(awk -v a="$v0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')

{
  echo "Soak, $T_START, commit $(git -C "$ROOT" describe --always --dirty), $(nproc) cores; governed hoosh,"
  echo "loadgen c=$C paced to $RATE req/s, stop at $REQUESTS requests or $DURATION s; hoosh on core $GW_CORE, nginx + loadgen on core $LOAD_CORE."
  echo
  echo "| round | ends at (s) | requests | req/s | errors | hoosh RSS (MB) |"
  echo "|---|---|---|---|---|---|"
  # Full rounds from loadgen's lines, then what was left after the last one.
  paste -d' ' <(jq -R -r 'fromjson? | "\(.t_s) \(.requests) \(.rps) \(.errors)"' "$OUT/rounds.jsonl") "$OUT/rss.txt" |
    awk -v total="$ANSWERED" -v end_s="$(jq .duration_s "$OUT/loadgen.json")" -v rss_end="$RSS_END" '
      NF == 5 { printf "| %d | %.0f | %d | %.0f | %d | %.1f |\n", NR, $1, $2, $3, $4, $5 / 1024; sum += $2; last = $1 }
      END { if (total > sum && end_s > last) printf "| last (partial) | %.0f | %d | %.0f | – | %.1f |\n", end_s, total - sum, (total - sum) / (end_s - last), rss_end / 1024 }'
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| requests answered (2xx) / errors | $ANSWERED / $ERRORS in $(jq .duration_s "$OUT/loadgen.json") s ($(jq .rps "$OUT/loadgen.json") req/s) |"
  echo "| latency p50 / p99 / max (ms) | $(jq -r '"\(.whole_ms.p50) / \(.whole_ms.p99) / \(.whole_ms.max)"' "$OUT/loadgen.json") |"
  echo "| hoosh RSS start / peak / end (MB) | $((RSS_START / 1024)) / $((RSS_PEAK / 1024)) / $((RSS_END / 1024)) |"
  echo "| hoosh CPU per request (µs) | $(cpu_us_per_req "$CPU_START" "$CPU_END" "$ANSWERED") |"
  echo "| ledger rows (status 200) / answered + warm-up | $LEDGER ($LEDGER_200) / $((ANSWERED + ERRORS + WARMUP)) |"
  echo "| audit inference entries (all entries) | $AUDIT ($AUDIT_ALL) |"
  echo "| hoosh.db / audit.db (with WAL) | $HOOSH_DB_MB MB / $AUDIT_DB_MB MB |"
  echo "| hoosh audit verify | ${VERIFY_S} s: $VERIFY |"
} | tee "$OUT/report.md"
log "results in $OUT"
