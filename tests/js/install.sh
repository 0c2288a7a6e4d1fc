#!/usr/bin/env bash
# Installs what tests/integration/test_js_clients.py needs: tests/js/node_modules (from the committed
# package-lock.json) and Debian's Chromium at /usr/bin/chromium. Idempotent and quick when both are
# already there; `.ci/run` and `make test` call it. No browser is downloaded by npm: playwright-core
# drives the Debian package.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { [ "$(id -u)" -eq 0 ]; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    echo "==> tests/js: apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  echo "==> tests/js: apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if as_root; then
    apt_install nodejs npm
  else
    echo "!! tests/js: node and npm are missing and we are not root: install Node.js >= 20" >&2
    exit 1
  fi
fi

# node_modules is current when it was installed from this very lock file.
stamp=node_modules/.runwire-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d node_modules/ai ] && [ -d node_modules/playwright-core ]; then
  echo "==> tests/js: node_modules matches package-lock.json"
else
  echo "==> tests/js: npm ci (node $(node --version), npm $(npm --version))"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

if [ -x /usr/bin/chromium ]; then
  echo "==> tests/js: /usr/bin/chromium is there"
elif as_root; then
  apt_install chromium
else
  echo "!! tests/js: /usr/bin/chromium is missing and we are not root: the browser tests will skip" >&2
fi
