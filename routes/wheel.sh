#!/usr/bin/env bash
# The pip route, rebuilt from the repository alone: a non-editable wheel built from the working tree's files (tracked
# and untracked, not ignored), installed with its course (`pip install r3lab-*.whl[course]`) into a fresh venv
# outside the clone; `r3lab notebooks where --copy` takes the lessons out of the installed wheel, and each runs
# through that venv's own papermill in smoke mode, from a folder that is not the clone.
#   bash routes/wheel.sh [WORKDIR]
source "$(dirname "$0")/common.sh"
route_init wheel "${1:-}"

step "the repository's files (git ls-files) copied, a wheel built from them"
mkdir -p "$WORK/src"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
   [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$WORK/src")
fresh_venv "$ROUTE_PYTHON" "$WORK/build"
quiet_pip "$WORK/build/bin/pip" wheel --quiet --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL="$(ls "$WORK"/dist/r3lab-*.whl)"
step "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"

step "fresh venv ($ROUTE_PYTHON): $ROUTE_TORCH, then pip install $(basename "$WHEEL")[course]"
fresh_venv "$ROUTE_PYTHON" "$WORK/venv"
quiet_pip "$WORK/venv/bin/pip" install --quiet --no-compile "$ROUTE_TORCH"
quiet_pip "$WORK/venv/bin/pip" install --quiet --no-compile "$WHEEL[course]"
"$WORK/venv/bin/pip" check
"$WORK/venv/bin/python" -m ipykernel install --sys-prefix --name r3lab --display-name "r3lab (Python 3)" >/dev/null

mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
"$WORK/venv/bin/python" - <<'PY'
import r3lab, r3lab.core.env as env
assert "site-packages" in r3lab.__file__, r3lab.__file__  # the installed wheel, not a clone
assert (env.ASSETS / "checkpoints" / "r3-tiny-sft" / "model.safetensors").is_file(), env.ASSETS
print("[route wheel] r3lab from", r3lab.__file__, "| course data:", env.NOTEBOOKS.parent)
PY
"$WORK/venv/bin/r3lab" notebooks where
"$WORK/venv/bin/r3lab" notebooks where --copy "$WORK/elsewhere/course"
run_lessons r3lab "$WORK/elsewhere/course" "$WORK/venv/bin/papermill" || rc=$?
step "done: the wheel route ${LESSONS_PASSED}/${LESSONS_TOTAL}"
exit "${rc:-0}"
