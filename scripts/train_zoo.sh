#!/usr/bin/env bash
# Trains the embedded default zoo (the six bundled Fashion-MNIST models) into the package data,
# as it was trained for the shipped weights (each model card records its exact command).
# Resumable: run it again after an interruption and each model continues from its checkpoint.
#   alpha 1.0: 4 epochs (zoo/phase1), then 3 more epochs from those weights at a lower peak lr;
#   alpha 0.35: 5 epochs (zoo/phase1), then 4 more the same way; 0.5: 4 epochs; 0.75: 3 epochs.
# The second phases were added when the first fell short of the accuracy floors at input size 64
# (0.90 for alpha 1.0, 0.88 for 0.35); each card keeps the card of its first phase.
# ResNet-18 at half width and MobileNetV3-small: 10 epochs each, after the MobileNetV2s of their queue.
# Three queues run side by side with one thread each.
set -euo pipefail
cd "$(dirname "$0")/.."
train() { OMP_NUM_THREADS=1 .venv/bin/split-opt zoo train --dataset fashion-mnist --input-sizes 32,48,64,96 "$@"; }
out=optimizer/models/zoo_weights
queue_a() {
  [ -f zoo/phase1/mobilenetv2_1.0_fashion-mnist.pt ] || train --alpha 1.0 --epochs 4 --seed 0 --out zoo/phase1
  train --alpha 1.0 --epochs 3 --lr 1e-3 --seed 1 --init file:zoo/phase1/mobilenetv2_1.0_fashion-mnist.pt --out "$out"
  train --model resnet18:width=0.5 --epochs 10 --out "$out"
}
queue_b() {
  [ -f zoo/phase1/mobilenetv2_0.35_fashion-mnist.pt ] || train --alpha 0.35 --epochs 5 --seed 0 --out zoo/phase1
  train --alpha 0.35 --epochs 4 --lr 1e-3 --seed 1 --init file:zoo/phase1/mobilenetv2_0.35_fashion-mnist.pt --out "$out"
  train --alpha 0.5 --epochs 4 --seed 0 --out "$out"
  train --model mobilenet_v3_small --epochs 10 --out "$out"
}
mkdir -p logs
queue_a > logs/train_queue_a.log 2>&1 &
queue_b > logs/train_queue_b.log 2>&1 &
train --alpha 0.75 --epochs 3 --seed 0 --out "$out" > logs/train_queue_c.log 2>&1 &
wait
