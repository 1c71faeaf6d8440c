#!/usr/bin/env bash
# GPU tier (docs/plan.md): on a machine with a CUDA GPU, build a venv, run `pytest -m gpu`
# (random Llama with 8B shapes: LoRA + QLoRA steps, loglik + generate, merge) and write
# bench/results/gpu_tier-*.json (peak GPU memory and tokens/s next to the `medllm plan`
# estimate); copied to $OUT when set (the device tool's result folder).
#
#   scripts/gpu-check.sh                     # full 32-layer model (~7.3 B params, ~15 GB on disk)
#   MEDLLM_GPU_LAYERS=4 scripts/gpu-check.sh # quick try
#
# Offline machines: a torch already installed system-wide (with CUDA) is reused through
# --system-site-packages; otherwise torch comes from TORCH_INDEX (PyTorch's CUDA wheels), or
# point PIP_FIND_LINKS / PIP_INDEX_URL at a local wheelhouse.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-gpu}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cu124}
export MEDLLM_QUIET=1 MEDLLM_HOME=${MEDLLM_HOME:-$PWD/.medllm-gpu}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || { echo "no NVIDIA GPU here" >&2; exit 2; }

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    python3 -m venv --system-site-packages "$VENV"     # reuse the machine's CUDA torch
else
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q torch --index-url "$TORCH_INDEX"
fi
"$VENV/bin/pip" install -q -e '.[dev]'
"$VENV/bin/pip" install -q bitsandbytes
"$VENV/bin/python" -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA'; print(torch.__version__, torch.cuda.get_device_name(0))"

mkdir -p bench/results
rc=0
MEDLLM_GPU_RESULTS=bench/results "$VENV/bin/python" -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rs || rc=$?
if [ -n "${OUT:-}" ]; then
    cp bench/results/gpu_tier-*.json "$OUT/" 2>/dev/null || echo "no gpu_tier results written" >&2
fi
ls -l bench/results/gpu_tier-*.json 2>/dev/null || true
exit $rc
