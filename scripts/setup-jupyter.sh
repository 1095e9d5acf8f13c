#!/usr/bin/env bash
# Register the tslab (TypeScript) Jupyter kernel, so the notebooks in notebooks/ run headless
# (test/notebooks.test.ts, scripts/run-notebooks.sh) and open in JupyterLab.
# Needs Python with jupyter_client + nbclient + ipykernel (Debian: jupyter-nbconvert python3-nbclient
# python3-ipykernel) and `npm ci` done. Run from anywhere; safe to run twice.
#   bash scripts/setup-jupyter.sh               this checkout's kernel (for the tests) + the user's (JupyterLab)
#   bash scripts/setup-jupyter.sh --local-only  only this checkout's kernel (CI: leaves other checkouts' kernels alone)
# The tests use a kernel registered inside this checkout (.jupyter/, found through JUPYTER_PATH), so a
# second clone, or a deleted one, can never leave them a kernel that starts someone else's tslab.
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
LOCAL="$PWD/.jupyter"
npx --no-install tslab install --python="$PY" --binary="$PWD/node_modules/.bin/tslab" --prefix="$LOCAL"
# Read the whole list before matching: with pipefail, `list | grep -q` fails at random when grep exits
# first and the lister dies of SIGPIPE.
specs="$(JUPYTER_PATH="$LOCAL/share/jupyter" "$PY" -m jupyter_client.kernelspecapp list 2>/dev/null || true)"
grep -q " tslab *$LOCAL/share/jupyter/kernels/tslab" <<<"$specs" || { echo "setup-jupyter: tslab kernel not registered in $LOCAL" >&2; exit 1; }
echo "setup-jupyter: tslab kernel registered in $LOCAL (the tests use it)"
if [ "${1:-}" != "--local-only" ]; then
  npx --no-install tslab install --python="$PY" --binary="$PWD/node_modules/.bin/tslab"
  echo "setup-jupyter: tslab kernel registered for $PY (JupyterLab: jupyter lab notebooks/)"
fi
