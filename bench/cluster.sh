#!/usr/bin/env bash
# Governed throughput and latency with shared state (issue 15): the same
# governed key (budgets, RPM/TPM, a concurrency cap, a ledger row and an
# audit entry per request) through
#   embedded     one instance, SQLite + in-process counters (the default)
#   cluster x1   one instance, [state] backend = "cluster" (Redis + PostgreSQL)
#   cluster x1, no ack   the same with state.ack_after_commit = false
#   cluster x2   two instances on one Redis and one PostgreSQL, half the
#                load on each (two wrk processes at once, RPS summed)
# against an nginx upstream that answers at once. Prints a markdown table:
# RPS at c=CONC, p50/p99 at c=1, and the added p50 against embedded (the
# cost of the Redis round trips and, with ack, the commit wait).
#
# Nothing is pinned: on a 2-core machine the gateways, Redis, PostgreSQL,
# nginx and wrk all share both cores, so two instances cannot show more
# capacity than one — this measures the cost of sharing, not scale-out.
#
# Needs: wrk, nginx, psql, a running PostgreSQL and Redis (as .ci/run
# starts them), a release build (cargo build --release -p hoosh).
# Usage: bench/cluster.sh [seconds-per-run] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONC=${2:-32}
UP_PORT=18090
PG_ADMIN=${HOOSH_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
REDIS=${HOOSH_BENCH_REDIS:-redis://127.0.0.1:6379/0}
BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
# shellcheck source=bench/lib.sh
. bench/lib.sh
ensure_tools

DB=hoosh_bench_$$
NS=bench$$
psql "$PG_ADMIN" -qc "create database $DB"
PG_URL="${PG_ADMIN%/*}/$DB"
drop_db() {
  cleanup
  psql "$PG_ADMIN" -qc "drop database if exists $DB with (force)" > /dev/null 2>&1 || true
  # This run's Redis namespace (cache keys are raw bytes: deleted by a script in Redis).
  redis-cli -u "$REDIS" eval 'local c = "0" repeat local r = redis.call("SCAN", c, "MATCH", ARGV[1], "COUNT", 1000)
    c = r[1] for _, k in ipairs(r[2]) do redis.call("DEL", k) end until c == "0" return 1' 0 "$NS:*" > /dev/null || true
}
trap drop_db EXIT

start_nginx "$UP_PORT"

cat > "$WORK/post.lua" << LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $BENCH_KEY"
wrk.body = '$BODY'
LUA

# A governed config on PORT; "cluster" adds the [state] section (ack on|off).
config() { # file port embedded|cluster [ack]
  write_hoosh_config "$1" "$2" "http://127.0.0.1:$UP_PORT/json" governed off
  if [ "$3" = cluster ]; then
    cat >> "$1" << TOML
[state]
backend = "cluster"
redis_url = "$REDIS"
postgres_url = "$PG_URL"
namespace = "$NS"
ack_after_commit = $([ "${4:-on}" = on ] && echo true || echo false)
TOML
  fi
}

# One audit key for every instance: a cluster signs one chain.
AUDIT_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

start() { # config data-dir port name -> pid in STARTED
  HOOSH_AUDIT_KEY=$AUDIT_KEY HOOSH_BENCH_KEY=$BENCH_KEY HOOSH_LOG=warn "$HOOSH" serve --config "$1" --data-dir "$2" \
    --instance-id "$4" > "$2.log" 2>&1 &
  STARTED_PIDS+=("$!")
  LAST_PID=$!
  wait_http "http://127.0.0.1:$3/health"
}

wrk_run() { # conc url... (one wrk per url, at once; conc each) -> "rps p50 p99"
  local conc=$1 i=0 url pids=() out
  shift
  # A directory per call: the caller reads our output through a process
  # substitution, so the previous call may still be cleaning up.
  out=$(mktemp -d "$WORK/wrk.XXXXXX")
  for url in "$@"; do
    wrk -t1 -c"$conc" -d"${DUR}s" --latency -s "$WORK/post.lua" "$url/v1/chat/completions" > "$out/$i" 2>&1 &
    pids+=("$!")
    i=$((i + 1))
  done
  wait "${pids[@]}"
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {rps+=$2}
    /^ +50%/ {if (ms($2) > p50) p50=ms($2)} /^ +99%/ {if (ms($2) > p99) p99=ms($2)}
    /Non-2xx/ {bad+=$NF}
    END {printf "%.0f %.3f %.3f %d\n", rps, p50, p99, bad}' "$out"/*
  rm -rf "$out"
}

declare -A RPS P50 P99 BAD
measure() { # label url...
  local label=$1
  shift
  wrk_run 1 "$1" > /dev/null # warm-up (connections, seeded budget windows)
  read -r _ P50[$label] P99[$label] _ < <(wrk_run 1 "$1")
  local each=$((CONC / $#))
  read -r RPS[$label] _ _ BAD[$label] < <(wrk_run "$each" "$@")
  log "$label: ${RPS[$label]} rps at c=$CONC, p50 ${P50[$label]} ms at c=1, non-2xx ${BAD[$label]}"
}

config "$WORK/embedded.toml" 18091 embedded
start "$WORK/embedded.toml" "$WORK/embedded" 18091 embedded
measure embedded http://127.0.0.1:18091
stop_pid "$LAST_PID"

config "$WORK/cluster.toml" 18092 cluster on
start "$WORK/cluster.toml" "$WORK/c1" 18092 c1
measure cluster-x1 http://127.0.0.1:18092
stop_pid "$LAST_PID"

config "$WORK/cluster-noack.toml" 18092 cluster off
start "$WORK/cluster-noack.toml" "$WORK/c1n" 18092 c1n
measure cluster-x1-noack http://127.0.0.1:18092
stop_pid "$LAST_PID"

config "$WORK/cluster-a.toml" 18092 cluster on
config "$WORK/cluster-b.toml" 18093 cluster on
start "$WORK/cluster-a.toml" "$WORK/ca" 18092 ca
A=$LAST_PID
start "$WORK/cluster-b.toml" "$WORK/cb" 18093 cb
measure cluster-x2 http://127.0.0.1:18092 http://127.0.0.1:18093
stop_pid "$A"
stop_pid "$LAST_PID"

ROWS=$(psql "$PG_URL" -qAt -c "select count(*) from ledger")
BYTES=$(psql "$PG_URL" -qAt -c "select pg_total_relation_size('ledger')")
AUDIT_ROWS=$(psql "$PG_URL" -qAt -c "select count(*) from audit")
AUDIT_BYTES=$(psql "$PG_URL" -qAt -c "select pg_total_relation_size('audit')")
echo "| setup | RPS at c=$CONC | p50 / p99 at c=1 (ms) | added p50 vs embedded (ms) | non-2xx |"
echo "|---|---|---|---|---|"
for label in embedded cluster-x1 cluster-x1-noack cluster-x2; do
  add=$(awk -v a="${P50[$label]}" -v b="${P50[embedded]}" 'BEGIN { printf "%+.3f", a - b }')
  echo "| $label | ${RPS[$label]} | ${P50[$label]} / ${P99[$label]} | $add | ${BAD[$label]} |"
done
echo
echo "${DUR}s per run, wrk -t1 (two at c=$((CONC / 2)) each for x2), nothing pinned; PostgreSQL ledger rows after the cluster runs: $ROWS ($((BYTES / (ROWS > 0 ? ROWS : 1))) bytes per row with indexes)."
echo "Audit chain in PostgreSQL after them: $AUDIT_ROWS entries ($((AUDIT_BYTES / (AUDIT_ROWS > 0 ? AUDIT_ROWS : 1))) bytes per entry with its index); it verifies: $(HOOSH_AUDIT_KEY=$AUDIT_KEY "$HOOSH" audit verify --config "$WORK/cluster.toml" | cut -c1-60)"
