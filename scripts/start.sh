#!/usr/bin/env bash
# Install (first time) and start the web app on http://127.0.0.1:8501
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
# No GLIBC_TUNABLES here: the allocator setting that speeds up training keeps every buffer, so the
# long-lived web server would never return memory. tl_core's launcher sets it for training processes.
exec .venv/bin/python -m streamlit run app.py "$@"
