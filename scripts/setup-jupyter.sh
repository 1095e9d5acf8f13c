#!/usr/bin/env bash
# Register the tslab (TypeScript) Jupyter kernel, so the notebooks in notebooks/ run headless
# (test/notebooks.test.ts, scripts/run-notebooks.sh) and open in JupyterLab.
# Needs Python with jupyter_client + nbclient + ipykernel (Debian: jupyter-nbconvert python3-nbclient
# python3-ipykernel) and `npm ci` done. Run from anywhere; safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${CRAMLAB_PYTHON:-}"
if [ -z "$PY" ]; then
  # The Python that has nbclient (Debian's /usr/bin/python3 when a pyenv python3 shadows it).
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import nbclient, jupyter_client' 2>/dev/null; then PY="$(command -v "$p")"; break; fi
  done
fi
if [ -z "$PY" ]; then
  echo "setup-jupyter: no python3 with nbclient and jupyter_client; install e.g. 'apt-get install jupyter-nbconvert python3-nbclient python3-ipykernel' or 'pip install nbclient ipykernel'" >&2
  exit 1
fi
node -e "require('zeromq')" || { echo "setup-jupyter: tslab's zeromq native module does not load (run npm ci)" >&2; exit 1; }
# An absolute path to this checkout's tslab: the kernel then needs no global install.
npx --no-install tslab install --python="$PY" --binary="$PWD/node_modules/.bin/tslab"
# Read the whole list before matching: with pipefail, `list | grep -q` fails at random when grep exits
# first and the lister dies of SIGPIPE.
specs="$("$PY" -m jupyter_client.kernelspecapp list 2>/dev/null || true)"
grep -q ' tslab ' <<<"$specs" || { echo "setup-jupyter: tslab kernel not registered" >&2; exit 1; }
echo "setup-jupyter: tslab kernel registered for $PY"
