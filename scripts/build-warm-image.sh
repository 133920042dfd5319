#!/bin/sh
# A test target image with the Debian packages of the whole stack already installed, built on
# the target image (scripts/build-target-image.sh) once and reused while this recipe does not
# change. Example and deploy tests start from it so that their time goes to what they test,
# not to apt; the role tests use the plain image, where installing is part of what they test.
# Prints the image tag on stdout, progress on stderr.
#
#   sh scripts/build-warm-image.sh [bookworm|trixie]       (default bookworm, Debian 12)
set -eu
here=$(dirname "$0")
release=${1:-bookworm}
base=$(sh "$here/build-target-image.sh" "$release")
packages="nginx postgresql postgresql-client redis-server supervisor python3 python3-venv python3-django python3-psycopg2 python3-redis python3-rq python3-gunicorn gunicorn python3-uvicorn gettext curl git tar gzip certbot pebble acl vim htop locales tzdata nftables logrotate ca-certificates openssl"
recipe_hash=$( { grep -v '^[[:space:]]*#' "$0"; echo "$base"; } | sha256sum | cut -c1-12)
image="keel-target-warm:$release-$recipe_hash"
if command -v flock >/dev/null 2>&1; then
  exec 8>"${TMPDIR:-/tmp}/keel-warm-image.lock"
  flock 8
fi
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi
echo "build-warm-image: installing the stack's packages into $base (a few minutes, once)" >&2
name="keel-warm-build-$$"
docker run -d --name "$name" --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined \
  --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock "$base" /lib/systemd/systemd >/dev/null
trap 'docker rm -f -v "$name" >/dev/null 2>&1 || true' EXIT INT TERM
docker exec "$name" sh -c 'i=0; until systemctl is-system-running 2>/dev/null | grep -qE "running|degraded"; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.2; done'
# shellcheck disable=SC2086
docker exec -e DEBIAN_FRONTEND=noninteractive "$name" sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*" >&2
docker exec "$name" sh -c 'systemctl stop nginx postgresql redis-server supervisor pebble 2>/dev/null; rm -f /etc/ssh/ssh_host_*' || true
docker commit "$name" "$image" >/dev/null
echo "build-warm-image: built $image" >&2
# This release's images of older recipes, once two days old (see build-target-image.sh).
if [ "$release" = bookworm ]; then mine='([0-9a-f]{12}|bookworm-[0-9a-f]{12})'; else mine="$release-[0-9a-f]{12}"; fi
old_enough=$(( $(date +%s) - 2 * 86400 ))
docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E "^keel-target-warm:$mine\$" | grep -v ":$release-$recipe_hash\$" |
  while read -r old; do
    made=$(date -d "$(docker image inspect -f '{{.Created}}' "$old" 2>/dev/null)" +%s 2>/dev/null) || continue
    [ "$made" -lt "$old_enough" ] || continue
    docker rmi "$old" >/dev/null 2>&1 || true
  done
echo "$image"
