#!/usr/bin/env bash
# Create (or reuse) .venv and install requirements into it. Re-installs only when a
# requirements file changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
reqs="${1:-requirements.txt}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(basename "$reqs")"
digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "Installing $reqs into .venv (the first time downloads PyTorch and takes a few minutes)..."
  .venv/bin/python -m pip install --quiet -r "$reqs"
  echo "$digest" > "$stamp"
fi
