#!/usr/bin/env bash
# Install (first time) and start the web app on http://127.0.0.1:8501
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736}"
exec .venv/bin/python -m streamlit run app.py "$@"
