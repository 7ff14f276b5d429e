#!/usr/bin/env bash
# Install the Debian packages given as arguments, skipping those already present,
# so `make test` and `make deploy` work on a fresh Debian 12 machine as root.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-debs: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-debs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Installing a daemon must not leave it running: tests start their own copies.
for svc in haproxy keepalived nginx ssh; do
  if [ -f "/run/$svc.pid" ]; then kill "$(cat "/run/$svc.pid")" 2>/dev/null || true; fi
done
