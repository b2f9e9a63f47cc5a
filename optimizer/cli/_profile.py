"""``split-opt profile``: the split table of a model spec on a device (``calibrate`` is in _calibrate.py)."""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from optimizer.cli._common import add_format, emit_json, fail, positive_int, table
from optimizer.config import load_device_profile
from optimizer.errors import UserError
from optimizer.models import (
    FAMILY,
    adapter_for,
    build_model,
    load_spec_model,
    parse_model_spec,
    specs_from_family,
    split_graph,
)
from optimizer.profiler import (
    CONVENTION,
    RUNTIMES,
    ModelProfile,
    measure_heads,
    profile_spec,
    resolve_clock,
)

__all__ = ["add_profile_parser"]


def add_profile_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="per-split MACs, memory, latency and energy on a device",
        description="One row per split point k of the model (the points `split-opt splits --model` lists): "
        "output shape, activation bytes, the segment's and the head's MACs, head weights, peak activation "
        "memory, predicted head latency and energy on the device, time to "
        "send the raw activation, and whether the head fits in memory. " + CONVENTION,
    )
    p.add_argument("--device", type=Path, required=True, help="a device profile, e.g. profiles/pi4.yaml")
    p.add_argument("--model", metavar="SPEC", default=None, help=f"a model spec (default: {FAMILY}:alpha=1.0)")
    p.add_argument("--alpha", type=float, default=None, help=f"short for --model {FAMILY}:alpha=ALPHA")
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
        help="also time the head of every split on this machine (one graph each) and add its measured latency",
    )
    p.add_argument("--threads", type=positive_int, default=1, help="threads for --measure (default: 1)")
    p.add_argument("--repeats", type=positive_int, default=15, help="timed repeats for --measure")
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="onnxruntime",
        help="what runs the heads: ONNX Runtime, as a deployed head does (default), or PyTorch eager",
    )
    add_format(p, ("table", "json", "csv"))
    p.set_defaults(func=_profile)


def _spec(args: argparse.Namespace) -> str:
    if args.model is not None and args.alpha is not None:
        raise fail(f"give --model or --alpha, not both (--alpha A is short for --model {FAMILY}:alpha=A)")
    if args.model is not None:
        return str(parse_model_spec(args.model))
    return str(specs_from_family(FAMILY, [1.0 if args.alpha is None else args.alpha])[0])


def _num_classes(args: argparse.Namespace, spec: str) -> int:
    if args.weights:
        loaded = load_spec_model(spec, args.weights)
        if args.num_classes and args.num_classes != loaded.num_classes:
            raise UserError(
                f"--num-classes {args.num_classes} disagrees with --weights {args.weights}, "
                f"which has {loaded.num_classes} classes; drop --num-classes"
            )
        return loaded.num_classes
    return args.num_classes or 10


def _measured(args: argparse.Namespace, spec: str, num_classes: int) -> list[float]:
    """Measured latency of the head of every split, k = 0 (nothing runs) included; the weights'
    values do not change the time, so the model is built untrained."""
    graph = split_graph(spec, build_model(spec, num_classes))
    timings = measure_heads(graph, args.input_size, threads=args.threads, repeats=args.repeats, runtime=args.runtime)
    return [0.0, *(t.median_ms for t in timings)]


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
    spec = _spec(args)
    adapter_for(spec).check_input_size(args.input_size)
    num_classes = _num_classes(args, spec)
    result = profile_spec(device, spec, args.input_size, num_classes)
    measured = _measured(args, spec, num_classes) if args.measure else None
    rows = _rows(result, measured)
    if args.format == "json":
        doc = result.to_json()
        doc["splits"] = rows
        if measured is not None:
            doc["measurement"] = {
                "runtime": args.runtime,
                "threads": args.threads,
                "repeats": args.repeats,
                "statistic": "median of each split's whole head, timed as one graph",
                "clock": resolve_clock("auto", args.threads),
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
        f"{result.spec} input={result.input_size} classes={result.num_classes} "
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
