#!/usr/bin/env bash
# Install Debian's PostgreSQL server tools when they are missing: the shared acknowledgement store's tests
# start a throwaway cluster with them (tests/store/). Needs root (CI runs as root); idempotent.
set -euo pipefail

say() { printf '[install-postgres] %s\n' "$*"; }

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "PostgreSQL server tools not found and not root: run 'sudo apt-get install postgresql' for the store tests"
  exit 0
fi
say "installing Debian's postgresql (server tools for the store tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# The package may start a cluster of its own on 5432; the tests never use it, and it costs memory.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r ver name _; do
    pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
  done
fi
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || { say "ERROR: initdb still missing" >&2; exit 1; }
