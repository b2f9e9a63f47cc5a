"""Re-measure the bundled zoo: test accuracy (with a 95 % Wilson interval) and CPU inference time.

    python benchmarks/bench_zoo.py [--samples N] [--threads T] [--out FILE]

Accuracy is top-1 on the test split (which zoo training never sees), per (model spec, input size),
for every bundled model of every family, measured as ``split-opt zoo eval`` measures it.
Time is the median of ``--repeats`` forward passes of one image and of a batch of 64, on this
machine, with ``--threads`` torch threads; compare figures as ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from optimizer.data import make_splits, open_dataset
from optimizer.models import accuracy, list_zoo, load_spec_model
from optimizer.search import wilson


@torch.no_grad()
def median_ms(model: torch.nn.Module, batch: int, size: int, repeats: int, channels: int = 3) -> float:
    x = torch.randn(batch, channels, size, size)
    model(x)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=None, help="test samples (default: the whole split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = open_dataset("fashion-mnist")
    test = make_splits(dataset).test[: args.samples]
    rows = []
    for entry in (e for e in list_zoo() if e.source == "bundled"):
        loaded = load_spec_model(entry.spec, entry.weights, entry.dataset)
        channels = loaded.preprocessing.channels
        for size in entry.input_sizes:
            model = loaded.at_size(size)
            acc = accuracy(model, dataset, test, size)
            low, high = wilson(round(acc * len(test)), len(test))
            row = {
                "model": entry.name,
                "spec": entry.spec,
                "alpha": entry.alpha,
                "input_size": size,
                "test_accuracy": round(acc, 4),
                "ci95": [round(low, 4), round(high, 4)],
                "card_accuracy": entry.accuracy.get(str(size)),
                "ms_batch1": round(median_ms(model, 1, size, args.repeats, channels), 3),
                "ms_per_image_batch64": round(median_ms(model, 64, size, max(3, args.repeats // 4), channels) / 64, 3),
            }
            rows.append(row)
            print(
                f"{entry.name:34s} size {size:3d}  acc {acc:.4f} [{low:.4f}, {high:.4f}]  "
                f"card {row['card_accuracy']}  {row['ms_batch1']:.2f} ms/img (batch 1)  "
                f"{row['ms_per_image_batch64']:.3f} ms/img (batch 64)",
                flush=True,
            )
    result = {"samples": len(test), "threads": args.threads, "torch": torch.__version__, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
