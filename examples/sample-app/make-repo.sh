#!/bin/sh
# make-repo.sh DIR: create a fresh git repository in DIR holding the keel sample app and
# one branch per deploy scenario. Authors, committers and dates are fixed, so every run
# gives the same commit shas. Prints "<branch> <sha>" for each branch on stdout.
#
#   main               v1: the app as in app/
#   v2-bad-migration   v2: main + migration 0002 that fails on PostgreSQL (migrate exits 1)
#   v3-bad-health      v3: main + a health check that fails (/ping answers 500)
#   v4                 v4: main + harmless migration 0002 (nullable column), code using it
#   v4-code-only       v4-code-only: main + a template change only (no migration, same requirements)
#   v5-requirements    v5: v4 + a changed requirements.txt (comment only: installs offline)
#   v6-bad-daemon      v6: main + a daemon (counter.daemon) that crashes at start; the web app is fine
#
# Each branch is main (or v4) plus the files of variants/<branch>/ laid over it.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
here=$(cd "$(dirname "$0")" && pwd)

if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  echo "make-repo.sh: $dir exists and is not empty" >&2
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Nothing from the caller's git configuration (signing, hooks, autocrlf, default branch...).
GIT_CONFIG_NOSYSTEM=1
GIT_CONFIG_GLOBAL=/dev/null
GIT_AUTHOR_NAME='Keel Sample'
GIT_AUTHOR_EMAIL='sample@keel.invalid'
GIT_COMMITTER_NAME='Keel Sample'
GIT_COMMITTER_EMAIL='sample@keel.invalid'
export GIT_CONFIG_NOSYSTEM GIT_CONFIG_GLOBAL GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL \
  GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_AUTHOR_DATE GIT_COMMITTER_DATE 2>/dev/null || true

g() { git -C "$dir" -c core.autocrlf=false -c core.fileMode=true -c commit.gpgsign=false "$@"; }

# Copy a tree's files into the repository, leaving out what running the app leaves behind.
lay() {
  (cd "$1" && find . -type f \
    ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '*.mo' ! -name '*.sqlite3' \
    ! -path './staticfiles/*' ! -name REVISION ! -name '*.swp' ! -name '*~' \
    ! -path '*/node_modules/*' ! -path './counter/static/counter/dist/*') |
  while IFS= read -r f; do
    mkdir -p "$dir/$(dirname "$f")"
    cp "$1/$f" "$dir/$f"
    chmod 644 "$dir/$f"
  done
  if [ -f "$dir/manage.py" ]; then chmod 755 "$dir/manage.py"; fi
}

commit() { # commit DATE MESSAGE
  g add -A
  GIT_AUTHOR_DATE=$1 GIT_COMMITTER_DATE=$1 g commit -q -m "$2"
}

variant() { # variant BRANCH BASE DATE MESSAGE
  g checkout -q -b "$1" "$2"
  lay "$here/variants/$1"
  commit "$3" "$4"
}

g init -q -b main
lay "$here/app"
# Written here, not kept in app/: in keel's own repository it would leave app/frontend out of
# keel's archives. The front-end's sources stay out of the release: keel deploy ships what git
# archive gives, and deploy_local_build's outputs (counter/static/counter/dist/) in their place.
printf '%s\n' '/frontend export-ignore' > "$dir/.gitattributes"
commit '2026-01-01T00:00:00+0000' 'Sample app v1'

variant v2-bad-migration main '2026-01-02T00:00:00+0000' 'v2: migration 0002 that fails on PostgreSQL'
variant v3-bad-health main '2026-01-03T00:00:00+0000' 'v3: /ping answers 500'
variant v4 main '2026-01-04T00:00:00+0000' 'v4: nullable Hit.user_agent (migration 0002), written by /'
variant v4-code-only main '2026-01-05T00:00:00+0000' 'v4-code-only: template change only'
variant v5-requirements v4 '2026-01-06T00:00:00+0000' 'v5: requirements.txt changed (comment only)'
variant v6-bad-daemon main '2026-01-07T00:00:00+0000' 'v6: the daemon crashes at start'

g checkout -q main
for b in main v2-bad-migration v3-bad-health v4 v4-code-only v5-requirements v6-bad-daemon; do
  echo "$b $(g rev-parse "refs/heads/$b")"
done
