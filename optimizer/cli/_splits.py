"""``split-opt splits``: every split point k of a model at an input size.

``--model SPEC`` lists the split points torch.fx finds in any registered model (``--alpha A`` is
short for the bundled zoo's family at that width). A search space's ``cuts: blocks`` takes the
points marked ``block`` here; ``cuts: [NAME, ...]`` takes points by node or module name.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from optimizer.cli._common import add_format, emit_json, fail, positive_int, table
from optimizer.models import adapter_for, legacy_model_spec, list_adapters, parse_model_spec

__all__ = ["add_splits_parser"]


def add_splits_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "splits",
        help="describe every split point k of a model",
        description="List the split points torch.fx finds in a model at an input size (a cut wherever one "
        "tensor is live, so never inside a residual block): k, the node whose output crosses the network, "
        "the module it leaves, its shape, the downsampling so far and the multiply-adds of the head. k = 0 "
        "sends the image, the last k only the class id; `block` marks the block boundaries a search "
        "space's `cuts: blocks` takes.",
    )
    families = ", ".join(a.family for a in list_adapters() if a.family != "python")
    p.add_argument("--model", metavar="SPEC", help=f"a model spec: {families} or python:package.module:factory")
    p.add_argument("--alpha", type=float, default=None, help="short for the bundled zoo's family at width ALPHA")
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--num-classes", type=positive_int, default=10)
    add_format(p)
    p.set_defaults(func=_splits)


def _splits(args: argparse.Namespace) -> int:
    if (args.model is None) == (args.alpha is None):
        raise fail("give a model: --model SPEC (see `split-opt zoo list` for the zoo's specs), or --alpha A")
    spec = parse_model_spec(args.model if args.model is not None else legacy_model_spec(args.alpha))
    adapter = adapter_for(spec)
    size = adapter.check_input_size(args.input_size)
    graph = adapter.split_graph(spec, adapter.build(spec, args.num_classes))
    points, blocks = graph.points(size), set(graph.block_ks())
    if args.format == "json":
        splits = [{**asdict(p), "block": p.k in blocks} for p in points]
        emit_json(
            {
                "model": str(spec),
                "input_size": size,
                "num_classes": args.num_classes,
                "total_macs": points[-1].cum_macs,
                "splits": splits,
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
            "block" if p.k in blocks else "",
        ]
        for p in points
    ]
    print(f"{spec} at {size}x{size}, {args.num_classes} classes: {len(points)} split points, {len(blocks)} at blocks")
    print(table(rows, ["k", "name", "module", "shape", "reduction", "cum MMACs", ""]))
    return 0
