#!/usr/bin/env bash
# One command that verifies a GPU (no network, no weights; <= 10 minutes on one H100): the engine's exactness,
# rollouts, SFT and R-GRPO steps (full and LoRA) with peak memory, attention capture vs eager, and nccl when two
# GPUs are present, at the real shapes of Qwen2.5-VL-3B, Qwen3-VL-2B and SmolVLM-256M. Writes
# benchmarks/results/gpu.json. `--smoke`: the same checks at r3-tiny sizes on a CPU, in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE="${TQDM_DISABLE:-1}"
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
