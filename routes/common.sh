# Shared by the route scripts (routes/colab.sh, routes/wheel.sh, binder/verify.sh): a clean environment built from
# the repository alone, and every lesson run through plain papermill in smoke mode. Sourced, not run.
#   route_init NAME [WORKDIR]   the clean environment (WORKDIR: default a fresh temporary folder, removed at exit)
#   fresh_venv PYTHON DIR       a new venv (nothing from the caller's venv, user site or pip cache)
#   run_lessons KERNEL NBDIR [PAPERMILL]  every NN_*.ipynb of NBDIR with `papermill -k KERNEL -p smoke True`
#                               (ROUTE_LESSONS="10 50": only those lessons, by number)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUTE_PYTHON="${ROUTE_PYTHON:-python3.11}"  # the CPU torch wheel this machine serves is for CPython 3.11
ROUTE_TORCH="${ROUTE_TORCH:-torch==2.13.0}"  # installed first: an unpinned torch pulls gigabytes of CUDA wheels
TIMEOUT="$(command -v timeout)"

route_init() {
  ROUTE="$1"
  OWN_TMP=""
  if [ $# -ge 2 ] && [ -n "$2" ]; then WORK="$(mkdir -p "$2" && cd "$2" && pwd)"; else WORK="$(mktemp -d)"; OWN_TMP=1; fi
  trap 'if [ -n "$OWN_TMP" ]; then rm -rf "$WORK"; fi' EXIT
  T0=$SECONDS
  # Nothing from the caller leaks in: no venv, user site, pip cache or config dirs; no CI, headless or browser hints
  # (a student's kernel has none of them).
  unset VIRTUAL_ENV PYTHONPATH PYTHONHOME CONDA_PREFIX JUPYTER_PATH CI GITHUB_ACTIONS R3LAB_HEADLESS R3LAB_WIDGETS
  unset R3LAB_TEST PYTEST_CURRENT_TEST TQDM_DISABLE R3LAB_REPO R3LAB_HOME
  unset PYTHONDONTWRITEBYTECODE  # each kernel would compile torch and transformers anew (a pip install --no-compile)
  export PYTHONNOUSERSITE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
  export JUPYTER_DATA_DIR="$WORK/jupyter-data" JUPYTER_CONFIG_DIR="$WORK/jupyter-config"
  export JUPYTER_RUNTIME_DIR="$WORK/jupyter-runtime" IPYTHONDIR="$WORK/ipython" MPLCONFIGDIR="$WORK/mpl"
  export XDG_CACHE_HOME="$WORK/cache" HF_HOME="$WORK/hf"
  export R3LAB_CHROMIUM="$WORK/no-browser" BROWSER_PATH="$WORK/no-browser"
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  # An index that cannot be reached must fail over at once, not after pip's retries with back-off on every package.
  export PIP_RETRIES="${PIP_RETRIES:-1}" PIP_DEFAULT_TIMEOUT="${ROUTE_PIP_TIMEOUT:-15}"
  mkdir -p "$WORK/bin"
  ln -sf "$(command -v git)" "$WORK/bin/git"  # the only tool the lessons' kernels get besides their venv
  step "work folder $WORK"
}

step() { echo "[route $ROUTE] $(( SECONDS - T0 ))s: $*"; }

# pip's two warnings per package on this machine (the unreachable CPU-torch index, local index folders without that
# package) are dropped; every other line and pip's exit status are kept.
quiet_pip() { "$@" 2>&1 | sed -e '/Retrying (Retry(total=0.*NewConnectionError/d' \
  -e '/is ignored: it is neither a file nor a directory/d'; return "${PIPESTATUS[0]}"; }

fresh_venv() {
  rm -rf "$2"
  "$1" -m venv "$2"
}

run_lessons() {
  local kernel="$1" nbdir="$2" papermill="${3:-papermill}" out="$WORK/lessons" passed=0 total=0 t name rc
  mkdir -p "$out"
  for nb in "$nbdir"/[0-9][0-9]_*.ipynb; do
    name="$(basename "$nb" .ipynb)"
    if [ -n "${ROUTE_LESSONS:-}" ] && [[ " $ROUTE_LESSONS " != *" ${name:0:2} "* ]]; then continue; fi
    total=$((total + 1))
    mkdir -p "$out/$name"
    t=$SECONDS
    rc=0
    PATH="$(dirname "$papermill"):$WORK/bin" "$TIMEOUT" "${ROUTE_LESSON_TIMEOUT:-900}" "$papermill" "$nb" \
      "$out/$name/$name.ipynb" -k "$kernel" -p smoke True --cwd "$out/$name" --execution-timeout 600 \
      --no-progress-bar >"$out/$name/papermill.log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
      passed=$((passed + 1)); step "$name passed in $(( SECONDS - t )) s"
    else
      step "$name FAILED ($rc) in $(( SECONDS - t )) s; the end of its log:"; tail -n 25 "$out/$name/papermill.log"
    fi
  done
  LESSONS_PASSED=$passed LESSONS_TOTAL=$total
  step "$passed/$total lessons passed (papermill, smoke mode, kernel $kernel)"
  [ "$passed" = "$total" ] && [ "$total" -gt 0 ]
}
