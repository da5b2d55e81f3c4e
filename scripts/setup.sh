#!/usr/bin/env bash
# Idempotent machine setup: installs the npm dependencies, generates the Prisma client, builds the dashboard
# page (web/ -> web/dist) when its sources changed, installs Chromium (the browser tests' browser) when it is
# missing and, only when no WebGPU adapter is found, a software Vulkan driver (Mesa 25 lavapipe from Debian
# bookworm-backports) for Dawn.
set -euo pipefail
cd "$(dirname "$0")/.."

export PRISMA_SCHEMA_ENGINE_BINARY="${PRISMA_SCHEMA_ENGINE_BINARY:-$PWD/package.json}"
export CHECKPOINT_DISABLE=1

# Reinstall only when the lockfile changed since the last install (its hash is kept in node_modules).
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.ttt-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  npm ci --no-audit --no-fund
  echo "$lock_hash" > node_modules/.ttt-lock-hash
fi

# The Prisma client and Pothos types are generated (git-ignored); offline this needs the two variables above.
npx prisma generate >/dev/null

# The dashboard page, rebuilt only when its sources or the lockfile changed (their hash is kept in web/dist).
web_hash=$( (sha256sum package-lock.json; find web -path web/dist -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)
if [ "$(cat web/dist/.ttt-web-hash 2>/dev/null)" != "$web_hash" ]; then
  npx vite build --config web/vite.config.ts
  echo "$web_hash" > web/dist/.ttt-web-hash
fi

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

# The browser tests drive Debian's Chromium (playwright-core never downloads a browser).
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing chromium for the browser tests"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

probe() { node scripts/probe-adapter.mjs >/dev/null 2>&1; }

if probe; then
  echo "setup: WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null)"
  exit 0
fi

echo "setup: no WebGPU adapter; installing a software Vulkan driver (lavapipe, Mesa 25)"
. /etc/os-release
if [ "${ID:-}" = "debian" ] && [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  # Ubuntu 24.04+ and Debian 13 ship a Mesa whose lavapipe Dawn accepts.
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if probe; then
  echo "setup: WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null)"
else
  echo "setup: still no WebGPU adapter after installing lavapipe" >&2
  exit 1
fi
