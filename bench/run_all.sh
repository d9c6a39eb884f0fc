#!/usr/bin/env bash
# Runs every CPU benchmark behind docs/performance.md and keeps their output in docs/bench/.
# Run it on a quiet machine (nothing else using the cores): about 45 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=2
PY=${PY:-.venv/bin/python}
mkdir -p docs/bench
$PY bench/throughput.py --batch=256 --steps=3 --infer_steps=3 --repeats=2 --rounds=5 \
  --variants=reference_rnn --variants=tlbkit --variants=tlbkit_autodiff --variants=tlbkit_serial \
  --json_out=docs/bench/throughput.json | tee docs/bench/throughput.txt
$PY bench/matmul_floor.py --batch=256 --xla_training --repeats=5 | tee docs/bench/matmul_floor.txt
# The CIFAR-10 recipes as shipped (their pipelines alone, then model + pipeline): need TLBKIT_DATA_DIR, the
# folder holding cifar10-train-jpg.zip.
$PY bench/pipeline.py --gin_file=cifar10_keras_io_cpu.gin --batch=128 --batches=100 | tee docs/bench/pipeline.txt
$PY bench/pipeline.py --gin_file=cifar10_cpu.gin --batch=128 --batches=100 | tee -a docs/bench/pipeline.txt
$PY bench/pipeline.py --gin_file=cifar10_cpu.gin --batch=128 --batches=40 \
  --gin_param="datasets.image_folder.augment = 'strong'" | tee -a docs/bench/pipeline.txt
$PY bench/recipe_speed.py --recipe=tlbkit=cifar10_cpu.gin --recipe=keras_io=cifar10_keras_io_cpu.gin \
  --steps=30 --val_steps=20 --rounds=3 | tee docs/bench/recipe_speed.txt
$PY bench/recurrence.py --batch=64 --steps=5 --variant=loop --variant=loop_xla --variant=unroll | tee docs/bench/recurrence.txt
$PY bench/scaling.py --lengths=256,1024,4096,16384 --png=docs/scaling.png --json_out=docs/bench/scaling.json | tee docs/bench/scaling.txt
$PY bench/streaming.py --lengths=4096,65536,262144 --json_out=docs/bench/streaming.json | tee docs/bench/streaming.txt
