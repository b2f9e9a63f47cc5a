"""Wire format 2 against format 1: the header bytes each Pareto entry of a study's pareto.json saves.

Format 1's header was magic (2) + version (1) + codec id (1) + state hash (4) + ndim (1) + the shape
as varints + the body length as a varint; format 2's is the tag byte + the body length as a varint
(``optimizer.codecs.header_bytes``). Both depend only on the shape the codec encodes and the body
length, so each entry is re-headed exactly from its recorded mean payload: the body is the recorded
payload minus its header (the varint of the mean body stands for every sample's; it differs only
for bodies within a byte or two of 128), and the class id's body is 2 bytes in format 1 and 1 in
format 2 (up to 256 classes). Studies written by split-opt < 0.3.0 recorded format-1 payloads;
later ones (model specs) record format 2, and their format-1 size is worked out the other way.
Shapes: the activation at the entry's split point (the model spec's torch.fx split points, built
untrained; an entry from before model specs names MobileNetV2 by alpha and the split by its block
k, mapped as search.legacy_params maps them), the bottleneck's latent from its card, the dataset's
native image (28 x 28 grey for Fashion-MNIST), the logits (num_classes).

    python benchmarks/bench_wire_header.py benchmarks/results/main-job-pareto-2026-12-01.json \
        benchmarks/results/bottleneck-search-pareto-2026-11-22-s3.json \
        --out benchmarks/results/wire-header-2026-12-01.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from optimizer.codecs import header_bytes
from optimizer.models import build_model, split_graph
from optimizer.search import legacy_params

ROOT = Path(__file__).resolve().parents[1]
NATIVE = {"fashion-mnist": (28, 28)}
FORMAT_2_SINCE = (0, 3, 0)  # the split-opt version whose studies record format-2 payloads
_V1_FIXED = 9  # magic, version, codec id, 4 bytes of state hash, ndim


def _varint_len(value: int) -> int:
    return max(1, -(-value.bit_length() // 7))


def v1_header(shape: tuple[int, ...], body: int) -> int:
    return _V1_FIXED + sum(_varint_len(d) for d in shape) + _varint_len(body)


def _activation_shape(params: dict[str, Any], classes: int) -> tuple[int, ...]:
    place = legacy_params({key: params[key] for key in ("alpha", "model", "input_size", "k") if key in params})
    graph = split_graph(place["model"], build_model(place["model"], classes))
    return tuple(int(d) for d in graph.points(int(place["input_size"]), macs=False)[int(place["k"])].shape)


def _card(file: str) -> Path:
    """A bottleneck's card; a study from another checkout names its file there (then bottlenecks/ here)."""
    path = Path(file).with_suffix(".json")
    return path if path.is_file() else ROOT / "bottlenecks" / path.name


def entry_shape(params: dict[str, Any], classes: int, dataset: str) -> tuple[int, ...]:
    kind = params["codec"]
    if kind == "class-id":
        return (classes,)
    if kind == "image":
        return NATIVE[dataset]
    if kind == "bottleneck":
        card = json.loads(_card(params["file"]).read_text())
        return tuple(card["latent_shape"])
    return _activation_shape(params, classes)


def recorded_format(doc: dict[str, Any]) -> int:
    """The wire format of a pareto.json's payloads, from the split-opt version that wrote it."""
    version = tuple(int(part) for part in str(doc.get("versions", {}).get("split-opt", "0.1.0")).split(".")[:3])
    return 2 if version >= FORMAT_2_SINCE else 1


def rehead(entry: dict[str, Any], classes: int, dataset: str, recorded: int = 1) -> dict[str, Any]:
    params = entry["params"]
    shape = entry_shape(params, classes, dataset)
    class_id = params["codec"] == "class-id"
    if recorded == 1:
        v1 = float(entry["payload_bytes_mean"])
        body = round(v1) - 11  # a first guess; settle the body length's own varint
        for _ in range(3):
            body = round(v1 - v1_header(shape, body))
        header1 = v1_header(shape, body)
        body2 = (1 if classes <= 256 else 2) if class_id else body
        v2 = v1 - header1 - body + body2 + header_bytes(body2)
    else:
        v2 = float(entry["payload_bytes_mean"])
        body2 = round(v2) - 2
        for _ in range(3):
            body2 = round(v2 - header_bytes(body2))
        body = 2 if class_id else body2
        header1 = v1_header(shape, body)
        v1 = v2 - header_bytes(body2) - body2 + body + header1
    return {
        "params": params,
        "shape": list(shape),
        "v1_payload_bytes_mean": v1,
        "v1_header_bytes": header1,
        "v2_payload_bytes_mean": round(v2, 3),
        "v2_header_bytes": header_bytes(body2),
        "saved_bytes": round(v1 - v2, 3),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in sorted({r["params"]["codec"] for r in rows}):
        mine = [r for r in rows if r["params"]["codec"] == kind]
        out[kind] = {
            "entries": len(mine),
            "v1_mean_payload_bytes": round(statistics.mean(r["v1_payload_bytes_mean"] for r in mine), 3),
            "v2_mean_payload_bytes": round(statistics.mean(r["v2_payload_bytes_mean"] for r in mine), 3),
            "mean_saved_bytes": round(statistics.mean(r["saved_bytes"] for r in mine), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pareto", type=Path, nargs="+", help="pareto.json files written by `split-opt search`")
    parser.add_argument("--dataset", default="fashion-mnist", choices=sorted(NATIVE))
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict[str, Any] = {"studies": {}}
    for path in args.pareto:
        doc = json.loads(path.read_text())
        classes = int(doc.get("num_classes", 10))
        recorded = recorded_format(doc)
        rows = [rehead(e, classes, args.dataset, recorded) for e in doc["pareto"]]
        result["studies"][path.name] = {"recorded_format": recorded, "summary": summary(rows), "entries": rows}
        for kind, row in summary(rows).items():
            print(f"{path.name} {kind}: {row}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
