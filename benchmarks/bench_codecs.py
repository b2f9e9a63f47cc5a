"""Codec benchmark on the default model: payload bytes vs accuracy per split, coding efficiency
against the static model's cross-entropy, coding speed against the head and tail, and the image
baselines at k = 0.

    python benchmarks/bench_codecs.py [--model SPEC | --alpha 1.0] [--input-size 64]
        [--ks features.0,features.1,features.3,features.6,features.10,features.13,features.16,features.18]
        [--calib 1000] [--val 1000] [--out FILE]

--ks takes split point names or fx split indices (``split-opt splits --model SPEC`` lists both);
the default is MobileNetV2's older block k = 1, 2, 4, 7, 11, 14, 17, 19 by module name (rows give
the fx k and the name). Heads and tails are the model's torch.fx halves in PyTorch; inputs go
through the model's own preprocessing, the decoded images at k = 0 too. Codecs are fitted on the
calib split and scored on the val split (nothing is fitted on val). Payload size is len() of the
payload (header included). Times are per image, batch 1, one thread, median over the val images;
compare them as ratios (encode / head, decode / tail).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimizer.codecs import FeatureCodec, make_codec
from optimizer.data import Preprocessing, make_splits, open_dataset
from optimizer.imaging import model_input
from optimizer.models import SplitGraph, load_spec_model, split_graph

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common.py beside this file
from _common import add_model_args, model_spec, split_ks

DEFAULT_SPLITS = "features.0,features.1,features.3,features.6,features.10,features.13,features.16,features.18"
GRID = [(2, 4), (4, 4), (8, 2), (8, 4), (8, 6), (16, 4), (32, 4), (None, 8)]
IMAGE_GRID = [("jpeg", q) for q in (10, 30, 50, 75, 95)] + [("webp", q) for q in (10, 30, 50, 75, 95)] + [("png", 0)]


def per_image_ms(fn: Any, xs: list[Any], repeats: int = 1) -> float:
    times = []
    for x in xs:
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        times.append((time.perf_counter() - t0) * 1e3 / repeats)
    return statistics.median(times)


@torch.no_grad()
def top1(tail: torch.nn.Module, acts: np.ndarray, labels: np.ndarray) -> float:
    logits = torch.cat([tail(torch.from_numpy(acts[i : i + 250])) for i in range(0, len(acts), 250)])
    return float((logits.argmax(1).numpy() == labels).mean())


def bench_split(
    graph: SplitGraph, k: int, x_cal: torch.Tensor, x_val: torch.Tensor, labels: np.ndarray, timing_n: int
) -> list[dict[str, Any]]:
    head, tail = graph.head(k), graph.tail(k)
    split = graph.names()[k]
    with torch.no_grad():
        a_cal, a_val = head(x_cal).numpy(), head(x_val).numpy()
        head_ms = per_image_ms(lambda x: head(x), [x_val[i : i + 1] for i in range(timing_n)], 3)
        tail_ms = per_image_ms(lambda a: tail(a), [torch.from_numpy(a_val[i : i + 1]) for i in range(timing_n)], 3)
    shape = a_val.shape[1:]
    rows = [
        {
            "k": k,
            "split": split,
            "codec": "float32 (none)",
            "payload_bytes_mean": 4 * int(np.prod(shape)),
            "val_accuracy": top1(tail, a_val, labels),
            "head_ms": head_ms,
            "tail_ms": tail_ms,
        }
    ]
    for components, bits in GRID:
        if components is not None and components > shape[0]:
            continue
        decoded = None
        for coder in ("huffman", "ans"):
            codec = make_codec(
                {"kind": "pca", "geometry": "channel", "components": components, "bits": bits, "coder": coder}, shape
            )
            assert isinstance(codec, FeatureCodec)
            codec.fit(a_cal)
            payloads = [codec.encode(a) for a in a_val]
            if decoded is None:
                decoded = np.stack([codec.decode(p) for p in payloads])
                accuracy = top1(tail, decoded, labels)
            body = [len(codec.unwrap(p)) for p in payloads]
            ce_bytes = [codec.coder.cross_entropy_bits(codec.symbols(a)) / 8 for a in a_val[:200]]  # type: ignore[union-attr]
            n_symbols = codec.symbols(a_val[0]).size
            rows.append(
                {
                    "k": k,
                    "split": split,
                    "codec": f"pca c={components} b={bits} {coder}",
                    "components": components,
                    "bits": bits,
                    "coder": coder,
                    "payload_bytes_mean": float(np.mean([len(p) for p in payloads])),
                    "payload_bytes_p95": float(np.percentile([len(p) for p in payloads], 95)),
                    "header_bytes": len(payloads[0]) - body[0],
                    "body_bytes_mean_200": float(np.mean(body[:200])),
                    "cross_entropy_bytes_mean_200": float(np.mean(ce_bytes)),
                    "huffman_bound_bytes_mean_200": float(np.mean(ce_bytes)) + n_symbols / 8,
                    "symbols_per_image": n_symbols,
                    "clipped_fraction_mean_200": float(np.mean([codec.clipped_fraction(a) for a in a_val[:200]])),
                    "val_accuracy": accuracy,
                    "encode_ms": per_image_ms(codec.encode, list(a_val[:timing_n])),
                    "decode_ms": per_image_ms(codec.decode, payloads[:timing_n]),
                    "head_ms": head_ms,
                    "tail_ms": tail_ms,
                }
            )
    return rows


@torch.no_grad()
def bench_images(
    model: torch.nn.Module, prep: Preprocessing, dataset: Any, idx: np.ndarray, size: int
) -> list[dict[str, Any]]:
    rows = []
    for fmt, quality in IMAGE_GRID:
        codec = make_codec({"kind": "image", "format": fmt, "quality": quality or 75}, ()).fit()
        natives = [dataset.native(int(i)) for i in idx]
        payloads = [codec.encode(img) for img in natives]
        x = torch.from_numpy(model_input([codec.decode(p) for p in payloads], size, prep))
        pred = torch.cat([model(x[i : i + 250]) for i in range(0, len(x), 250)]).argmax(1).numpy()
        rows.append(
            {
                "k": 0,
                "codec": f"{fmt}" + (f" q={quality}" if fmt != "png" else ""),
                "payload_bytes_mean": float(np.mean([len(p) for p in payloads])),
                "val_accuracy": float((pred == dataset.labels[idx]).mean()),
                "encode_ms": per_image_ms(codec.encode, natives[:100]),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--weights", default=None, help="weight spec (default: the zoo's model of the spec)")
    parser.add_argument("--ks", default=DEFAULT_SPLITS, help="split point names or fx split indices")
    parser.add_argument("--calib", type=int, default=1000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--timing-images", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    spec = model_spec(parser, args)
    ks = split_ks(parser, spec, args.ks)
    torch.set_num_threads(1)
    dataset = open_dataset("fashion-mnist")
    splits = make_splits(dataset)
    cal_idx, val_idx = splits.calib[: args.calib], splits.val[: args.val]
    built = load_spec_model(spec, args.weights)
    model, prep = built.at_size(args.input_size), built.preprocessing
    graph = split_graph(spec, model)
    x_cal, x_val = dataset.batch(cal_idx, args.input_size, prep), dataset.batch(val_idx, args.input_size, prep)
    labels = dataset.labels[val_idx]
    rows = bench_images(model, prep, dataset, val_idx, args.input_size)
    for row in rows:
        print(f"k= 0 {row['codec']:28s} {row['payload_bytes_mean']:9.1f} B  acc {row['val_accuracy']:.4f}", flush=True)
    for k in ks:
        for row in bench_split(graph, k, x_cal, x_val, labels, args.timing_images):
            rows.append(row)
            extra = ""
            if "coder" in row:
                extra = (
                    f" body {row['body_bytes_mean_200']:8.1f} vs CE {row['cross_entropy_bytes_mean_200']:8.1f}"
                    f" hdr {row['header_bytes']:2d}  enc {row['encode_ms']:.3f} ms / head {row['head_ms']:.3f}"
                    f"  dec {row['decode_ms']:.3f} / tail {row['tail_ms']:.3f}"
                )
            print(
                f"k={k:2d} {row['split']:<20} {row['codec']:28s} {row['payload_bytes_mean']:9.1f} B"
                f"  acc {row['val_accuracy']:.4f}{extra}",
                flush=True,
            )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "model": spec,
                    "weights": built.weights,
                    "input_size": args.input_size,
                    "calib": len(cal_idx),
                    "val": len(val_idx),
                    "threads": 1,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
