#!/usr/bin/env bash
# Run the service: ./start.sh [run.py arguments...]   (./start.sh --help lists them)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv ""
exec "$VENV_PY" run.py "$@"
