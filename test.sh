#!/usr/bin/env bash
# Run the test suite: ./test.sh [pytest arguments...]
# Creates/refreshes .venv from pyproject.toml and makes sure the real services the tests use are up:
# MariaDB on 127.0.0.1:3306 (root, empty password, database `test`), and Debian's Chromium at
# /usr/bin/chromium for the browser tests (tests/browser, driven by Playwright from the test extra).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv test
scripts/ensure-mariadb.sh
scripts/ensure-chromium.sh
exec "$VENV_PY" -m pytest "$@"
