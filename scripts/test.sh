#!/usr/bin/env bash
# Set up everything the test suite needs and run all of it, slow end-to-end tests
# included. Extra arguments go to pytest (e.g. scripts/test.sh -k splitting).
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages first: the compiler that builds llama-cpp-python, the browser and
# a CJK font for the end-to-end tests (needs root and apt; without them those tests
# fail loudly rather than pass silently).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  bash scripts/install_system_deps.sh
fi

bash scripts/setup.sh dev

echo "== running the test suite"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
