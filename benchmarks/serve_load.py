"""Load generation for bench_serve.py: a lean asyncio HTTP/1.1 client (one keep-alive connection per
client, one request in flight on each), a PCA bundle of a zoo model at one split point (bench_serve
takes the default model's middle block boundary), and the server as its own process on loopback.

The client writes the request bytes itself and parses only the status line, the headers it needs
and the body, so on a 2-core machine it leaves most of the CPU to the server it measures. Every
request loop here is bounded in count and time, and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(bundle: Path, *extra: str, deadline_s: float = 180) -> tuple[int, subprocess.Popen]:
    port = free_port()
    command = [sys.executable, "-m", "optimizer", "serve", str(bundle), "--port", str(port), *extra]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and process.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return port, process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server for {bundle} did not start (exit code {process.poll()})")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def request_bytes(body: bytes, identity: str, content_type: str = "application/octet-stream") -> bytes:
    """One POST /v1/infer as the device half sends it (``identity``: the bundle's, see Bundle.identity)."""
    head = (
        f"POST /v1/infer HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
        f"X-Split-Opt-Bundle: {identity}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)  # class_index of 200 answers, -1 otherwise
    transport_errors: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    return status, await reader.readexactly(length), close


async def _client(requests: Sequence[bytes], port: int, outcome: Outcome, parse: bool, deadline: float) -> None:
    reader = writer = None
    for raw in requests:
        if time.monotonic() > deadline:
            break
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            assert reader is not None
            start = time.perf_counter()
            writer.write(raw)
            status, body, close = await _read_response(reader)
            outcome.latencies.append(time.perf_counter() - start)
            outcome.statuses.append(status)
            outcome.classes.append(int(json.loads(body)["class_index"]) if parse and status == 200 else -1)
            if close:
                writer.close()
                reader = writer = None
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            outcome.transport_errors += 1
            outcome.statuses.append(-1)
            outcome.classes.append(-1)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def run_clients(
    port: int, per_client: Sequence[Sequence[bytes]], parse: bool = True, limit_s: float = 300
) -> tuple[list[Outcome], float]:
    """Each list of requests on its own connection, all at once; (outcomes, wall seconds)."""
    outcomes = [Outcome() for _ in per_client]

    async def main() -> float:
        deadline = time.monotonic() + limit_s
        start = time.perf_counter()
        await asyncio.gather(*(_client(r, port, o, parse, deadline) for r, o in zip(per_client, outcomes, strict=True)))
        return time.perf_counter() - start

    wall = asyncio.run(main())
    return outcomes, wall


def throughput(port: int, payloads: Sequence[bytes], identity: str, clients: int, requests: int) -> dict[str, Any]:
    """``requests`` good requests spread over ``clients`` connections: req/s and latency percentiles."""
    raws = [request_bytes(p, identity) for p in payloads]
    run_clients(port, [raws[:20]] * min(clients, 8))  # warm-up: sessions, allocator pools
    per_client = [[raws[(c + i * clients) % len(raws)] for i in range(requests // clients)] for c in range(clients)]
    outcomes, wall = run_clients(port, per_client, parse=False)
    latencies = np.array([t for o in outcomes for t in o.latencies]) * 1e3
    statuses = [s for o in outcomes for s in o.statuses]
    return {
        "clients": clients,
        "requests": len(statuses),
        "non_200": sum(s != 200 for s in statuses),
        "requests_per_s": round(len(statuses) / wall, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3),
    }


def malformed_bodies(payload: bytes, identity: str, n: int, seed: int = 0) -> list[bytes]:
    """Random bytes, truncations, a flipped header bit, trailing junk, and a wrong content type."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            out.append(
                request_bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes(), identity)
            )
        elif kind == 1:
            out.append(request_bytes(payload[: int(rng.integers(0, len(payload)))], identity))
        elif kind == 2:
            data = bytearray(payload)
            data[int(rng.integers(0, 3))] ^= 1 << int(rng.integers(0, 8))
            out.append(request_bytes(bytes(data), identity))
        elif kind == 3:
            out.append(request_bytes(payload + bytes(int(rng.integers(1, 5000))), identity))
        else:
            out.append(request_bytes(payload, identity, "text/plain"))
    return out


def mixed_load(
    port: int,
    payloads: Sequence[bytes],
    identity: str,
    expected: Sequence[int],
    good_clients: int,
    good_each: int,
    malformed: int,
) -> dict[str, Any]:
    """``good_clients`` connections of good requests while 10 others send ``malformed`` bad ones."""
    raws = [request_bytes(p, identity) for p in payloads]
    picks = [[(c * good_each + i) % len(raws) for i in range(good_each)] for c in range(good_clients)]
    bad = malformed_bodies(payloads[0], identity, malformed)
    bad_per = [bad[i::10] for i in range(10)]
    outcomes, wall = run_clients(port, [[raws[p] for p in pick] for pick in picks] + bad_per)
    good, evil = outcomes[:good_clients], outcomes[good_clients:]
    good_errors = sum(
        status != 200 or cls != expected[p]
        for pick, o in zip(picks, good, strict=True)
        for p, status, cls in zip(pick, o.statuses, o.classes, strict=True)
    )
    bad_statuses = [s for o in evil for s in o.statuses]
    return {
        "good_clients": good_clients,
        "good_requests": sum(len(o.statuses) for o in good),
        "good_errors": good_errors,
        "malformed_requests": len(bad_statuses),
        "malformed_answers": {str(s): bad_statuses.count(s) for s in sorted(set(bad_statuses))},
        "wall_s": round(wall, 2),
    }


def rss_growth(
    port: int, pid: int, payloads: Sequence[bytes], identity: str, requests: int, clients: int = 8
) -> dict[str, Any]:
    """Server RSS after a warm-up of 2,000 requests and after ``requests`` more."""
    import psutil

    raws = [request_bytes(p, identity) for p in payloads]
    process = psutil.Process(pid)

    def burst(n: int) -> None:
        run_clients(port, [[raws[(c + i) % len(raws)] for i in range(n // clients)] for c in range(clients)], False)

    burst(2000)
    before = process.memory_info().rss
    burst(requests)
    after = process.memory_info().rss
    return {
        "requests": requests,
        "rss_before_mb": round(before / 1e6, 1),
        "rss_after_mb": round(after / 1e6, 1),
        "growth_mb": round((after - before) / 1e6, 1),
    }


def make_middle_pca_bundle(
    out: Path, spec: str, size: int, k: int, components: int, bits: int, test_samples: int | None = None
) -> Path:
    """A bundle of the zoo's model ``spec`` at fx split index k with blocked PCA + ANS (no study: the
    codec is fitted on the default search space's calib images, the expected figures measured on the
    first ``test_samples`` test images, default all), written as `split-opt export` writes one."""
    from optimizer.cli._search import DEFAULT_SPACE
    from optimizer.config import ModelChoice, load_search_space
    from optimizer.data import make_splits, open_dataset
    from optimizer.deploy import ExportSpec, export_bundle
    from optimizer.models import parse_model_spec, split_graph
    from optimizer.search import Config, Evaluator, resolve_model

    if (out / "manifest.json").is_file():
        return out
    space = load_search_space(DEFAULT_SPACE)
    dataset = open_dataset(space.dataset)
    model = resolve_model(ModelChoice(spec, "zoo", (size,), (split_graph(spec).names()[k],)))
    samples = {"calib": space.calib_samples, "val": space.val_samples}
    if test_samples is not None:
        samples["test"] = test_samples
    evaluator = Evaluator(dataset, make_splits(dataset), {model.spec: model}, samples)
    codec_params = {"kind": "pca", "geometry": "channel", "components": components, "bits": bits, "coder": "ans"}
    config = Config.make(model.spec, size, k, codec_params)
    test = evaluator.evaluate(config, "test")
    built, graph = evaluator.built(model.spec), evaluator.graph(model.spec, size)
    model_info = {
        "spec": model.spec,
        "family": parse_model_spec(model.spec).family,
        "input_size": size,
        "num_classes": dataset.num_classes,
        "weights": built.weights,
        "classes": list(dataset.classes),
        "preprocessing": built.preprocessing.to_json(),
        "split": graph.names()[k],
    }
    first = dataset.native(int(evaluator.indices("test")[0]))
    data = {
        "spec": dataset.spec,
        "split_seed": evaluator.splits.seed,
        "test_samples": len(evaluator.indices("test")),
        "image_mode": "L" if first.ndim == 2 else "RGB",
    }
    expected = {
        "test_accuracy": test.accuracy,
        "test_payload_bytes_mean": float(test.payload_bytes.mean()),
        "payload_bytes_mean": float(test.payload_bytes.mean()),
    }
    export = ExportSpec(
        out.name,
        graph.head(k),
        graph.tail(k),
        model_info,
        k,
        len(graph),
        evaluator.codec(config),
        expected,
        data,
        {"name": "bench_serve", "trial": None},
    )
    export_bundle(export, out, force=True)
    return out
