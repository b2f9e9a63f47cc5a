"""Context-adaptive ANS (coder ``ctx``) against the factorized ANS model on the default model, and
constriction's Huffman coder against the repository's own.

    python benchmarks/bench_context_coder.py [--alpha 1.0] [--input-size 64] [--ks 1,2,3,4,5,6,7,11,17]
                                             [--calib 1000] [--val 1000] [--split val|test] [--out FILE]

For each split k and (components, bits) of the grid, both coders are fitted on the calib split
on the same PCA basis and quantizer, so they code the same symbols: the reconstruction, hence the
accuracy, is identical (checked: every val sample's symbols decode back exactly from both bodies).
Scored on the val split (``--split test``: the first --val test images instead, the test-split check;
nothing is chosen on either): mean payload bytes (header included) and mean body bytes of each coder,
their ratio, and the median time per payload (batch 1, one thread) to code a sample's symbols into
a body and back, against the head's forward time. The Huffman section times encode and decode of
val payloads with both Huffman implementations (per-component trees from the same calib counts).
The cost section times ctx on synthetic symbols at several sizes and alphabets and fits the
constants the system model prices it with (``ctx_call_ms``, ``ctx_symbols_per_s``,
``ctx_pmf_values_per_s``), separately for encoding (device) and decoding (server).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import constriction
import numpy as np
import torch

from optimizer.codecs import ContextCoder, FeatureCodec, HuffmanCoder, PrincipalBasis, make_codec
from optimizer.data import make_splits, open_dataset
from optimizer.models import build_head, build_tail, load_model
from optimizer.profiler._nnls import nnls

COST_COUNTS = (64, 256, 1024, 4096)
COST_BITS = (2, 4, 6, 8)
GRID = [(2, 4), (4, 4), (8, 2), (8, 4), (8, 6), (16, 4), (32, 4)]
HUFFMAN_CASES = [(1, 8, 4), (4, 8, 4), (7, 8, 4), (11, 16, 4)]


def per_call_ms(fn: Any, xs: list[Any], repeats: int = 3) -> float:
    times = []
    for x in xs:
        fn(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        times.append((time.perf_counter() - t0) * 1e3 / repeats)
    return statistics.median(times)


@torch.no_grad()
def top1(tail: torch.nn.Module, acts: np.ndarray, labels: np.ndarray) -> float:
    logits = torch.cat([tail(torch.from_numpy(acts[i : i + 250])) for i in range(0, len(acts), 250)])
    return float((logits.argmax(1).numpy() == labels).mean())


def fitted(
    shape: tuple[int, ...], basis: PrincipalBasis, a_cal: np.ndarray, components: int, bits: int, coder: str
) -> FeatureCodec:
    params = {"kind": "pca", "geometry": "channel", "components": components, "bits": bits, "coder": coder}
    codec = make_codec(params, shape)
    assert isinstance(codec, FeatureCodec)
    return codec.fit(a_cal, basis=basis)


def compare(codecs: dict[str, FeatureCodec], a_val: np.ndarray, timing_n: int) -> dict[str, Any]:
    """Bytes and coding time of each coder on the same val symbols; exact round trips checked."""
    symbols = [codecs["ans"].symbols(a) for a in a_val]
    row: dict[str, Any] = {}
    for name, codec in codecs.items():
        if any(not np.array_equal(codec.symbols(a), s) for a, s in zip(a_val[:50], symbols, strict=False)):
            raise AssertionError(f"{name} quantizes differently from ans")
        bodies = [codec.encode_symbols(s) for s in symbols]
        if any(not np.array_equal(codec.decode_symbols(b), s) for b, s in zip(bodies, symbols, strict=True)):
            raise AssertionError(f"{name} does not round-trip its symbols")
        header = len(codec.wrap(bodies[0])) - len(bodies[0])
        row[f"{name}_body_bytes_mean"] = float(np.mean([len(b) for b in bodies]))
        row[f"{name}_payload_bytes_mean"] = row[f"{name}_body_bytes_mean"] + header
        row[f"{name}_model_bytes_mean"] = float(np.mean([codec.coder.cross_entropy_bits(s) / 8 for s in symbols[:200]]))  # type: ignore[union-attr]
        row[f"{name}_encode_ms"] = per_call_ms(codec.encode_symbols, symbols[:timing_n])
        row[f"{name}_decode_ms"] = per_call_ms(codec.decode_symbols, bodies[:timing_n])
    row["payload_ratio"] = row["ctx_payload_bytes_mean"] / row["ans_payload_bytes_mean"]
    row["body_ratio"] = row["ctx_body_bytes_mean"] / row["ans_body_bytes_mean"]
    row["symbols_per_sample"] = int(symbols[0].size)
    return row


def bench_split(
    model: torch.nn.Module, k: int, x_cal: torch.Tensor, x_val: torch.Tensor, labels: np.ndarray, timing_n: int
) -> list[dict[str, Any]]:
    head, tail = build_head(model, k), build_tail(model, k)
    with torch.no_grad():
        a_cal, a_val = head(x_cal).numpy(), head(x_val).numpy()
        head_ms = per_call_ms(lambda x: head(x), [x_val[i : i + 1] for i in range(timing_n)])
    shape = tuple(a_val.shape[1:])
    basis = PrincipalBasis(a_cal, "channel", 1)
    rows = []
    for components, bits in GRID:
        if components > shape[0]:
            continue
        codecs = {coder: fitted(shape, basis, a_cal, components, bits, coder) for coder in ("ans", "ctx")}
        decoded = np.stack([codecs["ans"].decode(codecs["ans"].encode(a)) for a in a_val])
        row: dict[str, Any] = {"k": k, "shape": list(shape), "components": components, "bits": bits, "head_ms": head_ms}
        row.update(compare(codecs, a_val, timing_n))
        row["accuracy"] = top1(tail, decoded, labels)  # the same for both coders: same symbols
        row["ctx_coding_ms_over_head"] = (row["ctx_encode_ms"] + row["ctx_decode_ms"]) / head_ms
        row["ans_coding_ms_over_head"] = (row["ans_encode_ms"] + row["ans_decode_ms"]) / head_ms
        rows.append(row)
    return rows


class ConstrictionHuffman:
    """constriction.symbol.huffman with one tree per component from the same calib counts."""

    def __init__(self, counts: np.ndarray) -> None:
        pmf = counts / counts.sum(axis=1, keepdims=True)
        self.enc = [constriction.symbol.huffman.EncoderHuffmanTree(p) for p in pmf]
        self.dec = [constriction.symbol.huffman.DecoderHuffmanTree(p) for p in pmf]

    def encode(self, symbols: np.ndarray) -> np.ndarray:
        coder = constriction.symbol.QueueEncoder()
        trees, m = self.enc, symbols.shape[1]
        for i, s in enumerate(symbols.ravel().tolist()):
            coder.encode_symbol(s, trees[i % m])
        return coder.get_compressed_and_bitrate()[0]  # type: ignore[no-any-return]

    def decode(self, words: np.ndarray, n: int) -> np.ndarray:
        coder = constriction.symbol.QueueDecoder(words)
        trees = self.dec
        m = len(trees)
        return np.array([coder.decode_symbol(trees[i % m]) for i in range(n * m)]).reshape(n, m)


def huffman_case(ours: HuffmanCoder, symbols: list[np.ndarray]) -> dict[str, Any]:
    """Bytes and times of both Huffman coders on the same symbols; exact round trips checked."""
    theirs = ConstrictionHuffman(ours.counts)
    ours_bodies = [ours.encode(s) for s in symbols]
    their_words = [theirs.encode(s) for s in symbols]
    n = len(symbols[0])
    for s, b, w in zip(symbols, ours_bodies, their_words, strict=True):
        if not (np.array_equal(ours.decode(b, n), s) and np.array_equal(theirs.decode(w, n), s)):
            raise AssertionError("a Huffman coder does not round-trip its symbols")
    return {
        "symbols_per_sample": int(symbols[0].size),
        "ours_body_bytes_mean": float(np.mean([len(b) for b in ours_bodies])),
        "constriction_body_bytes_mean": float(np.mean([4 * len(w) for w in their_words])),
        "ours_encode_ms": per_call_ms(ours.encode, symbols),
        "constriction_encode_ms": per_call_ms(theirs.encode, symbols),
        "ours_decode_ms": per_call_ms(lambda b: ours.decode(b, n), ours_bodies),
        "constriction_decode_ms": per_call_ms(lambda w: theirs.decode(w, n), their_words),
    }


def bench_huffman(
    model: torch.nn.Module, x_cal: torch.Tensor, x_val: torch.Tensor, timing_n: int
) -> list[dict[str, Any]]:
    rows = []
    for k, components, bits in HUFFMAN_CASES:
        head = build_head(model, k)
        with torch.no_grad():
            a_cal, a_val = head(x_cal).numpy(), head(x_val[:timing_n]).numpy()
        codec = fitted(tuple(a_val.shape[1:]), PrincipalBasis(a_cal, "channel", 1), a_cal, components, bits, "huffman")
        assert isinstance(codec.coder, HuffmanCoder)
        case = huffman_case(codec.coder, [codec.symbols(a) for a in a_val])
        rows.append({"k": k, "components": components, "bits": bits, **case})
    return rows


def cost_samples(timing_n: int, seed: int = 0) -> list[dict[str, Any]]:
    """ctx encode and decode times of synthetic samples (geometric-like symbols on a 16-wide grid)
    at several symbol counts and alphabets, for fitting the system model's coding constants."""
    rng = np.random.default_rng(seed)
    rows = []
    for count in COST_COUNTS:
        for bits in COST_BITS:
            m, alphabet = 4, 1 << bits
            grid = (count // (16 * m), 16)
            calib = np.minimum(rng.geometric(0.3, (50 * count // m, m)) - 1, alphabet - 1)
            coder = ContextCoder.fit(calib, alphabet, grid=grid)
            samples = list(calib.reshape(50, -1, m)[:timing_n])
            bodies = [coder.encode(s) for s in samples]
            n = grid[0] * grid[1]
            encode_ms = per_call_ms(coder.encode, samples)
            decode_ms = per_call_ms(lambda b, c=coder, n=n: c.decode(b, n), bodies)
            rows.append({"symbols": count, "bits": bits, "encode_ms": encode_ms, "decode_ms": decode_ms})
    return rows


def fit_costs(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """ms = call + symbols / symbols_per_s + symbols * 2**bits / pmf_values_per_s (non-negative least
    squares on the relative error), for encoding (the device) and decoding (the server)."""
    features = np.array([[1.0, s["symbols"], s["symbols"] << s["bits"]] for s in samples])
    out = {}
    for side in ("encode", "decode"):
        ms = np.array([s[f"{side}_ms"] for s in samples])
        coef = nnls(features / ms[:, None], np.ones(len(ms)))[0]
        out[side] = {
            "ctx_call_ms": float(coef[0]),
            "ctx_symbols_per_s": 1e3 / coef[1] if coef[1] > 0 else float("inf"),
            "ctx_pmf_values_per_s": 1e3 / coef[2] if coef[2] > 0 else float("inf"),
            "rms_relative_error": float(np.sqrt(np.mean(np.square(features @ coef / ms - 1)))),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--weights", default=None, help="weight spec (default: the zoo model for --alpha)")
    parser.add_argument("--ks", default="1,2,3,4,5,6,7,11,17")
    parser.add_argument("--calib", type=int, default=1000)
    parser.add_argument("--val", type=int, default=1000, help="images scored (of --split)")
    parser.add_argument("--split", choices=("val", "test"), default="val", help="the split scored")
    parser.add_argument("--timing-images", type=int, default=50)
    parser.add_argument("--skip-huffman", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = open_dataset("fashion-mnist")
    splits = make_splits(dataset)
    cal_idx, val_idx = splits.calib[: args.calib], splits[args.split][: args.val]
    model = load_model(args.alpha, args.weights).at_size(args.input_size)
    x_cal, x_val = dataset.batch(cal_idx, args.input_size), dataset.batch(val_idx, args.input_size)
    labels = dataset.labels[val_idx]
    rows: list[dict[str, Any]] = []
    for k in (int(v) for v in args.ks.split(",") if v):
        for row in bench_split(model, k, x_cal, x_val, labels, args.timing_images):
            rows.append(row)
            print(
                f"k={k:2d} c={row['components']:2d} b={row['bits']} acc {row['accuracy']:.4f}"
                f"  payload ans {row['ans_payload_bytes_mean']:8.1f} ctx {row['ctx_payload_bytes_mean']:8.1f}"
                f" ({row['payload_ratio']:.3f}x, body {row['body_ratio']:.3f}x)"
                f"  enc+dec ms ans {row['ans_encode_ms']:.3f}+{row['ans_decode_ms']:.3f}"
                f" ctx {row['ctx_encode_ms']:.3f}+{row['ctx_decode_ms']:.3f} head {row['head_ms']:.3f}",
                flush=True,
            )
    huffman = [] if args.skip_huffman else bench_huffman(model, x_cal, x_val, args.timing_images)
    for h in huffman:
        print(
            f"huffman k={h['k']:2d} c={h['components']} b={h['bits']}: bytes ours {h['ours_body_bytes_mean']:.1f}"
            f" constriction {h['constriction_body_bytes_mean']:.1f}; encode ms ours {h['ours_encode_ms']:.3f}"
            f" constriction {h['constriction_encode_ms']:.3f}; decode ms ours {h['ours_decode_ms']:.3f}"
            f" constriction {h['constriction_decode_ms']:.3f}",
            flush=True,
        )
    costs = cost_samples(args.timing_images)
    cost_fit = fit_costs(costs)
    for side, values in cost_fit.items():
        print(f"ctx {side}: " + ", ".join(f"{key} {value:.4g}" for key, value in values.items()), flush=True)
    if args.out:
        meta = {"alpha": args.alpha, "input_size": args.input_size, "calib": len(cal_idx), "split": args.split}
        meta["scored"] = len(val_idx)
        args.out.write_text(
            json.dumps(
                {**meta, "threads": 1, "rows": rows, "huffman": huffman, "ctx_costs": costs, "ctx_cost_fit": cost_fit},
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
