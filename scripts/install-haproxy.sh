#!/usr/bin/env bash
# Install Debian's HAProxy (2.6 on bookworm) when it is missing: the rolling-restart test and benchmark put two
# gateways behind it (testkit/haproxy.py runs it as the current user on loopback). Needs root; idempotent.
set -euo pipefail

say() { printf '[install-haproxy] %s\n' "$*"; }

if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "haproxy not found and not root: run 'sudo apt-get install haproxy' for the rolling-restart test and benchmark"
  exit 0
fi
say "installing Debian's haproxy (load balancer for the rolling-restart test and benchmark)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends haproxy >/dev/null
# The package may start a service of its own (its stock config binds no port); the tests start their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now haproxy >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
  service haproxy stop >/dev/null 2>&1 || true
fi
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || { say "ERROR: haproxy still missing" >&2; exit 1; }
