#!/usr/bin/env bash
# What the tests need beyond `npm ci`: Jupyter (Debian packages) and the tslab kernel, for the
# notebook tests. Idempotent; installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v jupyter >/dev/null 2>&1 || need+=(jupyter-nbconvert)
/usr/bin/python3 -c 'import nbclient' 2>/dev/null || need+=(python3-nbclient)
/usr/bin/python3 -c 'import ipykernel' 2>/dev/null || need+=(python3-ipykernel)
# PyTorch (Debian python3-torch) for the test that decodes exported vectors in torch (test/newcomer)
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || need+=(python3-torch python3-numpy)
# OpenBLAS for the native cram engine's GEMMs (it builds without it, slower)
[ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/aarch64-linux-gnu/cblas.h ] || [ -f /usr/include/openblas/cblas.h ] || need+=(libopenblas-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# (re)build the native engine against what is installed now; never fails
node scripts/build-native.mjs
if [ -f scripts/setup-jupyter.sh ]; then bash scripts/setup-jupyter.sh --local-only; fi
