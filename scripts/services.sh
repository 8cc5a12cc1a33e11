#!/usr/bin/env bash
# The services the PostgreSQL and multi-replica tests use: PostgreSQL (127.0.0.1:5432) and
# Redis (127.0.0.1:6379). The machine starts both; if one is down it is started here, and
# if it still does not answer this fails (the tests must not silently skip).
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() {
  local what=$1 check=$2
  for _ in $(seq 1 30); do
    "$check" && return 0
    sleep 1  # polling a service's start-up, not synchronising a test
  done
  echo "services: $what does not answer after 30 s" >&2
  return 1
}

if ! pg_up; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
wait_for PostgreSQL pg_up

if ! redis_up; then
  echo "services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
wait_for Redis redis_up
echo "services: PostgreSQL and Redis answer" >&2
