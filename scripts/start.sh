#!/usr/bin/env bash
# Install (first time) and start the web app on http://127.0.0.1:8501 (one person, this computer).
# --classroom [--port N] [--host ADDRESS]: serve the room's network over HTTPS (self-signed
# certificate made on first start), print the join address, its QR code and the teacher PIN.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
# No GLIBC_TUNABLES here: the allocator setting that speeds up training keeps every buffer, so the
# long-lived web server would never return memory. tl_core's launcher sets it for training processes.
if [ "${1:-}" = "--classroom" ]; then
  shift
  exec .venv/bin/python -m tl_core.classroom "$@"
fi
# ui.serve is Streamlit's command line with the old pages/ folder routing switched off (see there).
exec .venv/bin/python -m ui.serve run app.py "$@"
