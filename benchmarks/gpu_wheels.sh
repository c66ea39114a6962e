#!/usr/bin/env bash
# The wheels gpu_check.sh installs on a machine whose Python lacks them, fetched here into .whl/ (git-ignored): for
# CPython 3.12 on x86-64 Linux, what the lent H200's Python lacks (read in its package list: transformers 5.17 there,
# r3lab needs >= 5.20; transformers 5.24 needs regex >= 2025.10.22). Then a device run carries `.whl`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3 || command -v python)}"
mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "transformers==5.24.0" "regex>=2025.10.22"
ls -la .whl
