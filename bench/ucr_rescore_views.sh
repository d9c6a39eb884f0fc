#!/usr/bin/env bash
# Rescores a finished UCR panel with test-time views added, without training again: test-time views never
# touch training (no random draw, no weight the steps use), so a run of the new recipe trains the same
# weights and differs only in how it scores. For each set: tlbkit-eval on the test split of
# <FROM>/<set> (else <FALLBACK>/<set>) with --test_time_views=VIEWS and the strength the run printed
# ('auto' chooses the same one from the same training file), written as <ROOT>/<set>/metrics.json
# (test_accuracy; wall_time_s = the run's + the rescoring's), so bench/ucr_panel.py --report_only reads it.
# Usage: bench/ucr_rescore_views.sh ROOT FROM FALLBACK DATA_DIR VIEWS SET [SET ...]   (resumable)
# EXTRA_PARAM (optional): one more gin binding, e.g. EXTRA_PARAM='views.series_noise.num_views = 16'.
set -u
root=$1 from=$2 fallback=$3 data=$4 views=$5; shift 5
for s in "$@"; do
  out=$root/$s/metrics.json
  [ -f "$out" ] && continue
  run=$from/$s; [ -f "$run/config.gin" ] || run=$fallback/$s
  strength=$(grep -o "at [0-9.e-]* of full strength" "$run/train.log" | head -1 | cut -d' ' -f2)
  start=$(date +%s.%N)
  result=$(tlbkit-eval --model_dir="$run" --split=test --data_dir="$data" --test_time_views="$views" \
           --gin_param="views.$views.strength = ${strength:-1.0}" ${EXTRA_PARAM:+"--gin_param=$EXTRA_PARAM"} \
           2>/dev/null | tail -1)
  took=$(echo "$(date +%s.%N) - $start" | bc)
  mkdir -p "$root/$s"
  python3 - "$result" "$run/metrics.json" "$took" "$strength" "$run" > "$out.tmp" <<'PY' && mv "$out.tmp" "$out"
import json, sys
scored, trained = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
wall = trained.get("wall_time_s")
print(json.dumps({"test_accuracy": scored["accuracy"], "test_cross_entropy": scored["cross_entropy"],
                  "test_examples": scored["examples"], "test_time_views": scored.get("test_time_views"),
                  "strength": float(sys.argv[4] or 1.0), "rescored_from": sys.argv[5],
                  "wall_time_s": None if wall is None else round(wall + float(sys.argv[3]), 2)}))
PY
  echo "$s $(python3 -c "import json;print(json.load(open('$out'))['test_accuracy'])")"
done
