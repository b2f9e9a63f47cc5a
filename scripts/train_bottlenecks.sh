#!/usr/bin/env bash
# Trains the learned bottlenecks of benchmarks/bench_bottleneck.py and of
# search_spaces/mobilenetv2-fashion-mnist-bottleneck.yaml: the default model (alpha 1.0, input 64)
# at k = 11 and k = 7, four values of beta each, with the trainer's defaults (4 epochs over the
# whole train split, cross-entropy weight 2), one after the other. The repository ships the results
# in bottlenecks/; this re-creates them (about 5-10 minutes each on 2 cores).
# Resumable: run it again after an interruption; finished bottlenecks (their card exists) are skipped.
#   PYTHON=/path/to/python THREADS=2 OUT=bottlenecks scripts/train_bottlenecks.sh [k ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-2}
OUT=${OUT:-bottlenecks}
ks=${*:-"11 7"}
for k in $ks; do
  for beta in 1e-4 3e-4 1e-3 3e-3; do
    card="$OUT/bottleneck_1_64_k${k}_b$($PYTHON -c "print(f'{float(\"$beta\"):g}')").json"
    [ -f "$card" ] && continue
    $PYTHON -m optimizer bottleneck train --alpha 1.0 --input-size 64 --split "$k" --beta "$beta" \
      --epochs 4 --ce-weight 2 --threads "$THREADS" --out "$OUT"
  done
done
