#!/bin/sh
# Build the systemd Debian test target image from Debian's packages (no registry is
# reachable, so nothing can be pulled):
#
#   sh scripts/build-target-image.sh [bookworm|trixie]     (default bookworm, Debian 12)
#
# The image is tagged keel-target:<release>-<hash of this recipe and the release> and rebuilt
# only when the recipe changes. Prints the image tag on stdout, progress on stderr.
#
# The hash covers the script's non-comment lines, so editing comments does not rebuild.
# Concurrent runs (two test processes) serialize on a lock and the second reuses the image.
set -eu
release=${1:-bookworm}
case $release in
  bookworm | trixie) ;;
  *) echo "build-target-image: unknown release '$release' (bookworm or trixie)" >&2; exit 2 ;;
esac
recipe_hash=$( { grep -v '^[[:space:]]*#' "$0"; echo "$release"; } | sha256sum | cut -c1-12)
image="keel-target:$release-$recipe_hash"
base="keel-target-rootfs:$release-$recipe_hash"

if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/keel-target-image.lock"
  flock 9
fi
if docker image inspect "$image" >/dev/null 2>&1; then
  [ "$release" != bookworm ] || docker tag "$image" keel-target:latest
  echo "$image"; exit 0
fi

mirror=${KEEL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/keel-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
rootfs="$work/rootfs"
echo "build-target-image: debootstrap $release from $mirror (about a minute)" >&2
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,openssh-server,sudo,ca-certificates,iproute2,procps,dbus \
  "$release" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
# The container, not a real server, needs this: PrivateUsers= fails without CAP_SYS_RESOURCE.
mkdir -p "$rootfs/etc/systemd/system/service.d"
printf '[Service]\nPrivateUsers=no\n' >"$rootfs/etc/systemd/system/service.d/10-container.conf"
# Host keys are generated per container at first boot, not baked into the image. Only an
# ed25519 key: `ssh-keygen -A` also makes an RSA key, which took 0.4 s of a 0.9 s boot.
rm -f "$rootfs"/etc/ssh/ssh_host_*
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
printf '%s\n' '[Service]' 'ExecStartPre=' \
  "ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || ssh-keygen -q -t ed25519 -N \"\" -f /etc/ssh/ssh_host_ed25519_key'" \
  'ExecStartPre=/usr/sbin/sshd -t' >"$rootfs/etc/systemd/system/ssh.service.d/10-hostkeys.conf"
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nMaxSessions 100\nMaxStartups 200:30:400\nUseDNS no\n' \
  >"$rootfs/etc/ssh/sshd_config.d/keel-target.conf"
# Getty units have no console here and only spam the journal.
ln -sf /dev/null "$rootfs/etc/systemd/system/getty@tty1.service"
ln -sf /dev/null "$rootfs/etc/systemd/system/console-getty.service"
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
  "$mirror" "$release" "$mirror" "$release" "$release" >"$rootfs/etc/apt/sources.list"
rm -f "$rootfs/etc/apt/sources.list.d/debian.sources"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
echo "build-target-image: importing the root filesystem" >&2
tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
  - "$base" >/dev/null
# `docker import -c` cannot set STOPSIGNAL on engine 20.10; a one-line build on top of the
# local image can (legacy builder: it never pulls an image that exists locally). systemd as
# PID 1 shuts down on SIGRTMIN+3, not on SIGTERM.
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$base" |
  DOCKER_BUILDKIT=0 docker build -q -t "$image" - >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
[ "$release" != bookworm ] || docker tag "$image" keel-target:latest
echo "build-target-image: built $image" >&2
# Images of this release's older recipes: untagged once they are two days old (several
# checkouts, each with its own recipe, may share one engine: they must not take turns
# rebuilding); one still used by a container stays (rmi refuses). Tags without a release
# are bookworm's, from before the recipe took one.
if [ "$release" = bookworm ]; then mine='([0-9a-f]{12}|bookworm-[0-9a-f]{12})'; else mine="$release-[0-9a-f]{12}"; fi
old_enough=$(( $(date +%s) - 2 * 86400 ))
docker image ls --format '{{.Repository}}:{{.Tag}}' |
  grep -E "^keel-target(-rootfs)?:$mine\$" | grep -v ":$release-$recipe_hash\$" |
  while read -r old; do
    made=$(date -d "$(docker image inspect -f '{{.Created}}' "$old" 2>/dev/null)" +%s 2>/dev/null) || continue
    [ "$made" -lt "$old_enough" ] || continue
    docker rmi "$old" >/dev/null 2>&1 || true
  done
echo "$image"
