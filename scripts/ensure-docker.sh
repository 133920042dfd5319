#!/bin/sh
# Make sure a Docker engine answers. Installs docker.io and debootstrap from Debian's
# packages when missing and starts dockerd (no systemd on these machines).
set -eu
if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1 ||
  ! command -v debootstrap >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "ensure-docker: need root to install docker.io and debootstrap" >&2; exit 1; }
  echo "ensure-docker: installing docker.io and debootstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if docker info >/dev/null 2>&1; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "ensure-docker: no Docker engine answers and I am not root to start one" >&2; exit 1; }
echo "ensure-docker: starting dockerd (log: /var/log/dockerd.log)" >&2
# Detached from our stdin/stdout so a caller that waits for our pipes to close is not held.
nohup dockerd </dev/null >/var/log/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 60 ]; then
    echo "ensure-docker: dockerd did not answer in 30 s; last lines of /var/log/dockerd.log:" >&2
    tail -20 /var/log/dockerd.log >&2 || true
    exit 1
  fi
  sleep 0.5
done
