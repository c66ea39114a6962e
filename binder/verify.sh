#!/usr/bin/env bash
# The Binder route, rebuilt from binder/ alone as repo2docker's pip buildpack would, then every lesson run on that
# environment's kernel through its own papermill in smoke mode.
#   bash binder/verify.sh [WORKDIR]     (WORKDIR defaults to a fresh temporary folder, removed at exit)
# Steps: a fresh venv on the Python that runtime.txt names; pip install -r binder/requirements.txt;
# binder/postBuild from the repository root; `pip check` (postBuild installs r3lab with --no-deps, so a
# dependency missing from requirements.txt shows up here); the lessons (routes/common.sh: a clean environment,
# no pip cache, no browser). Nothing outside WORKDIR is touched but the clone's r3lab.egg-info (postBuild's
# `pip install -e .`): Jupyter's user data dir (where postBuild's `--user` kernel goes) points into WORKDIR.
source "$(dirname "$0")/../routes/common.sh"
BINDER="$REPO/binder"

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

route_init binder "${1:-}"
step "fresh venv on $PYTHON in $WORK/venv"
fresh_venv "$PYTHON" "$WORK/venv"
export PATH="$WORK/venv/bin:$PATH"
hash -r

step "pip install -r binder/requirements.txt"
# repo2docker runs this from the repository root with the file's own options (the extra index).
# --no-compile: byte-compiling every installed module (torch, jupyterlab, pandas, ...) is half of the install's
# time and checks nothing (a module compiles when it is first imported).
(cd "$REPO" && quiet_pip pip install --quiet --no-compile -r binder/requirements.txt)

step "binder/postBuild"
(cd "$REPO" && bash binder/postBuild)

step "pip check"
pip check

# The kernel postBuild registered must be this venv's Python.
kernel_py="$(python - <<'PY'
from jupyter_client.kernelspec import KernelSpecManager
print(KernelSpecManager().get_kernel_spec("r3lab").argv[0])
PY
)"
case "$kernel_py" in
  "$WORK"/venv/*) ;;
  *) echo "kernel r3lab runs $kernel_py, not the Binder venv's Python" >&2; exit 1 ;;
esac

step "every lesson in smoke mode on kernel r3lab ($kernel_py)"
run_lessons r3lab "$REPO/notebooks" "$WORK/venv/bin/papermill" || rc=$?
step "done: the Binder route ${LESSONS_PASSED}/${LESSONS_TOTAL}"
exit "${rc:-0}"
