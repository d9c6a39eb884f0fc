#!/usr/bin/env bash
# One device check for a lent H100/H200 (JAX + PyTorch there, no TensorFlow, no network).
# Here, from the repo root, first:   bash ../shared/tools/device-prep.sh   (-> .whl/ and .devdata/)
# Then call the device tool with carry [".whl", ".devdata"], timeout_s ~480, and the command:
#   bash bench/gpu_check.sh
# Results come back in $OUT/gpu_check.jsonl (and the log in $OUT/gpu_check.log).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu_check.log"
timeout 420 python3 bench/gpu_bench.py --zip=.devdata/cifar10-train-jpg.zip --batches=256,1024,2048 --steps=10 \
  --epochs=3 --precision=mixed_bfloat16 --json_out="$OUT/gpu_check.jsonl" 2>&1 | tee -a "$OUT/gpu_check.log"
