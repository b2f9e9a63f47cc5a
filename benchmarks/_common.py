"""What several benchmarks take on their command line: a model by its spec and split points by name.

- ``--model SPEC`` names the model (docs/models.md); ``--alpha A`` stays as the shorthand it is in
  the CLI, ``--model mobilenetv2:alpha=A`` (optimizer.models.legacy_model_spec).
- Split points are given as the model's fx split point names (a node name such as ``add_3``, or a
  module whose output it is, such as ``features.6``; ``input``, ``logits``) or as fx split indices k
  (``split-opt splits --model SPEC`` lists both). MobileNetV2's older block k = i + 1 is the module
  name ``features.i`` (docs/models.md has the table).
"""

from __future__ import annotations

import argparse

from optimizer.errors import UserError
from optimizer.models import legacy_model_spec, parse_model_spec, split_graph

DEFAULT_MODEL = "mobilenetv2:alpha=1.0"


def add_model_args(parser: argparse.ArgumentParser, default: str = DEFAULT_MODEL, note: str = "") -> None:
    """``--model SPEC`` and ``--alpha A``; ``note`` starts their help (e.g. ``with --load: ``)."""
    parser.add_argument("--model", metavar="SPEC", default=None, help=f"{note}the model spec (default: {default})")
    parser.add_argument("--alpha", type=float, default=None, help=f"{note}short for --model mobilenetv2:alpha=ALPHA")


def model_spec(parser: argparse.ArgumentParser, args: argparse.Namespace, default: str = DEFAULT_MODEL) -> str:
    """The canonical model spec of ``--model`` / ``--alpha`` (argparse's error if both or neither parse)."""
    if args.model is not None and args.alpha is not None:
        parser.error("give --model or --alpha, not both (--alpha A is short for --model mobilenetv2:alpha=A)")
    text = legacy_model_spec(args.alpha) if args.alpha is not None else args.model or default
    try:
        return str(parse_model_spec(text))
    except UserError as exc:
        parser.error(str(exc))


def split_ks(parser: argparse.ArgumentParser, spec: str, text: str) -> list[int]:
    """Comma-separated split points (names or fx indices) -> fx split indices, in the order given."""
    graph = split_graph(spec)
    ks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            k = int(item) if item.isdigit() else graph.select([item])[0]
        except UserError as exc:
            parser.error(str(exc))
        if not 0 <= k < len(graph):
            parser.error(f"split k must be in 0..{len(graph) - 1} for {spec}, got {k}")
        ks.append(k)
    if not ks:
        parser.error(f"no split points in {text!r}")
    return ks
