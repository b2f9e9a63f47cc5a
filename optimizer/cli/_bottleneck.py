"""``split-opt bottleneck train``: a learned bottleneck at one split, trained by distillation."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from optimizer.cli._common import add_format, emit_json, fail, positive_int
from optimizer.config import ModelChoice
from optimizer.data import DEFAULT_DATASET, make_splits, open_dataset
from optimizer.models import (
    BottleneckTrainConfig,
    LoadedBottleneck,
    legacy_model_spec,
    parse_model_spec,
    train_bottleneck,
)
from optimizer.profiler import cache_dir
from optimizer.search import Config, Evaluator, resolve_model

__all__ = ["add_bottleneck_parser"]


def add_bottleneck_parser(sub: argparse._SubParsersAction) -> None:
    bottleneck = sub.add_parser(
        "bottleneck",
        help="train a learned bottleneck codec for one split",
        description="Learned bottlenecks (Matsubara et al., arXiv 2108.11898): an encoder after the head, a "
        "decoder before the tail and a learned prior for ANS coding, trained by distillation.",
    )
    bsub = bottleneck.add_subparsers(dest="bottleneck_command", required=True, metavar="{train}")
    p = bsub.add_parser(
        "train",
        help="train one bottleneck (resumable)",
        description="Train a bottleneck at a split point of the frozen model (any model spec; `split-opt splits "
        "--model SPEC` lists the points) on the train split: loss = MSE to the "
        "activation + KL to the model's logits + cross-entropy to the labels + beta x bits. Run the same command "
        "again to resume. Writes "
        "OUT/NAME.pt (state dict) and the card OUT/NAME.json with val accuracy and payload bytes through the codec.",
    )
    p.add_argument("--model", metavar="SPEC", default=None, help="the teacher's model spec (or --alpha)")
    p.add_argument("--alpha", type=float, default=None, help="short for the bundled zoo's family at width ALPHA")
    p.add_argument("--input-size", type=positive_int, required=True)
    p.add_argument(
        "--split",
        required=True,
        help="the split point: its fx node or module name (features.6, layer2) or its index k",
    )
    p.add_argument("--beta", type=float, required=True, help="weight of the rate (bits per image) in the loss")
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument(
        "--weights", default=None, help="the teacher's weights: zoo:NAME, torchvision, file:PATH (default: the zoo's)"
    )
    p.add_argument("--out", type=Path, default=Path("bottlenecks"), help="output folder (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=4)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--latent", type=positive_int, default=16, help="latent channels L (default: %(default)s)")
    p.add_argument("--stride", type=positive_int, default=2, help="encoder stride (default: %(default)s)")
    p.add_argument(
        "--entropy",
        choices=("factorized", "hyperprior"),
        default="factorized",
        help="the latent's entropy model: a factorized prior per channel, or a mean-scale hyperprior whose side "
        "latent is coded too (default: %(default)s)",
    )
    p.add_argument("--side", type=positive_int, default=8, help="hyperprior side channels (default: %(default)s)")
    p.add_argument("--kl-weight", type=float, default=1.0, help="weight of the KL to the model's logits")
    p.add_argument(
        "--ce-weight",
        type=float,
        default=2.0,
        help="weight of the cross-entropy to the train labels (default: %(default)s; 0 = distillation only)",
    )
    p.add_argument(
        "--train-samples", type=positive_int, default=None, help="train images (default: the whole train split)"
    )
    p.add_argument("--eval-samples", type=positive_int, default=None, help="val images for the card (default: all)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument(
        "--restart", action="store_true", help="start over: ignore a checkpoint, replace a finished bottleneck"
    )
    add_format(p)
    p.set_defaults(func=_train)


def _model(args: argparse.Namespace) -> str:
    if (args.model is None) == (args.alpha is None):
        raise fail("give the teacher: --model SPEC (see `split-opt zoo list`), or --alpha A")
    return str(parse_model_spec(args.model if args.model is not None else legacy_model_spec(args.alpha)))


def _train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model = _model(args)
    dataset = open_dataset(args.dataset)
    cfg = BottleneckTrainConfig(
        model=model,
        input_size=args.input_size,
        split=args.split,
        beta=args.beta,
        weights=args.weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        latent=args.latent,
        stride=args.stride,
        kl_weight=args.kl_weight,
        entropy=args.entropy,
        side=args.side,
        ce_weight=args.ce_weight,
        train_samples=args.train_samples,
        eval_samples=args.eval_samples,
        command="split-opt " + shlex.join(sys.argv[1:]),
    )
    bars: list[tqdm] = []  # opened at the first step, so an error on the inputs prints alone

    def progress(step: int, total: int, info: dict[str, float]) -> None:
        if not bars:
            bars.append(
                tqdm(desc="bottleneck", unit="step", dynamic_ncols=True, mininterval=1.0, disable=args.format == "json")
            )
        bar = bars[0]
        bar.total, bar.n = total, step
        bar.set_postfix(
            epoch=int(info["epoch"]),
            kl=f"{info['kl']:.3f}",
            ce=f"{info['ce']:.3f}",
            bits=f"{info['bits']:.0f}",
            refresh=False,
        )
        bar.update(0)

    bn = train_bottleneck(cfg, dataset, args.out, restart=args.restart, progress=progress, cache_dir=cache_dir())
    for bar in bars:
        bar.close()
    val = {"val": args.eval_samples or len(make_splits(dataset).val), "calib": 1}
    place = resolve_model(ModelChoice(model, args.weights or "zoo", (args.input_size,), (bn.split,)))
    evaluator = Evaluator(dataset, make_splits(dataset), {model: place}, val, cache_dir=cache_dir())
    card = {**bn.card, **_coded_scores(evaluator, bn, model, place.ks[0])}
    bn.path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    if args.format == "json":
        emit_json(card)
    else:
        print(
            f"wrote {bn.path} and its card: val accuracy {card['val_accuracy_coded']:.4f} through the codec "
            f"(teacher {card['val_teacher_accuracy']:.4f}), {card['payload_bytes_mean']:.1f} bytes per payload, "
            f"trained in {card['wall_time_s']:.0f} s"
        )
    return 0


def _coded_scores(evaluator: Evaluator, bn: LoadedBottleneck, spec: str, k: int, split: str = "val") -> dict[str, Any]:
    """Accuracy and payload bytes of a trained bottleneck through its codec (the search's evaluation
    engine: ONNX Runtime head and tail, ANS payloads), for its model card."""
    params = {"kind": "bottleneck", "file": str(bn.path), "weights_sha256": bn.sha256, "beta": bn.beta}
    result = evaluator.evaluate(Config.make(spec, bn.input_size, k, params), split)
    return {
        f"{split}_accuracy_coded": round(result.accuracy, 4),
        "payload_bytes_mean": round(float(result.payload_bytes.mean()), 1),
        "payload_bytes_p95": float(np.percentile(result.payload_bytes, 95)),
        "coded_samples": len(result.correct),
    }
