"""Serve a bundle on loopback and measure it: requests/s and p50/p99 latency, and the device half's
time per image for head + coding with onnxruntime (head.onnx) vs. PyTorch (the study's path).

    python benchmarks/bench_serve.py deploy/NAME [--requests N] [--concurrency C] [--images N] [--out FILE]

Server: ``split-opt serve`` in its own process on 127.0.0.1 (a free port); payloads are the
bundle's own, made from the first ``--images`` test images; every request must answer 200. Latency
is the client's round trip (httpx), measured once with one client and once with ``--concurrency``
clients at the same time. Device: per image, batch 1, one thread in both engines; "head" includes
the preprocessing, "coding" the codec's device transform (PyTorch path only: the projection and
quantization in numpy, a learned encoder in PyTorch; head.onnx folds it in) and the entropy
coding + wire header. Stream: the same payloads (every configuration's, for an
adaptive bundle) over one WebSocket through a counting loopback proxy (optimizer.deploy's
ShapedLink, unshaped): bytes per inference beyond the payload, up and down (target: at most 8 up).

    python benchmarks/bench_serve.py --load [--quick] [--out FILE]

Load figures (serve_load.py's lean asyncio client, one keep-alive connection per client): on a
middle PCA split bundle of the default search space's widest model (built once under
deploy/bench-serve-SPEC-SIZE-kK; --model (or --alpha), --input-size and --k change it; --k is a
split point's name or fx split index, default features.9, the older block k = 10, fx k = 17),
requests/s and p50/p99 latency
at 1, 8 and 64 concurrent clients with batching off (--max-batch 1) and on (the default); 10,000
malformed requests from 10 connections mixed with 100 concurrent good clients (errors counted
for the good ones: a non-200 answer or another class than the bundle gives locally); and the
server's RSS growth over 50,000 requests. --quick divides the request counts by 10.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from optimizer.data import make_splits, open_dataset
from optimizer.deploy import Bundle, DeviceHalf, ServerHalf, open_bundle
from optimizer.deploy._link import ShapedLink
from optimizer.deploy._stream import StreamServer
from optimizer.imaging import model_input
from optimizer.models import legacy_model_spec, load_spec_model, split_graph
from optimizer.protocol import request_headers
from optimizer.search import legacy_block_ks

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # serve_load.py and _common.py beside this file

from _common import add_model_args, model_spec, split_ks  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(bundle: Path) -> tuple[str, subprocess.Popen]:
    port = _free_port()
    command = [sys.executable, "-m", "optimizer", "serve", str(bundle), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, end = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while time.monotonic() < end and process.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url, process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"the server for {bundle} did not start (exit code {process.poll()})")


def _client_run(url: str, payloads: list[bytes], identity: str) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for payload in payloads:
            t0 = time.perf_counter()
            response = client.post("/v1/infer", content=payload, headers=request_headers(identity))
            times.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"the server answered {response.status_code}: {response.text}")
    return times


def serve_figures(url: str, payloads: list[bytes], identity: str, requests: int, clients: int) -> dict[str, Any]:
    per_client = [
        [payloads[(c + i * clients) % len(payloads)] for i in range(requests // clients)] for c in range(clients)
    ]
    _client_run(url, payloads[:20], identity)  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = [t for times in pool.map(lambda p: _client_run(url, p, identity), per_client) for t in times]
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1e3
    return {
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def stream_overhead(url: str, bundle: Bundle, payloads: list[bytes]) -> dict[str, Any]:
    """Bytes per inference beyond the payload on the stream, counted at a loopback proxy after set-up."""
    with ShapedLink(int(url.rsplit(":", 1)[1])) as link:
        client = StreamServer(link.url, bundle)
        client.send(payloads[0])  # the connection is set up (upgrade + hello)
        up0, down0 = link.counters.up, link.counters.down
        for payload in payloads:
            client.send(payload)
        up, down = link.counters.up - up0, link.counters.down - down0
        client.close()
    sent = sum(map(len, payloads))
    return {
        "inferences": len(payloads),
        "payload_bytes_mean": sent / len(payloads),
        "up_bytes_per_inference_beyond_payload": (up - sent) / len(payloads),
        "down_bytes_per_inference": down / len(payloads),
    }


def _median_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1e3, 3)


def device_onnx(bundle: Bundle, natives: list[np.ndarray]) -> dict[str, float]:
    device = DeviceHalf(bundle, threads=1)
    device.encode(natives[0])  # warm-up
    encoded = [device.encode(n) for n in natives]
    head, coding = [e.head_s for e in encoded], [e.coding_s for e in encoded]
    return {
        "head_ms": _median_ms(head),
        "coding_ms": _median_ms(coding),
        "total_ms": _median_ms([h + c for h, c in zip(head, coding, strict=True)]),
    }


@torch.no_grad()
def device_torch(bundle: Bundle, natives: list[np.ndarray]) -> dict[str, float] | None:
    """The study's path: the model's torch.fx head in PyTorch, the float16 copy the study caches (the
    logits at the last split stay float32), then the codec (its device transform and entropy model)."""
    if bundle.k == 0:
        return None  # k = 0 has no head
    info, k = bundle.manifest["model"], bundle.k
    spec = info.get("spec")
    if spec is None:  # a bundle from before model specs: MobileNetV2 by alpha, k a block boundary
        spec = legacy_model_spec(float(info["alpha"]))
        k = legacy_block_ks(spec)[k]
    weights = None if info["weights"] == "zoo" else info["weights"]
    built = load_spec_model(spec, weights, bundle.manifest["dataset"]["spec"].split(":")[0])
    graph = split_graph(spec, built.at_size(bundle.input_size))
    head, last = graph.head(k).eval(), k == len(graph) - 1
    head_times, coding_times = [], []
    for native in [natives[0], *natives]:
        t0 = time.perf_counter()
        out = head(torch.from_numpy(model_input([native], bundle.input_size, bundle.preprocessing)))[0].numpy()
        t1 = time.perf_counter()
        bundle.codec.encode(out if last else out.astype(np.float16).astype(np.float32))
        head_times.append(t1 - t0)
        coding_times.append(time.perf_counter() - t1)
    head_times, coding_times = head_times[1:], coding_times[1:]  # drop the warm-up
    total = [h + c for h, c in zip(head_times, coding_times, strict=True)]
    return {"head_ms": _median_ms(head_times), "coding_ms": _median_ms(coding_times), "total_ms": _median_ms(total)}


def load_figures(args: argparse.Namespace) -> dict[str, Any]:
    from serve_load import make_middle_pca_bundle, mixed_load, rss_growth, start_server, stop_server, throughput

    scale = 10 if args.quick else 1
    spec, k = args.spec, args.split_k
    slug = spec.replace(":", "-").replace("=", "-").replace(",", "-")
    name = f"bench-serve-{slug}-{args.input_size}-k{k}"
    path = make_middle_pca_bundle(ROOT / "deploy" / name, spec, args.input_size, k, 8, 4)
    bundle = open_bundle(path)
    dataset = open_dataset(bundle.manifest["dataset"]["spec"])
    test = make_splits(dataset, seed=int(bundle.manifest["dataset"]["split_seed"])).test[:200]
    device, server = DeviceHalf(bundle), ServerHalf(bundle)
    payloads = [device.encode(dataset.native(int(i))).payload for i in test]
    expected = [server.infer(p).class_index for p in payloads]
    result: dict[str, Any] = {"bundle": bundle.name, "k": bundle.k, "codec": bundle.manifest["codec"]}
    result["payload_bytes_mean"] = float(np.mean([len(p) for p in payloads]))
    for mode, extra in (("unbatched", ("--max-batch", "1")), ("batched", ())):
        port, process = start_server(path, "--max-concurrent", "1024", *extra)
        try:
            rows = []
            for clients in (1, 8, 64):  # the 1-minute load average says how busy the machine was besides
                rows.append({**throughput(port, payloads, bundle.identity, clients, max(clients * 20, 4000 // scale))})
                rows[-1]["load_avg_1m"] = round(os.getloadavg()[0], 2)
            for row in rows:
                print(f"{mode}, {row['clients']} client(s): {row}", flush=True)
            result[mode] = rows
            if mode == "batched":
                mixed = mixed_load(port, payloads, bundle.identity, expected, 100, 100 // scale, 10_000 // scale)
                print(f"malformed mixed with good clients: {mixed}", flush=True)
                result["malformed_mixed"] = mixed
                rss = rss_growth(port, process.pid, payloads, bundle.identity, 50_000 // scale)
                print(f"RSS over {rss['requests']} requests: {rss}", flush=True)
                result["rss"] = rss
        finally:
            stop_server(process)
    at64 = {mode: next(r for r in result[mode] if r["clients"] == 64) for mode in ("unbatched", "batched")}
    result["batched_over_unbatched_at_64"] = round(
        at64["batched"]["requests_per_s"] / at64["unbatched"]["requests_per_s"], 2
    )
    result["cpus"] = os.cpu_count()
    result["versions"] = bundle.manifest["versions"]
    print(f"batched / unbatched requests/s at 64 clients: {result['batched_over_unbatched_at_64']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, nargs="?", help="a bundle written by `split-opt export`")
    parser.add_argument("--load", action="store_true", help="the load figures instead (see above)")
    parser.add_argument("--quick", action="store_true", help="with --load: a tenth of the requests")
    add_model_args(parser, note="with --load: ")
    parser.add_argument("--input-size", type=int, default=64, help="with --load (default: %(default)s)")
    parser.add_argument(
        "--k",
        default="features.9",
        help="with --load: the split point, its name or fx split index (default: %(default)s, the middle block)",
    )
    parser.add_argument("--requests", type=int, default=1000, help="requests per serving measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at once in the second measurement")
    parser.add_argument("--images", type=int, default=200, help="test images for payloads and device timing")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.load:
        args.spec = model_spec(parser, args)
        args.split_k = split_ks(parser, args.spec, args.k)[0]
        result = load_figures(args)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return
    if args.bundle is None:
        parser.error("give a bundle, or --load")
    bundle = open_bundle(args.bundle)
    dataset = open_dataset(bundle.manifest["dataset"]["spec"])
    test = make_splits(dataset, seed=int(bundle.manifest["dataset"]["split_seed"])).test[: args.images]
    natives = [dataset.native(int(i)) for i in test]
    onnx_device, torch_device = device_onnx(bundle, natives), device_torch(bundle, natives)
    print(f"device, onnxruntime: {onnx_device}", flush=True)
    print(f"device, PyTorch:     {torch_device}", flush=True)
    payloads = [DeviceHalf(bundle).encode(n).payload for n in natives]
    tagged = [DeviceHalf(c).encode(n).payload for c in bundle.configurations for n in natives]
    url, process = start_server(args.bundle)
    try:
        serving = [serve_figures(url, payloads, bundle.identity, args.requests, c) for c in (1, args.concurrency)]
        stream = stream_overhead(url, bundle, tagged)
        print(f"stream, every configuration's payloads: {stream}", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    for row in serving:
        print(f"serve, {row['clients']} client(s): {row}", flush=True)
    result = {
        "bundle": bundle.name,
        "k": bundle.k,
        "codec": bundle.manifest["codec"],
        "payload_bytes_mean": float(np.mean([len(p) for p in payloads])),
        "device_onnxruntime": onnx_device,
        "device_pytorch": torch_device,
        "serve": serving,
        "stream": stream,
        "configurations": len(bundle.configurations),
        "versions": bundle.manifest["versions"],
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
