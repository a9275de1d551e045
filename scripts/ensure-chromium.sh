#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser test (tests/browser).
# Browser builds cannot be downloaded on these machines (`playwright install` fails), so Playwright
# drives the distribution's package instead. Installs it when missing; exits non-zero (so CI fails
# rather than skips) when that cannot be done.
set -uo pipefail
CHROMIUM=/usr/bin/chromium
works() { [ -x "$CHROMIUM" ] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; }
if works; then exit 0; fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
echo "Chromium is not installed: installing chromium from Debian's packages (about a minute)" >&2
as_root apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null 2>&1 || {
    echo "error: could not install chromium (apt-get install chromium failed)" >&2; exit 1; }
if works; then exit 0; fi
echo "error: $CHROMIUM does not run after installing chromium" >&2
exit 1
