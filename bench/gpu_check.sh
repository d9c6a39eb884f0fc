#!/usr/bin/env bash
# One device check for a lent GPU: gin/cifar10.gin (the GPU recipe) trained under KERAS_BACKEND=jax in mixed
# bfloat16, on CIFAR-10's training images from the carried zip (the CPU recipe's image-folder split: the last
# 10k of a seeded shuffle validate), for a time budget of GPU_CHECK_MIN minutes (7: the cosine decays over it and
# the run ends with its metrics inside the device call). Results: $OUT/gpu_check.log, and $OUT/metrics.json +
# $OUT/history.csv.
#
# - Where TensorFlow is importable, the product itself trains: `tlbkit-train` (tf.data feeding the jitted JAX
#   step), then `tlbkit-eval` scores the run's last model again.
# - The lent H200 image has JAX and no TensorFlow (and the device carries at most 64 MiB, a TensorFlow wheel
#   is several times that), so tlbkit-train's tf.data pipeline cannot run there: the check then trains the
#   same recipe with bench/gpu_bench.py (the recipe's model, optimizer and schedule from the same .gin file,
#   Keras fit on PIL-decoded arrays, the augmentation as in-model layers) and says so in the log.
#
# On the device: here, from the repo root, first `bash ../shared/tools/device-prep.sh` (-> .whl/ with keras and
# gin for Python 3.12, .devdata/cifar10-train-jpg.zip), then call the device tool with carry [".whl", ".devdata"],
# timeout_s ~570 and the command `bash bench/gpu_check.sh`; everything is cut at GPU_CHECK_S (500 s). A call
# carries 64 MiB at most: if .devdata holds other data too, copy the zip into another ignored folder, carry that
# and set DATA_DIR to it (2026-12-04: `GPU_CHECK_S=420 DATA_DIR=.gpudata bash bench/gpu_check.sh`).
# Smoke test on a CPU (the venv's Python, a few hundred images, one short epoch, no wheel install):
#   GPU_CHECK_SMOKE=1 PYTHON=.venv/bin/python DATA_DIR=../shared/data OUT=/tmp/gpu_smoke bash bench/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SMOKE=${GPU_CHECK_SMOKE:-0}
PY=${PYTHON:-python3}
DATA_DIR=${DATA_DIR:-.devdata}
if [ "$SMOKE" = 0 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  # The checkout as installed (pyproject's package-dir): tasks/ imports as tlbkit_tasks, gin/ as tlbkit_configs.
  ln -sfn "$PWD/tasks" /tmp/site/tlbkit_tasks && ln -sfn "$PWD/gin" /tmp/site/tlbkit_configs || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
LOG="$OUT/gpu_check.log"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; nproc
  "$PY" -c 'import jax; print("jax", jax.__version__, jax.devices())'; } 2>&1 | tee "$LOG"

# The recipe on the carried image folder instead of TFDS (the same 32x32 images); smoke: tiny.
PARAMS=(--gin_param="DATASET = @datasets.image_folder()"
        --gin_param="datasets.image_folder.path = 'cifar10-train-jpg.zip'"
        --gin_param="datasets.image_folder.validation_count = 10000"
        --gin_param="train.time_budget_min = ${GPU_CHECK_MIN:-7}" --gin_param="train.epochs = 100")
if [ "$SMOKE" != 0 ]; then
  PARAMS+=(--gin_param="datasets.image_folder.max_examples = 400" --gin_param="datasets.image_folder.validation_count = 100"
           --gin_param="train.epochs = 1" --gin_param="train.steps_per_epoch = 2" --gin_param="train.batch_size = 32"
           --gin_param="DIM = 32" --gin_param="tokenizers.conv_stem.filters = [16]")
fi

if "$PY" -c 'import tensorflow' 2>/dev/null; then
  echo "TensorFlow found: tlbkit-train under JAX, mixed_bfloat16" | tee -a "$LOG"
  RUN="$OUT/run"
  timeout "${GPU_CHECK_S:-500}" "$PY" -m tlbkit.bin.train --gin_file=cifar10.gin --model_dir="$RUN" --data_dir="$DATA_DIR" \
    --precision=mixed_bfloat16 "${PARAMS[@]}" 2>&1 | tee -a "$LOG"
  status=${PIPESTATUS[0]}
  cp "$RUN/metrics.json" "$RUN/history.csv" "$OUT/" 2>/dev/null
  [ "$status" = 0 ] || { echo "tlbkit-train failed ($status)" | tee -a "$LOG"; exit "$status"; }
  "$PY" -m tlbkit.bin.evaluate --model_dir="$RUN" --data_dir="$DATA_DIR" --precision=mixed_bfloat16 2>&1 | tee -a "$LOG"
  rm -rf "$RUN"  # the checkpoints do not come back (size limits); metrics.json and history.csv do
  exit "${PIPESTATUS[0]}"
fi

echo "no TensorFlow here: tlbkit-train's tf.data pipeline cannot run; bench/gpu_bench.py trains the same recipe" \
  | tee -a "$LOG"
# Variants, in order of interest (the cut ends the list where it falls): twice the batch; the CPU recipe's
# settings (cifar10_cpu.gin: no dropout, unrolled chunk loop, the ~21 epochs its budget holds) and the same at
# twice the peak learning rate; a wider model.
VARIANTS=(--variant='batch256:train.batch_size=256;train.learning_rate=2e-3'
  --variant='cpu21:DROPOUT=0.0;encoders.tlb.unroll=True;train.epochs=21'
  --variant='cpu21_lr3e-3:DROPOUT=0.0;encoders.tlb.unroll=True;train.epochs=21;train.learning_rate=3e-3'
  --variant='dim128:DIM=128;FFN_RATIO=4;tokenizers.conv_stem.filters=[64];train.batch_size=256;train.learning_rate=2e-3'
  --batches=256,1024)
[ "$SMOKE" != 0 ] && VARIANTS=(--smoke --batches=)
timeout "${GPU_CHECK_S:-500}" "$PY" bench/gpu_bench.py --zip="$DATA_DIR/cifar10-train-jpg.zip" \
  --precision=mixed_bfloat16 "${VARIANTS[@]}" --json_out="$OUT/gpu_check.jsonl" 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
