"""``split-opt profile`` and ``split-opt calibrate``: the split table of a model on a device."""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from optimizer.cli._common import add_format, emit_json, positive_int, table
from optimizer.config import load_device_profile
from optimizer.errors import UserError
from optimizer.models import build_mobilenetv2, check_input_size, load_model
from optimizer.profiler import (
    CONVENTION,
    RUNTIMES,
    ModelProfile,
    calibrate_profile,
    measure_blocks,
    profile_model,
)

__all__ = ["add_profile_parsers"]


def add_profile_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="per-split MACs, memory, latency and energy on a device",
        description="One row per split k (0..n+1): output shape, activation bytes, "
        "the layer's and the head's MACs, head weights, peak activation "
        "memory, predicted head latency and energy on the device, time to "
        "send the raw activation, and whether the head fits in memory. " + CONVENTION,
    )
    p.add_argument("--device", type=Path, required=True, help="a device profile, e.g. profiles/pi4.yaml")
    p.add_argument("--alpha", type=float, default=1.0, help="width multiplier (default: %(default)s)")
    p.add_argument("--input-size", type=int, default=64, help="square input size (default: %(default)s)")
    p.add_argument(
        "--num-classes",
        type=positive_int,
        default=None,
        help="classes of the classifier (default: from --weights, else 10)",
    )
    p.add_argument("--weights", default=None, help="zoo:NAME, torchvision or file:PATH (sets --num-classes)")
    p.add_argument(
        "--measure",
        action="store_true",
        help="also time each block on this machine and add measured cumulative latency",
    )
    p.add_argument("--threads", type=positive_int, default=1, help="threads for --measure (default: 1)")
    p.add_argument("--repeats", type=positive_int, default=15, help="timed repeats for --measure")
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="onnxruntime",
        help="what runs the blocks: ONNX Runtime, as a deployed head does (default), or PyTorch eager",
    )
    add_format(p, ("table", "json", "csv"))
    p.set_defaults(func=_profile)

    p = sub.add_parser(
        "calibrate",
        help="fit a device profile's throughputs from measurements here",
        description="Time every block of a few models on this machine, fit the "
        "profile's per-class throughputs and per-layer overhead (non-"
        "negative least squares), time the codecs' coding steps (ANS, Huffman, raw packing, float16, "
        "JPEG/WebP/PNG) and fit their costs, and write the calibrated profile. Run "
        "it on the device the profile describes.",
    )
    p.add_argument("--device", type=Path, required=True, help="the profile to start from")
    p.add_argument("--out", type=Path, required=True, help="where to write the calibrated profile")
    p.add_argument("--name", default=None, help="name of the written profile (default: keep)")
    p.add_argument(
        "--models",
        default="1.0:224,0.35:96",
        help="comma-separated ALPHA:SIZE models to measure (default: %(default)s)",
    )
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--repeats", type=positive_int, default=15)
    p.add_argument(
        "--parts",
        default="compute,coding",
        help="what to measure and replace: compute (the network's blocks), coding (the codecs' steps), or both "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--server-here",
        action="store_true",
        help="the profile's server is this machine too: also write the server's coding (decoder) costs",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="onnxruntime",
        help="what runs the blocks: ONNX Runtime, as a deployed head does (default), or PyTorch eager",
    )
    add_format(p)
    p.set_defaults(func=_calibrate)


def _num_classes(args: argparse.Namespace) -> int:
    if args.weights:
        loaded = load_model(args.alpha, args.weights)
        if args.num_classes and args.num_classes != loaded.num_classes:
            raise UserError(
                f"--num-classes {args.num_classes} disagrees with --weights {args.weights}, "
                f"which has {loaded.num_classes} classes; drop --num-classes"
            )
        return loaded.num_classes
    return args.num_classes or 10


def _measured_cumulative(args: argparse.Namespace, num_classes: int) -> list[float]:
    model = build_mobilenetv2(args.alpha, num_classes)
    timings = measure_blocks(model, args.input_size, args.threads, repeats=args.repeats, runtime=args.runtime)
    cumulative, total = [0.0], 0.0
    for t in timings:
        total += t.median_ms
        cumulative.append(total)
    return cumulative


def _rows(result: ModelProfile, measured: list[float] | None) -> list[dict[str, Any]]:
    rows = []
    for split in result.splits:
        row = asdict(split)
        row["shape"] = list(split.shape)
        if measured is not None:
            row["measured_latency_ms"] = measured[split.k]
        rows.append(row)
    return rows


def _profile(args: argparse.Namespace) -> int:
    device = load_device_profile(args.device)
    check_input_size(args.input_size)
    num_classes = _num_classes(args)
    result = profile_model(device, args.alpha, args.input_size, num_classes)
    measured = _measured_cumulative(args, num_classes) if args.measure else None
    rows = _rows(result, measured)
    if args.format == "json":
        doc = result.to_json()
        doc["splits"] = rows
        if measured is not None:
            doc["measurement"] = {
                "runtime": args.runtime,
                "threads": args.threads,
                "repeats": args.repeats,
                "statistic": "median per block",
            }
        emit_json(doc)
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "shape": "x".join(map(str, r["shape"]))} for r in rows)
    else:
        _print_table(result, rows, measured is not None)
    return 0


def _print_table(result: ModelProfile, rows: list[dict[str, Any]], measured: bool) -> None:
    print(
        f"{result.family} alpha={result.alpha:g} input={result.input_size} classes={result.num_classes} "
        f"on {result.device}: {result.total_macs / 1e6:.2f} M MACs in total"
    )
    header = [
        "k",
        "name",
        "shape",
        "act KB",
        "MACs M",
        "cum MACs M",
        "weights KB",
        "peak KB",
        "latency ms",
        "energy mJ",
        "send ms",
        "fits",
    ] + (["measured ms"] if measured else [])
    body = [
        [
            str(r["k"]),
            r["name"],
            "x".join(map(str, r["shape"])),
            f"{r['activation_bytes_fp32'] / 1024:.1f}",
            f"{r['macs'] / 1e6:.2f}",
            f"{r['cum_macs'] / 1e6:.2f}",
            f"{r['head_weight_bytes'] / 1024:.0f}",
            f"{r['peak_activation_bytes'] / 1024:.0f}",
            f"{r['latency_ms']:.2f}",
            f"{r['energy_mj']:.3f}",
            f"{r['send_ms_fp32']:.2f}",
            "yes" if r["fits_memory"] else "NO",
        ]
        + ([f"{r['measured_latency_ms']:.2f}"] if measured else [])
        for r in rows
    ]
    print(table(body, header))
    print(CONVENTION)


def _parse_models(text: str) -> list[tuple[float, int]]:
    models = []
    for item in text.split(","):
        alpha, _, size = item.partition(":")
        try:
            models.append((float(alpha), check_input_size(int(size))))
        except ValueError:
            raise UserError(f"--models expects ALPHA:SIZE pairs like 1.0:224,0.35:96, got {item!r}") from None
    if not models:
        raise UserError("--models needs at least one ALPHA:SIZE pair")
    return models


def _calibrate(args: argparse.Namespace) -> int:
    models = _parse_models(args.models)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if not parts or set(parts) - {"compute", "coding"}:
        raise UserError(f"--parts takes compute, coding or both, comma-separated; got {args.parts!r}")
    load_device_profile(args.device)
    with tqdm(total=1, desc=f"measuring {' and '.join(parts)} here", disable=args.format == "json") as bar:
        profile, fit, coding = calibrate_profile(
            args.device, args.out, models, args.threads, args.name, args.repeats, args.runtime, args.server_here, parts
        )
        bar.update(1)
    compute = {k: v["value"] for k, v in asdict(profile.compute).items()}
    summary: dict[str, Any] = {"out": str(args.out), "parts": parts, "compute": compute}
    lines = [f"wrote {args.out}"]
    if fit is not None:
        summary |= {"samples": fit.samples, "rms_residual_ms": fit.residual_ms, "fitted": fit.values}
        lines.append(f"compute fitted on {fit.samples} blocks, rms residual {fit.residual_ms:.3f} ms")
        lines += [f"  {key}: {value:.4g}" for key, value in compute.items()]
    if coding is not None:
        summary |= {"coding": coding.values, "coding_rms_relative_error": coding.rms_relative_error}
        lines.append(f"coding fitted on {coding.samples} timings, rms relative error {coding.rms_relative_error:.1%}")
        lines += [f"  {key}: {value:.4g}" for key, value in coding.values.items()]
    if args.format == "json":
        emit_json(summary)
    else:
        print("\n".join(lines))
    return 0
