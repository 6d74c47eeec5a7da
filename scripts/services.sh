#!/usr/bin/env bash
# Make sure the local services the integration tests use are up and prepared:
# RabbitMQ (with its management and Prometheus plugins), Redis and PostgreSQL.
set -euo pipefail

# promtool validates and unit-tests the Prometheus alert rules (Debian's prometheus package)
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian package prometheus)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi

# amtool checks the Alertmanager config and its routes (Debian's prometheus-alertmanager)
if ! command -v amtool >/dev/null 2>&1; then
  echo "installing amtool (Debian package prometheus-alertmanager)"
  apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null
fi

# the console's browser tests drive Debian's headless Chromium through its chromedriver
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (Debian packages, for the console's browser tests)"
  apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 1 60); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
fi
rabbitmq-plugins enable --quiet rabbitmq_management rabbitmq_prometheus >/dev/null
for _ in $(seq 1 60); do
  curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null \
  || { echo "RabbitMQ management API did not come up on 15672" >&2; exit 1; }

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

if ! pg_isready -h 127.0.0.1 -q; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
fi
for db in growbin growbin_test; do
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
done
echo "services ready: RabbitMQ (+management, prometheus), Redis, PostgreSQL ($db)"
