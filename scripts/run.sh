#!/usr/bin/env bash
# Set up (if needed) and run ragqa on its embedded defaults: the bundled embedding
# model, FAISS on disk and the built-in extractive answerer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ragqa demo "$@"
