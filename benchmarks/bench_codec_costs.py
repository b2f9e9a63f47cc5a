"""Codec cost model: predicted vs measured device-side encode time per payload.

    python benchmarks/bench_codec_costs.py [--device profiles/host.yaml] [--val 40] [--out FILE]

The device profile (calibrated on this machine by `split-opt calibrate --parts coding`, which times
the coders on synthetic symbols and images) prices each codec's countable work (codec.device_work:
symbols entropy-coded and their columns, pixels image-encoded, float16 values, the wire header).
The benchmark times what a deployed device runs after head.onnx, on real data none of which was used
in calibration: ``codec.wrap(codec.encode_symbols(symbols))`` of the symbols of the default model's
activations (MobileNetV2 1.0, 64 px; codecs fitted on calib, timed on val images) for PCA with ANS,
Huffman and raw packing at several splits and settings; float16 of activations; JPEG / WebP / PNG of
Fashion-MNIST images resized to several sizes; and the shipped learned bottlenecks (the encoder in
ONNX Runtime, one thread, then rounding and ANS, priced with the encoder's convolution MACs). The
projection and quantization run inside head.onnx and are priced by the compute model, whose accuracy
benchmarks/bench_latency_model.py measures. Median over the val images. Target: >= 90 % within +-20 %.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from optimizer.codecs import ImageCodec, Work
from optimizer.config import DeviceProfile, load_device_profile, load_search_space
from optimizer.models import OnnxRunner, build_head
from optimizer.search import Config, build_evaluator
from optimizer.system import coding_ms, device_work_ms

ROOT = Path(__file__).resolve().parents[1]
PCA_KS = (1, 4, 7, 11, 14, 17)
PCA_GRID = [("channel", 4, 4, "ans"), ("channel", 16, 6, "ans"), ("channel", 8, 4, "huffman")]
PCA_GRID += [("tile", 16, 4, "ans"), ("channel", 32, 2, "huffman"), ("channel", 8, 8, "raw")]
IMAGE_SIDES = (28, 56, 112, 224)
IMAGE_GRID = [("jpeg", 50), ("jpeg", 90), ("webp", 50), ("png", 100)]


def median_ms(fn: Any, inputs: list[Any], rounds: int = 3) -> float:
    """The lowest of ``rounds`` medians over the inputs (a load spike on this shared machine then
    spoils one round, not the figure)."""
    fn(inputs[0])  # warm-up
    medians = []
    for _ in range(rounds):
        times = []
        for x in inputs:
            start = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - start) * 1e3)
        medians.append(statistics.median(times))
    return min(medians)


def row(name: str, predicted: float, measured: float, **extra: Any) -> dict[str, Any]:
    return {
        "config": name,
        "predicted_ms": predicted,
        "measured_ms": measured,
        "error": predicted / measured - 1,
        **extra,
    }


def pca_rows(evaluator: Any, device: DeviceProfile, n: int) -> list[dict[str, Any]]:
    out = []
    for k, (geometry, components, bits, coder) in itertools.product(PCA_KS, PCA_GRID):
        params = {"kind": "pca", "geometry": geometry, "tile": 2 if geometry == "tile" else 1}
        params |= {"components": components, "bits": bits, "coder": coder}
        acts = evaluator.activations(1.0, 64, k, "val")[:n]
        params["components"] = min(components, acts.shape[1] * (4 if geometry == "tile" else 1))
        codec = evaluator.codec(Config.make(1.0, 64, k, params))
        predicted = coding_ms(codec.device_work(acts.shape[1:]), device.coding)
        symbols = [codec.symbols(a) for a in acts]  # what head.onnx outputs on the device
        measured = median_ms(lambda s, c=codec: c.wrap(c.encode_symbols(s)), symbols)
        out.append(row(f"k={k} pca {geometry} c{params['components']} b{bits} {coder}", predicted, measured, k=k))
    for k in (4, 11, 17):
        acts = evaluator.activations(1.0, 64, k, "val")[:n]
        codec = evaluator.codec(Config.make(1.0, 64, k, {"kind": "float16"}))
        predicted = coding_ms(codec.device_work(acts.shape[1:]), device.coding)
        out.append(row(f"k={k} float16", predicted, median_ms(codec.encode, list(acts)), k=k))
    return out


def image_rows(evaluator: Any, device: DeviceProfile, n: int) -> list[dict[str, Any]]:
    natives = [evaluator.dataset.native(int(i)) for i in evaluator.indices("val")[:n]]
    out = []
    for side, (fmt, quality) in itertools.product(IMAGE_SIDES, IMAGE_GRID):
        images = [np.asarray(Image.fromarray(x).resize((side, side), Image.Resampling.BILINEAR)) for x in natives]
        codec = ImageCodec({"kind": "image", "format": fmt, "quality": quality})
        predicted = coding_ms(codec.device_work(images[0].shape), device.coding)
        out.append(row(f"k=0 {fmt} q{quality} {side}px", predicted, median_ms(codec.encode, images), k=0))
    return out


def bottleneck_rows(evaluator: Any, device: DeviceProfile, n: int, files: list[Path]) -> list[dict[str, Any]]:
    """Measured: head.onnx with the encoder folded in minus the head alone (as deployed), plus
    rounding and ANS; predicted: the encoder's convolutions at the compute rates, plus coding."""
    out = []
    for path in files:
        card = json.loads(path.with_suffix(".json").read_text())
        params = {"kind": "bottleneck", "file": str(path), "weights_sha256": card["weights_sha256"]}
        params["beta"] = card["beta"]
        config = Config.make(card["alpha"], card["input_size"], card["k"], params)
        bn = evaluator.bottlenecks.get(config.alpha, config.input_size, config.k, params)
        codec = evaluator.codec(config)
        x = evaluator.inputs(config.input_size, "val")[:n]
        head = build_head(evaluator.model(config.alpha, config.input_size), config.k)
        alone = OnnxRunner(head, tuple(x.shape[1:]), threads=1)
        folded = OnnxRunner(torch.nn.Sequential(head, bn.module.encoder), tuple(x.shape[1:]), threads=1)
        images = [x[i : i + 1].numpy() for i in range(len(x))]
        encoder_ms = median_ms(folded, images) - median_ms(alone, images)
        latents = [np.round(folded(image)[0]) for image in images]
        coding = median_ms(lambda z, c=codec: c.wrap(c.encode_symbols(c.symbols(z))), latents)
        work = codec.device_work(codec.shape) + Work({"conv": int(card["encoder_macs"])}, 2, calls=0)
        predicted = device_work_ms(work, device.compute, device.coding)
        name = f"k={card['k']} bottleneck beta {card['beta']:g}"
        out.append(row(name, predicted, encoder_ms + coding, k=card["k"], encoder_ms=encoder_ms, coding_ms=coding))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=Path, default=ROOT / "profiles" / "host.yaml")
    parser.add_argument("--val", type=int, default=40, help="val images timed per configuration")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = load_device_profile(args.device)
    space = load_search_space(ROOT / "search_spaces" / "mobilenetv2-fashion-mnist.yaml")
    evaluator = build_evaluator(space, None, None)
    files = sorted((ROOT / "bottlenecks").glob("bottleneck_1_64_k*_b0.00[13].pt"))
    rows = pca_rows(evaluator, device, args.val) + image_rows(evaluator, device, args.val)
    rows += bottleneck_rows(evaluator, device, args.val, files)
    within = [abs(r["error"]) <= 0.20 for r in rows]
    for r in rows:
        times = f"predicted {r['predicted_ms']:8.4f} ms  measured {r['measured_ms']:8.4f} ms"
        print(f"{r['config']:<40} {times}  {r['error']:+.1%}")
    summary = {
        "device": str(args.device),
        "configurations": len(rows),
        "within_20_percent": sum(within) / len(rows),
        "median_abs_error": float(np.median([abs(r["error"]) for r in rows])),
        "rows": rows,
    }
    share, median = summary["within_20_percent"], summary["median_abs_error"]
    print(f"{len(rows)} configurations: {share:.1%} within +-20 %, median |error| {median:.1%}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
