"""``split-opt splits``: every split point k of a model at an input size."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from optimizer.cli._common import add_format, emit_json, table
from optimizer.models import build_mobilenetv2, check_input_size, split_points

__all__ = ["add_splits_parser"]


def add_splits_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "splits",
        help="describe every split point k of a model",
        description="List the split points of MobileNetV2(alpha) at an input size: "
        "k, the layer whose output crosses the network, its shape and "
        "element count. k=0 sends the image, k=n+1 only the class id.",
    )
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--num-classes", type=int, default=10)
    add_format(p)
    p.set_defaults(func=_splits)


def _splits(args: argparse.Namespace) -> int:
    size = check_input_size(args.input_size)
    points = split_points(build_mobilenetv2(args.alpha, args.num_classes), size)
    if args.format == "json":
        emit_json(
            {
                "alpha": args.alpha,
                "input_size": size,
                "num_classes": args.num_classes,
                "splits": [asdict(p) for p in points],
            }
        )
        return 0
    rows = [
        [
            str(p.k),
            p.name,
            p.module,
            "x".join(map(str, p.shape)),
            str(p.elements),
            str(p.reduction) if p.reduction else "-",
        ]
        for p in points
    ]
    print(table(rows, ["k", "name", "module", "shape", "elements", "reduction"]))
    return 0
