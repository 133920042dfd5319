#!/bin/sh
# A dynamic inventory in Ansible's protocol (--list, --host NAME), standing in for the cloud
# inventory script of an autoscaling group: it lists the local targets of this project that
# are running (`keel target up` started them; Docker plays the cloud API), grouped by name:
# lb*, web*, backup*. A target started or stopped is in or out of the next keel run.
#
#   ./local-targets.sh --list      {"web": {"hosts": [...]}, ..., "_meta": {"hostvars": {...}}}
#   ./local-targets.sh --host web1 {} (everything is in _meta)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  --host) echo '{}'; exit 0 ;;
  --list) ;;
  *) echo "usage: $0 --list | --host NAME" >&2; exit 2 ;;
esac
key="$root/.keel/target/id_ed25519"
# name and SSH port of each running target of this project: "web1 127.0.0.1:24022->22/tcp, ..."
targets=$(docker ps --filter "label=keel.target.root=$root" --format '{{.Label "keel.target.name"}} {{.Ports}}' |
  sed -n 's#^\([a-z][a-z0-9-]*\) .*127\.0\.0\.1:\([0-9]*\)->22/tcp.*#\1 \2#p' | sort)
members() { # the JSON list of targets whose name starts with $1
  printf '%s\n' "$targets" | awk -v p="$1" 'index($1, p) == 1 { printf "%s\"%s\"", (n++ ? ", " : ""), $1 }'
}
printf '{\n  "lb": {"hosts": [%s]},\n  "web": {"hosts": [%s]},\n  "backup": {"hosts": [%s]},\n' "$(members lb)" "$(members web)" "$(members backup)"
printf '  "_meta": {"hostvars": {'
printf '%s\n' "$targets" | awk -v key="$key" 'NF == 2 {
  printf "%s\n    \"%s\": {\"ansible_host\": \"127.0.0.1\", \"ansible_port\": %s, \"ansible_user\": \"root\", \"ansible_ssh_private_key_file\": \"%s\"}", (n++ ? "," : ""), $1, $2, key
}'
printf '\n  }}\n}\n'
