#!/usr/bin/env bash
# Installs the real services the tests start. Idempotent: a second run only checks.
set -euo pipefail
cache="${LLMPROXY_CACHE:-$HOME/.cache/llmproxy}"
mkdir -p "$cache"

step() { printf '\n==> %s\n' "$*"; }

if ! command -v redis-server >/dev/null 2>&1; then
  step "installing redis-server (Debian package)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; fi
fi
# The tests start their own redis-server; the Debian service is not needed.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi

moto_version="5.2.5"
venv="$cache/moto-$moto_version"
if [ ! -x "$venv/bin/moto_server" ]; then
  step "installing moto[server] $moto_version into $venv (Secrets Manager emulator)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "moto[server]==$moto_version"
fi

if [ -f test/controlplane/build.sh ]; then
  bash test/controlplane/build.sh
fi
step "test services ready"
