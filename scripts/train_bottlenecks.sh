#!/usr/bin/env bash
# Trains the learned bottlenecks of benchmarks/bench_bottleneck.py: the default model (alpha 1.0,
# input 64) at k = 11 and k = 7, four values of beta each, one after the other on 2 threads.
# Resumable: run it again after an interruption; finished bottlenecks (their card exists) are skipped.
#   PYTHON=/path/to/python scripts/train_bottlenecks.sh [k ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
ks=${*:-"11 7"}
for k in $ks; do
  for beta in 1e-4 3e-4 1e-3 3e-3; do
    card="bottlenecks/bottleneck_1_64_k${k}_b$($PYTHON -c "print(f'{float(\"$beta\"):g}')").json"
    [ -f "$card" ] && continue
    $PYTHON -m optimizer bottleneck train --alpha 1.0 --input-size 64 --split "$k" --beta "$beta" \
      --epochs 4 --train-samples 10000 --threads 2 --out bottlenecks
  done
done
