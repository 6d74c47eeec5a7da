#!/usr/bin/env bash
# Make the secrets the compose stack reads, under deploy/compose/secrets/ (git-ignored):
# random passwords, the Erlang cookie, and the env files whose URLs embed them. Existing files
# are kept, so running it again changes nothing. Optional: SLACK_WEBHOOK_URL=https://hooks...
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets

random() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "${1:-32}"; }

# A secret file a container reads as its own (non-root) user: readable inside the 0700
# directory only (compose bind-mounts the file; the directory keeps other host users out).
secret() {
  local name=$1 value=$2
  [ -e "secrets/$name" ] && return 0
  printf '%s' "$value" > "secrets/$name"
  chmod 644 "secrets/$name"
  echo "made secrets/$name"
}

secret erlang_cookie "$(random 48)"
secret postgres_password "$(random)"
secret redis_password "$(random)"
secret grafana_admin_password "$(random 20)"
secret slack_api_url "${SLACK_WEBHOOK_URL:-https://hooks.slack.com/services/SET/THIS/URL}"
# Prometheus scrapes the API's /metrics with an admin API key; make one once the stack runs:
#   docker compose run --rm api growbin apikey create --owner prometheus --name metrics \
#     --scope admin > secrets/api_metrics_token   (keep only the key line), then
#   docker compose restart prometheus
secret api_metrics_token ""

if [ ! -e secrets/rabbitmq.env ]; then
  rabbit_pass=$(random)
  postgres_pass=$(cat secrets/postgres_password)
  redis_pass=$(cat secrets/redis_password)
  nodes=""
  for n in 0 1 2; do
    nodes="${nodes:+$nodes;}amqp://growbin:${rabbit_pass}@rabbitmq-$n:5672//"
  done
  cat > secrets/rabbitmq.env <<ENV
RABBITMQ_DEFAULT_USER=growbin
RABBITMQ_DEFAULT_PASS=${rabbit_pass}
ENV
  cat > secrets/growbin.env <<ENV
GROWBIN_BROKER_URL=${nodes}
GROWBIN_RABBITMQ_API_URL=http://growbin:${rabbit_pass}@rabbitmq-0:15672/api
GROWBIN_REDIS_URL=redis://:${redis_pass}@redis:6379/0
GROWBIN_DATABASE_URL=postgresql+psycopg://growbin:${postgres_pass}@postgres:5432/growbin
GROWBIN_API_SECRET=$(random 48)
ENV
  cat > secrets/flower.env <<ENV
FLOWER_BASIC_AUTH=admin:$(random 20)
FLOWER_BROKER_API=http://growbin:${rabbit_pass}@rabbitmq-0:15672/api/
ENV
  echo "made secrets/rabbitmq.env, secrets/growbin.env and secrets/flower.env"
fi
echo "secrets ready in $(pwd)/secrets (Flower's login is in secrets/flower.env)"
