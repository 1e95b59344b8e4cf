#!/usr/bin/env bash
# Host tools the integration tier drives for real: debootstrap (the offline base image).
set -euo pipefail
command -v debootstrap >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
  echo "ensure-tools: installing debootstrap from Debian's archive" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  exit 0
fi
echo "ensure-tools: debootstrap is missing; install it (sudo apt-get install debootstrap)." >&2
exit 1
