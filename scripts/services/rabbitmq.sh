#!/usr/bin/env bash
# Ensures RabbitMQ (AMQP 0-9-1) runs on 127.0.0.1:5672 with guest/guest for the job-queue tests
# (adapters/tests/amqp_*.rs), idempotently: installs Debian's rabbitmq-server if it is missing,
# starts the node (or only its application, if a test left it stopped) when it is down, and waits
# until it accepts connections. The restart test stops and starts the node itself and leaves it
# running; the tests never stop it otherwise.
set -euo pipefail

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "rabbitmq-server is not installed and this is not root: install it first" >&2
    exit 1
  fi
  echo "installing rabbitmq-server ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi

if port_open && rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1; then
  echo "rabbitmq $(rabbitmqctl -q version 2>/dev/null) already running on 127.0.0.1:5672"
  exit 0
fi

if rabbitmqctl -q ping >/dev/null 2>&1; then
  # The Erlang node is up but its application is stopped (an interrupted restart test).
  echo "starting the rabbit application ..."
  rabbitmqctl -q start_app
else
  echo "starting rabbitmq-server ..."
  # The Debian wrapper drops to the rabbitmq user when run as root.
  rabbitmq-server -detached
fi

# `await_startup` fails at once while the node has not registered yet, so retry it.
deadline=$((SECONDS + 120))
until port_open && rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "rabbitmq did not start within 120 s; see /var/log/rabbitmq/" >&2
    exit 1
  fi
  sleep 0.5
done
echo "rabbitmq $(rabbitmqctl -q version 2>/dev/null) running on 127.0.0.1:5672"
