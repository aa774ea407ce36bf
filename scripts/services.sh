#!/usr/bin/env bash
# PostgreSQL and Redis for the cluster tests (shared state), which use the
# real servers: installed when missing (Debian packages; needs root), started
# when down, then checked — a test that cannot reach them fails rather than
# skips. Idempotent; scripts/test.sh runs it first. Tests connect as
# `postgres` to database `test` on 127.0.0.1:5432 without a password and to
# Redis on 127.0.0.1:6379 (HOOSH_TEST_POSTGRES / HOOSH_TEST_REDIS to change).
set -euo pipefail
if [ -n "${HOOSH_TEST_POSTGRES:-}" ] && [ -n "${HOOSH_TEST_REDIS:-}" ]; then
  exit 0 # the caller brings its own
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break
  sleep 1
done
pg_isready -h 127.0.0.1
redis-cli -h 127.0.0.1 ping
# The tests connect as `postgres` to database `test` over TCP without a
# password (trust), as this machine's server is set up; make a fresh
# install match.
PSQL=(psql -h 127.0.0.1 -U postgres -qAt)
if ! "${PSQL[@]}" -d test -c 'select 1' >/dev/null 2>&1; then
  hba=$($SUDO su postgres -c "psql -qAt -c 'show hba_file'")
  $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  $SUDO su postgres -c "psql -qc 'select pg_reload_conf()'" >/dev/null
  "${PSQL[@]}" -d postgres -c 'select 1' >/dev/null
  "${PSQL[@]}" -d postgres -tc "select 1 from pg_database where datname = 'test'" | grep -q 1 \
    || "${PSQL[@]}" -d postgres -c 'create database test'
fi
# Databases earlier test runs made (one per cluster test).
"${PSQL[@]}" -d test -c "select datname from pg_database where datname like 'hoosh\_t\_%' or datname like 'hoosh\_c\_%'" \
  | while read -r db; do "${PSQL[@]}" -d test -c "drop database if exists \"$db\" with (force)" || true; done

# Redis keys earlier test runs left (each test has its namespace: `t` or
# `t_` and 32 hex digits; a killed instance's leases and lifetime budgets
# have no TTL).
# Deleted by a script in Redis: cache keys are raw bytes, unfit for a shell pipe.
q='????????????????????????????????'
drop_keys='local c = "0" repeat local r = redis.call("SCAN", c, "MATCH", ARGV[1], "COUNT", 1000) c = r[1]
  for _, k in ipairs(r[2]) do redis.call("DEL", k) end until c == "0" return 1'
for pattern in "t${q}:*" "t_${q}:*"; do
  redis-cli -h 127.0.0.1 eval "$drop_keys" 0 "$pattern" > /dev/null
done
