#!/usr/bin/env bash
# Rebuild the Binder environment from binder/ alone, as repo2docker's pip buildpack would, and run
# notebook 00 in smoke mode on that environment's kernel.
#   bash binder/verify.sh [WORKDIR]     (WORKDIR defaults to a fresh temporary folder, removed at exit)
# Steps: a fresh venv on the Python that runtime.txt names; pip install -r binder/requirements.txt;
# binder/postBuild from the repository root; `pip check` (postBuild installs r3lab with --no-deps, so a
# dependency missing from requirements.txt shows up here); notebook 00 through the runner.
# Nothing outside WORKDIR is touched: Jupyter's user data dir (where postBuild's `--user` kernel goes)
# and pip's user config for the venv point into it.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BINDER="$REPO/binder"
OWN_TMP=""
if [ $# -ge 1 ]; then WORK="$(mkdir -p "$1" && cd "$1" && pwd)"; else WORK="$(mktemp -d)"; OWN_TMP=1; fi
cleanup() { if [ -n "$OWN_TMP" ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
t0=$SECONDS
step() { echo "[binder-verify] $(( SECONDS - t0 ))s: $*"; }

# runtime.txt says e.g. python-3.11: find that interpreter.
want="$(sed -n 's/^python-\([0-9]*\.[0-9]*\).*/\1/p' "$BINDER/runtime.txt")"
[ -n "$want" ] || { echo "binder/runtime.txt does not name a python-X.Y" >&2; exit 2; }
PYTHON=""
for cand in "python$want" python3 python; do
  if command -v "$cand" >/dev/null && [ "$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$want" ]; then
    PYTHON="$(command -v "$cand")"; break
  fi
done
[ -n "$PYTHON" ] || { echo "no Python $want found (binder/runtime.txt asks for it)" >&2; exit 2; }

# A clean environment: nothing from the caller's venv or user site leaks in.
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME CONDA_PREFIX
export PYTHONNOUSERSITE=1
export JUPYTER_DATA_DIR="$WORK/jupyter-data" JUPYTER_CONFIG_DIR="$WORK/jupyter-config"
export JUPYTER_RUNTIME_DIR="$WORK/jupyter-runtime" IPYTHONDIR="$WORK/ipython" MPLCONFIGDIR="$WORK/mpl"
unset JUPYTER_PATH
# An index that cannot be reached (the CPU-torch index, offline) must fail over at once, not after
# pip's default retries with back-off on every package.
export PIP_RETRIES="${PIP_RETRIES:-1}" PIP_DEFAULT_TIMEOUT="${BINDER_PIP_TIMEOUT:-15}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

step "fresh venv on $PYTHON in $WORK/venv"
rm -rf "$WORK/venv"
"$PYTHON" -m venv "$WORK/venv"
export PATH="$WORK/venv/bin:$PATH"
hash -r

step "pip install -r binder/requirements.txt"
# repo2docker runs this from the repository root with the file's own options (the extra index).
# Two warnings per package are this offline machine's (the unreachable CPU-torch index, local index
# folders without that package): filtered out; every other line and pip's exit status are kept.
# --no-compile: byte-compiling every installed module (torch, jupyterlab, pandas, ...) is half of the install's
# time and checks nothing (a module compiles when it is first imported).
(cd "$REPO" && pip install --quiet --no-compile -r binder/requirements.txt 2>&1 \
  | sed -e '/Retrying (Retry(total=0.*NewConnectionError/d' -e '/is ignored: it is neither a file nor a directory/d')

step "binder/postBuild"
(cd "$REPO" && bash binder/postBuild)

step "pip check"
pip check

# The kernel postBuild registered must be this venv's Python.
kernel_py="$(python - <<'EOF'
from jupyter_client.kernelspec import KernelSpecManager
print(KernelSpecManager().get_kernel_spec("r3lab").argv[0])
EOF
)"
case "$kernel_py" in
  "$WORK"/venv/*) ;;
  *) echo "kernel r3lab runs $kernel_py, not the Binder venv's Python" >&2; exit 1 ;;
esac

step "notebook 00 in smoke mode on kernel r3lab ($kernel_py)"
(cd "$WORK" && r3lab notebooks run 00 --profile smoke --out "$WORK/run" --timeout 600)
step "done: the Binder environment builds and runs notebook 00"
