#!/usr/bin/env bash
# Side-by-side gateway comparison: one script, one run.
#
# Upstream: nginx (one worker) answering instantly — a fixed chat.completion
# JSON at /json/v1/chat/completions and a fixed SSE body (7 events, usage
# and [DONE]) at /sse/v1/chat/completions. Each gateway's provider base URL
# points at /json for the JSON runs and at /sse for the streaming runs.
#
# Targets (each started fresh for the JSON runs and again for the SSE runs,
# so peak RSS belongs to one mode):
#   direct          nginx itself (CPU and RSS are nginx's worker)
#   hoosh-plain     open (no keys), ledger + audit chain + metrics on, response cache off
#   hoosh-governed  a virtual key with token and dollar budgets, RPM/TPM and a
#                   concurrency cap; ledger + audit + metrics on, cache off
#   hoosh-cache-hit open, cache on, a temperature-0 body sent once before the
#                   run: every measured request is a cache hit (checked)
#   noveum          noveum-ai-gateway (crates.io) in transparent mode, its
#                   OpenAI route pointed at nginx by OPENAI_BASE_URL
#
# Load: JSON with wrk -t1 --latency (POST body and headers from a Lua
# script); streaming with `loadgen sse` (closed loop, per request time to
# first body byte and whole-stream time). Each at every concurrency in
# CONCS for DUR seconds. The gateway runs on core GW_CORE; nginx and the load
# generator share core LOAD_CORE (so the direct baseline has its generator
# on its own core, which favours it).
#
# Per cell: RPS, p50/p90/p99, errors, and the target's CPU per request
# (utime + stime from /proc/PID/stat over the run / requests answered).
# Per target: idle RSS, peak RSS (VmHWM), TCP_NODELAY on accepted and on
# upstream sockets (strace of setsockopt during a few requests before the
# measured runs), the x-hoosh-cache verdict and cache counters, and for
# hoosh the ledger rows and audit `inference` entries against the
# requests sent (wrk cuts off up to c requests at the end of a run; the
# gateway still finishes and records them, so rows may exceed answers by
# up to c per cell).
#
# Output: OUT/report.md (the tables), OUT/cells.jsonl, OUT/targets.jsonl,
# OUT/meta.json, raw wrk/loadgen output in OUT/raw/.
#
# Usage: [DUR=8] [CONCS="1 16 64"] [MODES="json sse"]
#        [TARGETS="direct hoosh-plain hoosh-governed hoosh-cache-hit noveum"]
#        [OUT=dir] bench/compare.sh
# Needs: wrk nginx-light strace sqlite3 jq curl (apt), python3, a release
# build of hoosh; builds bench/loadgen and installs noveum-ai-gateway
# (~8 min, once) when missing — a peer that cannot be built is skipped
# with a note.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DUR=${DUR:-8}
CONCS=${CONCS:-1 16 64}
MODES=${MODES:-json sse}
TARGETS=${TARGETS:-direct hoosh-plain hoosh-governed hoosh-cache-hit noveum}
OUT=${OUT:-$ROOT/bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ)}
UP_PORT=${UP_PORT:-18090}
GW_PORT=${GW_PORT:-18091}
NOTES=()

ensure_tools
ensure_loadgen
if [[ " $TARGETS " == *" noveum "* ]] && ! ensure_noveum; then
  TARGETS=$(echo "$TARGETS" | sed 's/\bnoveum\b//')
  NOTES+=("noveum-ai-gateway skipped: it did not build (cargo install failed)")
fi
mkdir -p "$OUT/raw"
: > "$OUT/cells.jsonl"
: > "$OUT/targets.jsonl"

PROMPT='"messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32'
echo "{\"model\":\"gpt-4o\",$PROMPT}" > "$WORK/body-json.json"
echo "{\"model\":\"gpt-4o\",$PROMPT,\"stream\":true}" > "$WORK/body-sse.json"
echo "{\"model\":\"gpt-4o\",$PROMPT,\"temperature\":0}" > "$WORK/body-json-t0.json"
echo "{\"model\":\"gpt-4o\",$PROMPT,\"stream\":true,\"temperature\":0}" > "$WORK/body-sse-t0.json"

# wrk's Lua: POST the body file with the given headers.
wrk_script() { # file body header...
  local file=$1 body=$2 h
  shift 2
  {
    echo 'wrk.method = "POST"'
    echo "local f = io.open(\"$body\"); wrk.body = f:read(\"*a\"):gsub(\"%s+\$\", \"\"); f:close()"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    for h in "$@"; do
      echo "wrk.headers[\"${h%%:*}\"] = \"$(echo "${h#*:}" | sed 's/^ *//')\""
    done
  } > "$file"
}

# wrk's text output as JSON (latencies in ms).
wrk_json() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +90%/ { p90 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /requests in/ { n = $1 }
    /Socket errors/ { gsub(/,/, ""); se = $4 + $6 + $8 + $10 }
    /Non-2xx/ { bad = $5 }
    END { printf "{\"rps\":%s,\"p50\":%s,\"p90\":%s,\"p99\":%s,\"requests\":%d,\"errors\":%d}\n", rps + 0, p50 + 0, p90 + 0, p99 + 0, n, se + bad }' "$1"
}

# Starts TARGET for MODE; sets PID, URL, BODY, HDRS, UPP (upstream port,
# 0 when the target is the upstream), DATA (hoosh data dir, else empty).
start_target() { # target mode
  local target=$1 mode=$2 base="http://127.0.0.1:$UP_PORT/$2"
  URL="http://127.0.0.1:$GW_PORT/v1/chat/completions"
  BODY=$WORK/body-$mode.json
  HDRS=()
  UPP=$UP_PORT
  DATA=""
  case $target in
    direct)
      URL=$base/v1/chat/completions
      PID=$(nginx_worker_pid)
      UPP=0
      ;;
    hoosh-plain | hoosh-governed | hoosh-cache-hit)
      local mode_gov=plain cache=off
      [ "$target" = hoosh-governed ] && mode_gov=governed && HDRS=("Authorization: Bearer $BENCH_KEY")
      [ "$target" = hoosh-cache-hit ] && cache=on && BODY=$WORK/body-$mode-t0.json
      DATA=$WORK/data-$target-$mode
      write_hoosh_config "$WORK/$target-$mode.toml" "$GW_PORT" "$base" "$mode_gov" "$cache"
      start_hoosh "$WORK/$target-$mode.toml" "$DATA" "$GW_PORT"
      PID=$GW_PID
      ;;
    noveum)
      HDRS=("Authorization: Bearer sk-bench-not-a-real-key")
      start_noveum "$GW_PORT" "$base" "$WORK/noveum-$mode.log"
      PID=$GW_PID
      ;;
    *)
      echo "unknown target $target" >&2
      exit 2
      ;;
  esac
}

run_target_mode() { # target mode
  local target=$1 mode=$2
  log "$target / $mode"
  start_target "$target" "$mode"
  local -a ch=() # HDRS as -H arguments (curl and loadgen take the same)
  local h
  for h in "${HDRS[@]}"; do ch+=(-H "$h"); done
  local sent=0 nodelay="" cache_header
  if [ "$mode" = json ]; then
    nodelay=$(probe_nodelay "$PID" "$URL" "$UPP" "${ch[@]}" -H 'content-type: application/json' -d @"$BODY")
    sent=$((sent + 4))
  fi
  # One request first (two for the cache-hit target: the first fills the
  # cache); the last one's x-hoosh-cache header is the verdict reported.
  local i
  for i in $(seq "$([ "$target" = hoosh-cache-hit ] && echo 2 || echo 1)"); do
    curl -s -D "$WORK/headers" -o /dev/null "${ch[@]}" -H 'content-type: application/json' -d @"$BODY" "$URL"
    sent=$((sent + 1))
  done
  cache_header=$(awk -F': *' 'tolower($1) == "x-hoosh-cache" { gsub(/\r/, "", $2); print $2 }' "$WORK/headers")
  cache_header=${cache_header:-absent}
  sleep 0.5
  local idle_rss
  idle_rss=$(rss_kb "$PID")
  wrk_script "$WORK/post.lua" "$BODY" "${HDRS[@]}"

  local c t0 t1 cell raw n cpu
  for c in $CONCS; do
    raw=$OUT/raw/$target-$mode-c$c
    t0=$(cpu_ticks "$PID")
    if [ "$mode" = json ]; then
      taskset -c "$LOAD_CORE" wrk -t1 -c"$c" -d"${DUR}s" --latency -s "$WORK/post.lua" "$URL" > "$raw.txt" 2>&1
      cell=$(wrk_json "$raw.txt")
    else
      taskset -c "$LOAD_CORE" "$LOADGEN" sse --url "$URL" --body "$BODY" "${ch[@]}" -c "$c" -d "$DUR" \
        --count-header x-hoosh-cache > "$raw.json"
      cell=$(jq -c '{rps, p50: .whole_ms.p50, p90: .whole_ms.p90, p99: .whole_ms.p99, requests, errors,
        incomplete, ttfb_p50: .ttfb_ms.p50, ttfb_p90: .ttfb_ms.p90, ttfb_p99: .ttfb_ms.p99, header_values}' "$raw.json")
    fi
    t1=$(cpu_ticks "$PID")
    n=$(jq .requests <<< "$cell")
    sent=$((sent + n))
    cpu=$(cpu_us_per_req "$t0" "$t1" "$n")
    jq -c --arg t "$target" --arg m "$mode" --argjson c "$c" --argjson cpu "$cpu" \
      '. + {target: $t, mode: $m, c: $c, cpu_us: $cpu}' <<< "$cell" >> "$OUT/cells.jsonl"
    log "  c=$c: $(jq -c '{rps, p50, p99, errors}' <<< "$cell") cpu ${cpu} µs/req"
  done

  local peak_rss end_rss cache_metrics="" ledger="" audit=""
  peak_rss=$(hwm_kb "$PID")
  end_rss=$(rss_kb "$PID")
  if [ -n "$DATA" ]; then
    cache_metrics=$(curl -s "http://127.0.0.1:$GW_PORT/metrics" | awk '/^hoosh_cache_requests_total/ {
      match($0, /result="[a-z]+"/); printf "%s%s=%s", sep, substr($0, RSTART + 8, RLENGTH - 9), $NF; sep = " " }')
    stop_pid "$PID"
    ledger=$(sqlite3 "$DATA/hoosh.db" 'select count(*) from ledger' 2> /dev/null || echo "?")
    audit=$(sqlite3 "$DATA/audit.db" "select count(*) from audit where json_extract(json, '\$.kind') like 'inference%'" 2> /dev/null || echo "?")
  elif [ "$target" != direct ]; then
    stop_pid "$PID"
  fi
  jq -nc --arg t "$target" --arg m "$mode" --arg nd "$nodelay" --arg ch "$cache_header" --arg cm "$cache_metrics" \
    --arg ledger "$ledger" --arg audit "$audit" --argjson sent "$sent" \
    --argjson idle "$idle_rss" --argjson peak "$peak_rss" --argjson end_rss "$end_rss" \
    '{target: $t, mode: $m, idle_rss_kb: $idle, peak_rss_kb: $peak, end_rss_kb: $end_rss, nodelay: $nd,
      cache_header: $ch, cache_metrics: $cm, ledger_rows: $ledger, audit_rows: $audit, requests_sent: $sent}' \
    >> "$OUT/targets.jsonl"
}

start_nginx "$UP_PORT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for mode in $MODES; do
  for target in $TARGETS; do
    run_target_mode "$target" "$mode"
  done
done

noveum_version=""
[ -x "$NOVEUM" ] && noveum_version=$NOVEUM_VERSION
jq -n --arg date "$T_START" --arg commit "$(git -C "$ROOT" describe --always --dirty)" \
  --arg hoosh_built "$HOOSH_BUILT" \
  --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" --arg cores "$(nproc)" \
  --arg mem "$(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)" \
  --arg kernel "$(uname -r)" --arg virt "$(systemd-detect-virt 2> /dev/null || echo unknown)" \
  --arg load_start "$LOAD_START" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg nginx "$(nginx -v 2>&1 | sed 's/.*\///')" --arg wrk "$(wrk -v 2>&1 | awk 'NR == 1 {print $2}')" \
  --arg noveum "$noveum_version" --arg dur "$DUR" --arg concs "$CONCS" \
  --arg gw_core "$GW_CORE" --arg load_core "$LOAD_CORE" --arg notes "$(printf '%s\n' "${NOTES[@]}")" \
  '$ARGS.named' > "$OUT/meta.json"
python3 "$ROOT/bench/report.py" "$OUT" > "$OUT/report.md"
cat "$OUT/report.md"
log "results in $OUT"
