#!/usr/bin/env bash
# The Colab route, rebuilt from the repository alone: a fresh venv holding what a Colab runtime brings (Python,
# torch, ipykernel, git) and nothing of r3lab; every lesson opened as the badge opens it (a copy of the last commit)
# and run top to bottom through plain papermill in smoke mode. The first lesson's set-up cell clones the repository
# and installs r3lab[course] into the kernel without a restart (R3LAB_REPO points it here instead of GitHub); the
# others find it installed.
#   bash routes/colab.sh [WORKDIR]    (ROUTE_PAPERMILL: the papermill that drives the kernel, default .venv's)
source "$(dirname "$0")/common.sh"
route_init colab "${1:-}"
PAPERMILL="${ROUTE_PAPERMILL:-$REPO/.venv/bin/papermill}"
[ -x "$PAPERMILL" ] || { echo "no papermill at $PAPERMILL to drive the kernel: make setup, or set ROUTE_PAPERMILL" >&2; exit 2; }
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  step "note: the route clones the last commit; uncommitted changes are not in it"
fi

step "fresh venv ($ROUTE_PYTHON) with what Colab brings: $ROUTE_TORCH, ipykernel"
fresh_venv "$ROUTE_PYTHON" "$WORK/venv"
quiet_pip "$WORK/venv/bin/pip" install --quiet --no-compile "$ROUTE_TORCH" ipykernel
"$WORK/venv/bin/python" -m ipykernel install --user --name colab-route --display-name "Colab route" >/dev/null
if (cd "$WORK" && "$WORK/venv/bin/python" -c "import r3lab" 2>/dev/null); then
  echo "r3lab imports before the set-up cell ran" >&2; exit 1
fi

step "the lessons as the badge opens them (the last commit)"
git clone --quiet "file://$REPO" "$WORK/github"
export R3LAB_REPO="file://$REPO" R3LAB_HOME="$WORK/content/r3lab"
run_lessons colab-route "$WORK/github/notebooks" "$PAPERMILL" || rc=$?
(cd "$WORK" && "$WORK/venv/bin/python" -c "import r3lab, captum, trl
print('[route colab] installed by the set-up cell: r3lab from', r3lab.__file__)")
step "done: the Colab route ${LESSONS_PASSED}/${LESSONS_TOTAL}"
exit "${rc:-0}"
