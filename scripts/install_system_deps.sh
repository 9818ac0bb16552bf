#!/usr/bin/env bash
# Debian packages the end-to-end tests use: a compiler and cmake to build
# llama-cpp-python (the real local LLM), a CJK font for making Chinese PDF
# fixtures, and Chromium for the browser tests (Playwright drives it).
set -euo pipefail
packages=(build-essential cmake fonts-wqy-zenhei chromium)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
