"""Hyperprior vs factorized bottlenecks: payload bytes at iso-accuracy per split, a test-split
check, and coding time against the head's forward time.

    PYTHONPATH=. python benchmarks/bench_hyperprior.py [--bottlenecks bottlenecks,OTHER_DIR]
        [--model mobilenetv2:alpha=1.0] [--input-size 64] [--splits features.6,features.10]
        [--calib 1000] [--val 3000] [--timing 200] [--out FILE]

Every trained bottleneck in the --bottlenecks folders whose card names the model, input size and
split (its card says the entropy model) is scored by the search's evaluation engine on the same val
images: accuracy through the codec and the mean payload (len(payload), wire format 2: a 2-byte
header below 128 B of body) and the mean body.

Iso-accuracy, per split: each hyperprior point H is set against the cheapest factorized point F
whose val accuracy is at least H's less half a point (the factorized model's most favourable
reference within 0.5 point); the ratio is H's bytes over F's. The pair with the lowest ratio is
chosen on val (target <= 0.85), then both are run on every test image: accuracies, the paired
difference with its 95 % interval, and the bytes ratio on test (met: ratio <= 0.85 and the
difference >= -0.005).

Coding time: median per payload (batch 1, one thread) of the device's coding (latent symbols ->
body: the hyperprior's side nets in numpy + ANS) and the server's (body -> symbols), against the
head's forward time at that split (PyTorch, batch 1, one thread), measured in the same process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimizer.config import ModelChoice
from optimizer.data import make_splits, open_dataset
from optimizer.models import parse_model_spec, split_graph
from optimizer.search import Config, Evaluator, resolve_model, wilson

ISO = 0.005  # half a point of accuracy
TARGET = 0.85


def per_call_ms(fn: Any, xs: list[Any], repeats: int = 3) -> float:
    times = []
    for x in xs:
        fn(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        times.append((time.perf_counter() - t0) * 1e3 / repeats)
    return statistics.median(times)


def _params(card_path: Path, card: dict[str, Any]) -> dict[str, Any]:
    params = {"kind": "bottleneck", "file": str(card_path.with_suffix(".pt").resolve())}
    return {**params, "weights_sha256": card["weights_sha256"], "beta": card["beta"]}


def _point(ev: Evaluator, spec: str, size: int, k: int, card_path: Path, timing_n: int) -> dict[str, Any]:
    card = json.loads(card_path.read_text())
    config = Config.make(spec, size, k, _params(card_path, card))
    result = ev.evaluate(config, "val")
    codec = ev.codec(config)
    symbols = codec.to_symbols(ev.activations(spec, size, k, "val")[:timing_n])
    bodies = [codec.encode_symbols(s) for s in symbols]
    payload = float(result.payload_bytes.mean())
    body = float(np.mean([len(b) for b in bodies]))
    return {
        "name": card["name"],
        "entropy": card.get("entropy", "factorized"),
        "beta": card["beta"],
        "codec": config.codec_params,
        "k": k,
        "val_accuracy": round(result.accuracy, 4),
        "payload_bytes_mean": round(payload, 2),
        "body_bytes_mean_timed": round(body, 2),
        "model_bits_mean": card.get("val_prior_bits_mean"),
        "device_conv_macs": result.device_work.total_macs,
        "encode_ms": round(per_call_ms(codec.encode_symbols, symbols), 4),
        "decode_ms": round(per_call_ms(codec.decode_symbols, bodies), 4),
        "epochs": card["epochs"],
        "train_images": card.get("train_images"),
        "train_wall_s": card["wall_time_s"],
    }


def _pairs(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each hyperprior point against the cheapest factorized point within half a point below it."""
    factorized = [p for p in points if p["entropy"] == "factorized"]
    pairs = []
    for h in (p for p in points if p["entropy"] == "hyperprior"):
        within = [f for f in factorized if f["val_accuracy"] >= h["val_accuracy"] - ISO]
        if not within:
            continue
        f = min(within, key=lambda p: p["payload_bytes_mean"])
        pair = {"hyperprior": h["name"], "factorized": f["name"]}
        pair["val_accuracy"] = {"hyperprior": h["val_accuracy"], "factorized": f["val_accuracy"]}
        pair["payload_ratio"] = round(h["payload_bytes_mean"] / f["payload_bytes_mean"], 3)
        pairs.append(pair)
    return sorted(pairs, key=lambda p: p["payload_ratio"])


def _test_check(
    ev: Evaluator, spec: str, size: int, k: int, pair: dict[str, Any], points: list[dict[str, Any]]
) -> dict[str, Any]:
    by_name = {p["name"]: p for p in points}
    runs = {
        e: ev.evaluate(Config.make(spec, size, k, by_name[pair[e]]["codec"]), "test")
        for e in ("hyperprior", "factorized")
    }
    diff = runs["hyperprior"].correct.astype(float) - runs["factorized"].correct.astype(float)
    half = 1.96 * float(diff.std(ddof=1)) / len(diff) ** 0.5
    doc: dict[str, Any] = {"test_samples": len(diff)}
    for name, run in runs.items():
        doc[name] = {
            "name": pair[name],
            "test_accuracy": round(run.accuracy, 4),
            "test_accuracy_95": [round(v, 4) for v in wilson(int(run.correct.sum()), len(run.correct))],
            "payload_bytes_mean": round(float(run.payload_bytes.mean()), 2),
        }
    doc["accuracy_difference"] = round(float(diff.mean()), 4)
    doc["accuracy_difference_95"] = [round(float(diff.mean()) - half, 4), round(float(diff.mean()) + half, 4)]
    doc["payload_ratio"] = round(doc["hyperprior"]["payload_bytes_mean"] / doc["factorized"]["payload_bytes_mean"], 3)
    doc["met"] = doc["payload_ratio"] <= TARGET and doc["accuracy_difference"] >= -ISO
    return doc


def _cards(folders: list[Path], spec: str, size: int, k: int) -> list[Path]:
    """The cards of the bottlenecks trained for this model, input size and split."""
    keep = []
    for path in sorted(p for folder in folders for p in folder.glob("bottleneck_*.json")):
        card = json.loads(path.read_text())
        if str(parse_model_spec(card["model"])) != spec or card["input_size"] != size:
            continue
        if split_graph(spec).select([card["split"]]) == [k]:
            keep.append(path)
    return keep


@torch.no_grad()
def _head_ms(ev: Evaluator, spec: str, size: int, k: int, n: int) -> float:
    head = ev.graph(spec, size).head(k).eval()
    x = torch.from_numpy(ev.inputs(spec, size, "val")[:n])
    return per_call_ms(lambda i: head(x[i : i + 1]), list(range(len(x))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bottlenecks", default="bottlenecks", help="comma-separated folders of trained bottlenecks")
    parser.add_argument("--model", default="mobilenetv2:alpha=1.0")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--splits", default="features.6,features.10", help="split point names (the older k = 7, 11)")
    parser.add_argument("--calib", type=int, default=1000)
    parser.add_argument("--val", type=int, default=3000)
    parser.add_argument("--timing", type=int, default=200, help="val samples timed per point")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = open_dataset("fashion-mnist")
    cache = Path(os.environ["SPLIT_OPT_CACHE_DIR"]) if os.environ.get("SPLIT_OPT_CACHE_DIR") else None
    spec, s = str(parse_model_spec(args.model)), args.input_size
    names = tuple(args.splits.split(","))
    model = resolve_model(ModelChoice(spec, "zoo", (s,), names))
    ev = Evaluator(dataset, make_splits(dataset), {spec: model}, {"calib": args.calib, "val": args.val}, cache)
    folders = [Path(f) for f in args.bottlenecks.split(",")]
    doc: dict[str, Any] = {"model": spec, "input_size": s, "val": args.val, "threads": 1, "splits": {}}
    doc["load_average_at_start"] = os.getloadavg()[0]
    for name, k in zip(names, split_graph(spec).select(list(names)), strict=True):
        points = [_point(ev, spec, s, k, c, args.timing) for c in _cards(folders, spec, s, k)]
        head_ms = _head_ms(ev, spec, s, k, args.timing)
        for p in points:
            p["coding_ms_over_head"] = round((p["encode_ms"] + p["decode_ms"]) / head_ms, 4)
        pairs = _pairs(points)
        split: dict[str, Any] = {"split": name, "k": k, "head_ms": round(head_ms, 4), "points": points, "pairs": pairs}
        split["best"] = pairs[0] if pairs else None
        split["met_val"] = bool(pairs) and pairs[0]["payload_ratio"] <= TARGET
        split["test"] = _test_check(ev, spec, s, k, pairs[0], points) if pairs else None
        doc["splits"][name] = split
        _print_split(name, split)
    doc["load_average_at_end"] = os.getloadavg()[0]
    out = args.out or Path("benchmarks/results") / f"hyperprior-{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


def _print_split(name: str, split: dict[str, Any]) -> None:
    print(f"\n== {name} (k = {split['k']}): head forward {split['head_ms']:.3f} ms")
    print("entropy     beta      val acc  payload B   enc+dec ms  / head")
    for p in sorted(split["points"], key=lambda p: (p["entropy"], p["beta"])):
        print(
            f"  {p['entropy']:<10} {p['beta']:<8g} {p['val_accuracy']:.4f}  {p['payload_bytes_mean']:7.1f}   "
            f"{p['encode_ms']:.3f}+{p['decode_ms']:.3f}  {p['coding_ms_over_head']:.3f}"
        )
    for pair in split["pairs"]:
        ratio, val = pair["payload_ratio"], pair["val_accuracy"]
        print(f"  {pair['hyperprior']} vs {pair['factorized']}: payload x{ratio} (val {val})")
    test = split["test"]
    if test:
        h, f = test["hyperprior"], test["factorized"]
        print(
            f"test ({test['test_samples']}): hyperprior {h['test_accuracy']:.4f} at {h['payload_bytes_mean']:.1f} B, "
            f"factorized {f['test_accuracy']:.4f} at {f['payload_bytes_mean']:.1f} B; difference "
            f"{test['accuracy_difference']:+.4f} {test['accuracy_difference_95']}; payload x{test['payload_ratio']} "
            f"(met {test['met']})"
        )


if __name__ == "__main__":
    main()
