#!/usr/bin/env bash
# One command that verifies a GPU (no network, no weights; sections and what each checks: benchmarks/gpu_check.py).
#   bash benchmarks/gpu_check.sh --sections first --out "$OUT/gpu.json"   # the first-run section: about 4 minutes
#   bash benchmarks/gpu_check.sh --out "$OUT/gpu.json"                    # every section until --budget: <= 8 minutes
#   bash benchmarks/gpu_check.sh --smoke                                  # the same code on a CPU, r3-tiny sizes
# Wheels: where the machine's Python lacks what r3lab needs (the lent H200's has transformers 5.17; r3lab needs
# >= 5.20), the wheels in .whl/ are installed first into a folder of their own, put first on PYTHONPATH (nothing
# else on the machine changes; about 15 s; skipped where transformers is new enough). `bash benchmarks/gpu_wheels.sh` fetches them on a machine with pip's
# index; a device run carries `.whl`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3 || command -v python)}"
new_enough() {  # this Python's transformers is one r3lab runs on
  "$PY" -c 'import sys, transformers; from packaging.version import Version as V
sys.exit(V(transformers.__version__) < V("5.20"))' 2>/dev/null
}
if compgen -G ".whl/*.whl" > /dev/null && ! new_enough; then
  SITE="${R3LAB_WHEELS_SITE:-/tmp/r3lab-site}"
  t0=$SECONDS
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "[gpu_check] installed $(ls .whl/*.whl | wc -l) wheel(s) from .whl into $SITE in $((SECONDS - t0)) s"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE="${TQDM_DISABLE:-1}"
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py "$@"
