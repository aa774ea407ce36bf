#!/usr/bin/env bash
# Concurrent streams: N governed streams through the gateway, against an
# upstream (`loadgen drip`) that sends one chunk every 200 ms. How many stay
# whole (end with data: [DONE]) and stall-free (no silence over 1 s, the
# wait for the first byte included), the worst silence, and the gateway's
# RSS at each N.
#
# Per N the gateway is started fresh (so VmHWM is that N's peak), with
# [server] max_connections raised above N. `loadgen streams` opens the N
# streams in batches of BATCH every BATCH_MS ms, then reads them all; with
# CHUNKS chunks a stream lasts CHUNKS x 0.2 s, longer than the ramp, so all
# N are open at once (peak open is reported). hoosh is governed as in
# compare.sh (virtual key with budgets, RPM/TPM, concurrency cap; ledger,
# audit, metrics on; cache off). The gateway runs on core GW_CORE; the drip
# upstream and the client on LOAD_CORE. After each N the gateway is stopped
# and its ledger rows counted (one per stream).
#
# Every chunk costs a write in the drip, a read and a write in the gateway
# and a read in the client: N = 8,192 is 41k chunks/s each way. On a small
# machine the load side's core can run out before the gateway's; the
# report gives the CPU both used, so a run limited by the load side shows.
#
# Open files: the gateway holds 2 sockets per stream, the client and the
# upstream 1 each; each is its own process with its own RLIMIT_NOFILE (the
# loadgen subcommands raise their soft limit to the hard one; the gateway
# inherits this shell's, raised here as far as the hard limit allows).
#
# Usage: [NS="1024 2048 4096 8192"] [GATEWAYS="hoosh noveum"] [CHUNKS=100]
#        [BATCH=256] [BATCH_MS=100] [OUT=dir] bench/streams.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

NS=${NS:-1024 2048 4096 8192}
GATEWAYS=${GATEWAYS:-hoosh noveum}
CHUNKS=${CHUNKS:-100}
BATCH=${BATCH:-256}
BATCH_MS=${BATCH_MS:-100}
OUT=${OUT:-$ROOT/bench/results/streams-$(date -u +%Y%m%dT%H%M%SZ)}
DRIP_PORT=${DRIP_PORT:-18095}
GW_PORT=${GW_PORT:-18096}

ensure_tools
ensure_loadgen
if [[ " $GATEWAYS " == *" noveum "* ]] && ! ensure_noveum; then
  GATEWAYS=$(echo "$GATEWAYS" | sed 's/\bnoveum\b//')
  log "noveum skipped: it did not build"
fi
ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"
: > "$OUT/streams.jsonl"

taskset -c "$LOAD_CORE" "$LOADGEN" drip --port "$DRIP_PORT" --interval-ms 200 --chunks "$CHUNKS" 2> "$WORK/drip.log" &
DRIP_PID=$!
STARTED_PIDS+=("$DRIP_PID")
wait_http "http://127.0.0.1:$DRIP_PORT/v1/models"

echo '{"model":"gpt-4o","messages":[{"role":"user","content":"Count slowly."}],"max_tokens":200,"stream":true}' > "$WORK/body.json"

run=0
for gw in $GATEWAYS; do
  for n in $NS; do
    run=$((run + 1))
    log "$gw: $n streams"
    data=""
    hdr=()
    if [ "$gw" = hoosh ]; then
      data=$WORK/data-$run
      write_hoosh_config "$WORK/hoosh-$run.toml" "$GW_PORT" "http://127.0.0.1:$DRIP_PORT" governed off \
        "max_connections = $((n + 1024))"
      start_hoosh "$WORK/hoosh-$run.toml" "$data" "$GW_PORT"
      hdr=(-H "Authorization: Bearer $BENCH_KEY")
    else
      # noveum's OPENAI_BASE_URL is the origin; it appends /v1/chat/completions.
      start_noveum "$GW_PORT" "http://127.0.0.1:$DRIP_PORT" "$WORK/noveum-$run.log"
      hdr=(-H "Authorization: Bearer sk-bench-not-a-real-key")
    fi
    sleep 0.5
    idle=$(rss_kb "$GW_PID")
    t0=$(cpu_ticks "$GW_PID")
    d0=$(cpu_ticks "$DRIP_PID")
    # The load side's CPU (drip + client, sharing LOAD_CORE) tells whether
    # the gateway or the load side was the limit.
    TIMEFORMAT='%U %S'
    { time taskset -c "$LOAD_CORE" "$LOADGEN" streams --url "http://127.0.0.1:$GW_PORT/v1/chat/completions" \
      --body "$WORK/body.json" "${hdr[@]}" -n "$n" --batch "$BATCH" --batch-ms "$BATCH_MS" \
      > "$OUT/$run-$gw-$n.json" 2> "$OUT/$run-$gw-$n.err" || true; } 2> "$WORK/client-time"
    t1=$(cpu_ticks "$GW_PID")
    d1=$(cpu_ticks "$DRIP_PID")
    load_cpu=$(awk -v a="$d0" -v b="$d1" -v hz="$HZ" '{ printf "%.2f", (b - a) / hz + $1 + $2 }' "$WORK/client-time")
    peak=$(hwm_kb "$GW_PID")
    stop_pid "$GW_PID"
    ledger=""
    if [ -n "$data" ]; then
      ledger=$(sqlite3 "$data/hoosh.db" 'select count(*) from ledger' 2> /dev/null || echo "?")
    fi
    if [ -s "$OUT/$run-$gw-$n.json" ]; then
      jq -c --arg gw "$gw" --argjson idle "$idle" --argjson peak "$peak" --arg ledger "$ledger" --argjson load_cpu_s "$load_cpu" \
        --argjson cpu_s "$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }')" \
        '. + {gateway: $gw, idle_rss_kb: $idle, peak_rss_kb: $peak, cpu_s: $cpu_s, load_cpu_s: $load_cpu_s, ledger_rows: $ledger}' \
        "$OUT/$run-$gw-$n.json" >> "$OUT/streams.jsonl"
      log "  $(jq -c '{whole, stall_free, worst_gap_ms, errors, peak_open}' "$OUT/$run-$gw-$n.json") peak RSS $((peak / 1024)) MB"
    else
      log "  loadgen streams failed: $(tail -2 "$OUT/$run-$gw-$n.err")"
    fi
  done
done

{
  echo "Concurrent streams, $(date -u +%Y-%m-%d), commit $(git -C "$ROOT" describe --always --dirty), $(nproc) cores;"
  echo "upstream: loadgen drip, one chunk per 200 ms, $CHUNKS chunks ($((CHUNKS / 5)) s per stream);"
  echo "ramp: $BATCH streams every $BATCH_MS ms; stall = a silence over 1 s (first byte included)."
  echo
  echo "| gateway | N | whole | stall-free | longest silence per stream p50 / p99 / worst (ms) | worst TTFB (ms) | errors | peak open | RSS idle → peak (MB) | RSS per stream (KB) | gateway CPU (s) | load-side CPU (s) / run (s) | ledger rows |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  jq -r '"| \(.gateway) | \(.streams) | \(.whole) | \(.stall_free) | \(.max_gap_per_stream_ms.p50 | round) / \(.max_gap_per_stream_ms.p99 | round) / \(.worst_gap_ms | round) | \(.worst_ttfb_ms | round) | \(.errors)"
    + (if .errors > 0 then " (\(.error_kinds | to_entries | map("\(.key): \(.value)") | join(", ")))" else "" end)
    + " | \(.peak_open) | \(.idle_rss_kb / 1024 | floor) → \(.peak_rss_kb / 1024 | floor)"
    + " | \((.peak_rss_kb - .idle_rss_kb) / .streams | . * 10 | round / 10) | \(.cpu_s) | \(.load_cpu_s) / \(.elapsed_s | round) | \(if .ledger_rows == "" then "–" else .ledger_rows end) |"' \
    "$OUT/streams.jsonl"
} | tee "$OUT/report.md"
log "results in $OUT"
