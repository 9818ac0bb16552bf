#!/usr/bin/env bash
# Set up (if needed) and start the ragqa chat UI on its embedded defaults: the
# bundled embedding model, FAISS on disk and the built-in extractive answerer.
# Extra arguments go to `streamlit run` (e.g. --server.port 8502).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== starting the chat UI (Ctrl-C to stop)"
exec .venv/bin/streamlit run ui/app.py "$@"
