#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the integration tier. On Debian as root it installs
# docker.io and starts dockerd when none runs; anywhere else it says what is missing and fails.
# It never lets the integration tier skip.
set -euo pipefail

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if engine_up; then exit 0; fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  echo "ensure-docker: no Docker engine is reachable (docker info failed)." >&2
  echo "ensure-docker: start one (e.g. 'sudo systemctl start docker') or set DOCKER_HOST; the integration tests need it." >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io from Debian's archive" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null && engine_up; then exit 0; fi

log=/var/log/bot-bottle-test-dockerd.log
echo "ensure-docker: starting dockerd (log: $log)" >&2
nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if engine_up; then
    echo "ensure-docker: engine up: $(docker version --format '{{.Server.Version}}')" >&2
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
