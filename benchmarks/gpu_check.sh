#!/usr/bin/env bash
# One command that verifies a GPU (no network, no weights; <= 8 minutes on one H200): the engine's exactness and
# speed on both decode paths (eager; static cache with each decode step replayed as a CUDA graph), rollouts, SFT
# and R-GRPO steps (full and LoRA) with peak memory and the rollout-trainer mismatch, attention capture vs eager,
# r3-tiny's 150-question evaluation, and nccl when two GPUs are present, at the real shapes of Qwen2.5-VL-3B,
# Qwen3-VL-2B and SmolVLM-256M. Writes benchmarks/results/gpu.json (`--out FILE` elsewhere). Without CUDA it stops
# at once; `--smoke`: the same checks at r3-tiny sizes on a CPU, in about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE="${TQDM_DISABLE:-1}"
export PYTHONUNBUFFERED=1
exec "${PYTHON:-$(command -v python3 || command -v python)}" benchmarks/gpu_check.py "$@"
