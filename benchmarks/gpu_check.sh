#!/usr/bin/env bash
# The prepared GPU check (issue 20): 16-mixed and bf16-mixed AAPE fits on the demo world with the
# feature store filled on the GPU, then images/s and peak GPU memory of zero-shot, AAPE and CoCoOp
# at ViT-B/16 size, batch 256. Prints one summary table; stops after 5 minutes.
#   bash benchmarks/gpu_check.sh          # on a CUDA machine, from the repository root
#   bash benchmarks/gpu_check.sh --dry    # test size on CPU: checks the script, measures nothing
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python}"
if [[ "${1:-}" != "--dry" ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PYTHON" -m aape_lightning.cli demo build-data --root data/demo >/dev/null  # the demo world, if not there yet
fi
exec timeout 300 "$PYTHON" benchmarks/gpu_check.py "$@"
