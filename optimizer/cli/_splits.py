"""``split-opt splits``: every split point k of a model at an input size.

``--model SPEC`` lists the split points torch.fx finds in any registered model; ``--alpha A`` (the
default form) lists the block boundaries of the zoo's family at that width, the numbering the search
and profile commands use today.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from optimizer.cli._common import add_format, emit_json, fail, positive_int, table
from optimizer.models import (
    FAMILY,
    adapter_for,
    build_model,
    check_input_size,
    list_adapters,
    parse_model_spec,
    specs_from_family,
    split_points,
)

__all__ = ["add_splits_parser"]


def add_splits_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "splits",
        help="describe every split point k of a model",
        description="List the split points of a model at an input size: k, the node whose output "
        "crosses the network, the module it leaves, its shape, the downsampling so far and the "
        "multiply-adds of the head. k=0 sends the image, the last k only the class id. "
        "With --model, the points torch.fx finds (a cut wherever one tensor is live); without it, "
        f"the block boundaries of {FAMILY}:alpha=A (k = 0..20).",
    )
    families = ", ".join(a.family for a in list_adapters() if not a.params and a.family != "python")
    p.add_argument(
        "--model",
        metavar="SPEC",
        help=f"a model spec: {families}, {FAMILY}:alpha=A or python:package.module:factory",
    )
    p.add_argument("--alpha", type=float, default=None, help=f"{FAMILY}'s block boundaries (default 1.0)")
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--num-classes", type=positive_int, default=10)
    add_format(p)
    p.set_defaults(func=_splits)


def _splits(args: argparse.Namespace) -> int:
    if args.model is not None:
        if args.alpha is not None:
            raise fail(f"give --model or --alpha, not both (--model {FAMILY}:alpha=A is the fx form)")
        return _graph_splits(args)
    alpha = 1.0 if args.alpha is None else args.alpha
    size = check_input_size(args.input_size)
    points = split_points(build_model(specs_from_family(FAMILY, [alpha])[0], args.num_classes), size)
    if args.format == "json":
        emit_json(
            {"alpha": alpha, "input_size": size, "num_classes": args.num_classes, "splits": [asdict(p) for p in points]}
        )
        return 0
    rows = [
        [str(p.k), p.name, p.module, "x".join(map(str, p.shape)), str(p.elements), str(p.reduction or "-")]
        for p in points
    ]
    print(table(rows, ["k", "name", "module", "shape", "elements", "reduction"]))
    return 0


def _graph_splits(args: argparse.Namespace) -> int:
    spec = parse_model_spec(args.model)
    adapter = adapter_for(spec)
    size = adapter.check_input_size(args.input_size)
    model = adapter.build(spec, args.num_classes)
    points = adapter.split_graph(spec, model).points(size)
    if args.format == "json":
        emit_json(
            {
                "model": str(spec),
                "input_size": size,
                "num_classes": args.num_classes,
                "total_macs": points[-1].cum_macs,
                "splits": [asdict(p) for p in points],
            }
        )
        return 0
    rows = [
        [
            str(p.k),
            p.name,
            p.module or "-",
            "x".join(map(str, p.shape)),
            str(p.reduction or "-"),
            f"{p.cum_macs / 1e6:.2f}",
        ]
        for p in points
    ]
    print(f"{spec} at {size}x{size}, {args.num_classes} classes: {len(points)} split points")
    print(table(rows, ["k", "name", "module", "shape", "reduction", "cum MMACs"]))
    return 0
