#!/usr/bin/env bash
# One device check for a lent H100/H200 (JAX + PyTorch there, no TensorFlow, no network).
# Here, from the repo root, first:   bash ../shared/tools/device-prep.sh   (-> .whl/ and .devdata/)
# Then call the device tool with carry [".whl", ".devdata"], timeout_s ~570, and the command:
#   bash bench/gpu_check.sh
# It trains gin/cifar10.gin for its 30 epochs under JAX (bench/gpu_bench.py), then the variants below, then
# times the seed model; everything is cut at 500 s. tlbkit itself travels as a wheel in .whl/ (pip wheel
# --no-deps -w .whl .), so the shipped configs are found by name as from any install. Results: $OUT/gpu_check.jsonl (log: $OUT/gpu_check.log).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; python3 -c 'import jax; print(jax.__version__, jax.devices())'; } 2>&1 | tee "$OUT/gpu_check.log"
# Variants, in order of interest (the 500 s cut ends the list where it falls): twice the batch; the CPU
# recipe's settings (cifar10_cpu.gin: no dropout, unrolled chunk loop, the ~21 epochs its budget holds) and
# the same at twice the peak learning rate; a wider model.
timeout ${GPU_CHECK_S:-500} python3 bench/gpu_bench.py --zip=.devdata/cifar10-train-jpg.zip --precision=mixed_bfloat16 \
  --variant='batch256:train.batch_size=256;train.learning_rate=2e-3' \
  --variant='cpu21:DROPOUT=0.0;encoders.tlb.unroll=True;train.epochs=21' \
  --variant='cpu21_lr3e-3:DROPOUT=0.0;encoders.tlb.unroll=True;train.epochs=21;train.learning_rate=3e-3' \
  --variant='dim128:DIM=128;FFN_RATIO=4;tokenizers.conv_stem.filters=[64];train.batch_size=256;train.learning_rate=2e-3' \
  --batches=256,1024 --json_out="$OUT/gpu_check.jsonl" 2>&1 | tee -a "$OUT/gpu_check.log"
