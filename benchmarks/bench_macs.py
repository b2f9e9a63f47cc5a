"""Do split-opt's MAC counts match the published figures for torchvision's ImageNet models at 224 px?

    python benchmarks/bench_macs.py [--out FILE]

For each model (1000 classes, input 1 x 3 x 224 x 224) it counts multiply-adds three ways:

- ``profile_macs``: the profiler's cost path, the sum of the MACs of every layer of every fx
  segment (optimizer.profiler.count_spec, what ``split-opt profile --model SPEC`` and the search
  price); this is the figure checked against the target;
- ``total_macs``: fvcore on the whole model, counting convolutions, linear layers and matrix
  products (optimizer.models.count_macs: one MAC = one multiply-add);
- ``fx_head_macs``: the cumulative MACs of the last split point found by torch.fx (the head that
  runs everything), i.e. what ``split-opt splits --model SPEC`` reports.

Published figure: torchvision's own, ``torchvision.models.get_model_weights(NAME).IMAGENET1K_V1
.meta["_ops"]`` in the installed torchvision (the "GFLOPS" row of each model's page,
https://pytorch.org/vision/stable/models/generated/torchvision.models.NAME.html, and the table of
https://pytorch.org/vision/stable/models.html; set in torchvision's source, pytorch/vision
torchvision/models/resnet.py, mobilenetv3.py, efficientnet.py, regnet.py, mobilenetv2.py, field
``_ops`` of each ``Weights`` enum; torchvision counts a multiply-add as one operation there, as
fvcore does). Target: within +-2 %. ResNet-50 is
torchvision's v1.5, hence 4.09 G rather than the 3.8 G of the original paper's v1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torchvision

from optimizer.models import build_model, count_macs, split_graph
from optimizer.profiler import count_spec

TARGETS = ("resnet18", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0")
ALSO = ("resnet34", "regnet_x_400mf")  # registered families with a published figure, outside the target
MOBILENETV2 = ("mobilenetv2:alpha=1.0", "mobilenet_v2")  # (spec, torchvision builder name)
TOLERANCE = 0.02
SIZE = 224


def published_gmacs(torchvision_name: str) -> float:
    weights = torchvision.models.get_model_weights(torchvision_name).IMAGENET1K_V1
    return float(weights.meta["_ops"])


def measure(spec: str, torchvision_name: str) -> dict[str, object]:
    model = build_model(spec, num_classes=1000)
    x = torch.zeros(1, 3, SIZE, SIZE)
    t0 = time.perf_counter()
    total = count_macs(model, x)
    graph = split_graph(spec, model)
    fx_total = count_macs(graph.head(len(graph) - 1), x)
    profiled = count_spec(spec, 1000, SIZE).total_macs
    published = published_gmacs(torchvision_name) * 1e9
    error = profiled / published - 1
    return {
        "model": spec,
        "torchvision_weights": f"{torchvision_name}: IMAGENET1K_V1.meta['_ops']",
        "published_gmacs": published / 1e9,
        "profile_macs": profiled,
        "total_macs": total,
        "fx_head_macs": fx_total,
        "split_points": len(graph),
        "relative_error": round(error, 5),
        "within_target": abs(error) <= TOLERANCE,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(name, name) | {"target": True} for name in TARGETS]
    rows += [measure(name, name) | {"target": False} for name in ALSO]
    rows.append(measure(*MOBILENETV2) | {"target": False})
    for row in rows:
        print(
            f"{row['model']:<22} published {row['published_gmacs']:.3f} G  profiler {row['profile_macs'] / 1e9:.4f} G "
            f"(whole model {row['total_macs'] / 1e9:.4f} G, fx head {row['fx_head_macs'] / 1e9:.4f} G)  "
            f"error {row['relative_error']:+.2%}  "
            f"{'ok' if row['within_target'] else 'MISSED'}{'' if row['target'] else ' (not a target)'}"
        )
    targets = [r for r in rows if r["target"]]
    summary = {
        "input_size": SIZE,
        "tolerance": TOLERANCE,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "convention": "one MAC = one multiply-add; conv, linear, addmm, matmul, bmm, einsum counted by fvcore",
        "checked": "profile_macs: the profiler's per-segment layer MACs summed (optimizer.profiler.count_spec)",
        "targets_met": sum(bool(r["within_target"]) for r in targets),
        "targets": len(targets),
        "models": rows,
    }
    print(f"{summary['targets_met']}/{summary['targets']} target models within +-{TOLERANCE:.0%}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
