"""Hyperprior vs factorized bottlenecks: payload bytes at iso-accuracy per split, a test-split
check, and coding time against the head's forward time.

    PYTHONPATH=. python benchmarks/bench_hyperprior.py [--bottlenecks bottlenecks] [--ks 7,11]
                                         [--calib 1000] [--val 3000] [--timing 200] [--out FILE]

Every trained bottleneck in --bottlenecks (its card says the entropy model) is scored by the
search's evaluation engine on the same val images: accuracy through the codec and the mean payload
(len(payload), today's header included), the mean body (payload less the header) and the
payload under wire format 2 (body + 1 tag byte + 1 length byte, the varint for bodies < 128 B).

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

import torch

from optimizer.codecs import BottleneckCodec
from optimizer.data import make_splits, open_dataset
from optimizer.models import build_head
from optimizer.search import Config, Evaluator, wilson

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


def _point(ev: Evaluator, alpha: float, size: int, k: int, card_path: Path, timing_n: int) -> dict[str, Any]:
    card = json.loads(card_path.read_text())
    config = Config.make(alpha, size, k, _params(card_path, card))
    result = ev.evaluate(config, "val")
    codec = ev.codec(config)
    assert isinstance(codec, BottleneckCodec)
    bn = ev.bottlenecks.get(alpha, size, k, config.codec_params)
    latents = ev.bottlenecks.latents(bn, ev.activations(alpha, size, k, "val")[:timing_n])
    symbols = [codec.symbols(z) for z in latents]
    bodies = [codec.encode_symbols(s) for s in symbols]
    header = len(codec.wrap(bodies[0])) - len(bodies[0])
    payload = float(result.payload_bytes.mean())
    body = payload - header
    return {
        "name": card["name"],
        "entropy": card.get("entropy", "factorized"),
        "beta": card["beta"],
        "codec": config.codec_params,
        "k": k,
        "val_accuracy": round(result.accuracy, 4),
        "payload_bytes_mean": round(payload, 2),
        "body_bytes_mean": round(body, 2),
        "format2_bytes_mean": round(body + 2, 2),
        "header_bytes": header,
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
        for unit in ("payload", "body", "format2"):
            pair[f"{unit}_ratio"] = round(h[f"{unit}_bytes_mean"] / f[f"{unit}_bytes_mean"], 3)
        pairs.append(pair)
    return sorted(pairs, key=lambda p: p["payload_ratio"])


def _test_check(
    ev: Evaluator, alpha: float, size: int, k: int, pair: dict[str, Any], points: list[dict[str, Any]]
) -> dict[str, Any]:
    by_name = {p["name"]: p for p in points}
    runs = {
        e: ev.evaluate(Config.make(alpha, size, k, by_name[pair[e]]["codec"]), "test")
        for e in ("hyperprior", "factorized")
    }
    diff = runs["hyperprior"].correct.astype(float) - runs["factorized"].correct.astype(float)
    half = 1.96 * float(diff.std(ddof=1)) / len(diff) ** 0.5
    doc: dict[str, Any] = {"test_samples": len(diff)}
    for name, run in runs.items():
        header = by_name[pair[name]]["header_bytes"]
        payload = float(run.payload_bytes.mean())
        doc[name] = {
            "name": pair[name],
            "test_accuracy": round(run.accuracy, 4),
            "test_accuracy_95": [round(v, 4) for v in wilson(int(run.correct.sum()), len(run.correct))],
            "payload_bytes_mean": round(payload, 2),
            "format2_bytes_mean": round(payload - header + 2, 2),
        }
    doc["accuracy_difference"] = round(float(diff.mean()), 4)
    doc["accuracy_difference_95"] = [round(float(diff.mean()) - half, 4), round(float(diff.mean()) + half, 4)]
    for unit in ("payload", "format2"):
        doc[f"{unit}_ratio"] = round(
            doc["hyperprior"][f"{unit}_bytes_mean"] / doc["factorized"][f"{unit}_bytes_mean"], 3
        )
    doc["met"] = doc["payload_ratio"] <= TARGET and doc["accuracy_difference"] >= -ISO
    doc["met_format2"] = doc["format2_ratio"] <= TARGET and doc["accuracy_difference"] >= -ISO
    return doc


def _cards(folder: Path, alpha: float, size: int, k: int) -> list[Path]:
    """The cards of the bottlenecks trained for this split."""
    keep = []
    for path in sorted(folder.glob("bottleneck_*.json")):
        card = json.loads(path.read_text())
        if (card["alpha"], card["input_size"], card["k"]) == (alpha, size, k):
            keep.append(path)
    return keep


@torch.no_grad()
def _head_ms(ev: Evaluator, alpha: float, size: int, k: int, n: int) -> float:
    head = build_head(ev.model(alpha, size), k).eval()
    x = ev.inputs(size, "val")[:n]
    return per_call_ms(lambda i: head(x[i : i + 1]), list(range(len(x))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bottlenecks", type=Path, default=Path("bottlenecks"))
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--ks", default="7,11")
    parser.add_argument("--calib", type=int, default=1000)
    parser.add_argument("--val", type=int, default=3000)
    parser.add_argument("--timing", type=int, default=200, help="val samples timed per point")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = open_dataset("fashion-mnist")
    cache = Path(os.environ["SPLIT_OPT_CACHE_DIR"]) if os.environ.get("SPLIT_OPT_CACHE_DIR") else None
    ev = Evaluator(dataset, make_splits(dataset), "zoo", {"calib": args.calib, "val": args.val}, cache_dir=cache)
    a, s = args.alpha, args.input_size
    doc: dict[str, Any] = {"alpha": a, "input_size": s, "val": args.val, "threads": 1, "splits": {}}
    doc["load_average_at_start"] = os.getloadavg()[0]
    for k in (int(v) for v in args.ks.split(",")):
        cards = _cards(args.bottlenecks, a, s, k)
        points = [_point(ev, a, s, k, c, args.timing) for c in cards]
        head_ms = _head_ms(ev, a, s, k, args.timing)
        for p in points:
            p["coding_ms_over_head"] = round((p["encode_ms"] + p["decode_ms"]) / head_ms, 4)
        pairs = _pairs(points)
        split: dict[str, Any] = {"head_ms": round(head_ms, 4), "points": points, "pairs": pairs}
        split["best"] = pairs[0] if pairs else None
        split["met_val"] = bool(pairs) and pairs[0]["payload_ratio"] <= TARGET
        split["test"] = _test_check(ev, a, s, k, pairs[0], points) if pairs else None
        doc["splits"][str(k)] = split
        _print_split(k, split)
    doc["load_average_at_end"] = os.getloadavg()[0]
    out = args.out or Path("benchmarks/results") / f"hyperprior-{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


def _print_split(k: int, split: dict[str, Any]) -> None:
    print(f"\n== k = {k}: head forward {split['head_ms']:.3f} ms")
    print("entropy     beta      val acc  payload  body  fmt2 B   enc+dec ms  / head")
    for p in sorted(split["points"], key=lambda p: (p["entropy"], p["beta"])):
        print(
            f"  {p['entropy']:<10} {p['beta']:<8g} {p['val_accuracy']:.4f}  {p['payload_bytes_mean']:6.1f}  "
            f"{p['body_bytes_mean']:5.1f}  {p['format2_bytes_mean']:5.1f}   {p['encode_ms']:.3f}+{p['decode_ms']:.3f}"
            f"  {p['coding_ms_over_head']:.3f}"
        )
    for pair in split["pairs"]:
        print(
            f"  {pair['hyperprior']} vs {pair['factorized']}: payload x{pair['payload_ratio']}, body "
            f"x{pair['body_ratio']}, format 2 x{pair['format2_ratio']} (val acc {pair['val_accuracy']})"
        )
    test = split["test"]
    if test:
        h, f = test["hyperprior"], test["factorized"]
        print(
            f"test ({test['test_samples']}): hyperprior {h['test_accuracy']:.4f} at {h['payload_bytes_mean']:.1f} B, "
            f"factorized {f['test_accuracy']:.4f} at {f['payload_bytes_mean']:.1f} B; difference "
            f"{test['accuracy_difference']:+.4f} {test['accuracy_difference_95']}; payload x{test['payload_ratio']} "
            f"(met {test['met']}), format 2 x{test['format2_ratio']} (met {test['met_format2']})"
        )


if __name__ == "__main__":
    main()
