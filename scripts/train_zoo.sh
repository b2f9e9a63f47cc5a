#!/usr/bin/env bash
# Trains the embedded default zoo (the four bundled Fashion-MNIST models) into the package data.
# Resumable: run it again after an interruption and each model continues from its checkpoint.
# The shipped zoo: 4 epochs for alpha 1.0, 3 for the smaller models (see each model card).
set -euo pipefail
cd "$(dirname "$0")/.."
for alpha in ${ALPHAS:-1.0 0.35 0.5 0.75}; do
  default_epochs=3; [ "$alpha" = "1.0" ] && default_epochs=4
  .venv/bin/split-opt zoo train --dataset fashion-mnist --alpha "$alpha" \
    --epochs "${EPOCHS:-$default_epochs}" --input-sizes 32,48,64,96 --seed 0 \
    --out optimizer/models/zoo_weights
done
