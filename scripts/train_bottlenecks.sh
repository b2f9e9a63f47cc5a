#!/usr/bin/env bash
# Trains the learned bottlenecks of benchmarks/bench_bottleneck.py and of
# search_spaces/mobilenetv2-fashion-mnist-bottleneck.yaml: the default model (mobilenetv2:alpha=1.0,
# input 64) at features.10 and features.6 (the block boundaries k = 11 and 7 of the older numbering),
# four values of beta each, with the trainer's defaults (4 epochs over the whole train split,
# cross-entropy weight 2), one after the other. The repository ships the results in bottlenecks/
# under the older names (bottleneck_1_64_k7_b0.001...); this re-creates them under today's names
# (bottleneck_mobilenetv2-alpha-1.0_64_add_2_b0.001...), about 5-10 minutes each on 2 cores.
# ENTROPY=hyperprior trains the mean-scale hyperprior variants instead (names end in _hyperprior; the
# repository ships those of beta 3e-4, 1e-3 and 3e-3, trained with THREADS=1, 8-22 minutes each).
# Resumable: run it again after an interruption; finished bottlenecks (their card exists) are skipped.
#   PYTHON=/path/to/python THREADS=2 OUT=bottlenecks ENTROPY=factorized scripts/train_bottlenecks.sh [split ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-2}
OUT=${OUT:-bottlenecks}
ENTROPY=${ENTROPY:-factorized}
suffix=""; [ "$ENTROPY" = factorized ] || suffix="_$ENTROPY"
MODEL=mobilenetv2:alpha=1.0
splits=${*:-"features.10 features.6"}
for split in $splits; do
  node=$($PYTHON -c "from optimizer.models import split_graph as g; s = g('$MODEL'); print(s.names()[s.select(['$split'])[0]])")
  for beta in 1e-4 3e-4 1e-3 3e-3; do
    card="$OUT/bottleneck_mobilenetv2-alpha-1.0_64_${node}_b$($PYTHON -c "print(f'{float(\"$beta\"):g}')")$suffix.json"
    [ -f "$card" ] && continue
    $PYTHON -m optimizer bottleneck train --model "$MODEL" --input-size 64 --split "$split" --beta "$beta" \
      --epochs 4 --ce-weight 2 --threads "$THREADS" --entropy "$ENTROPY" --out "$OUT"
  done
done
