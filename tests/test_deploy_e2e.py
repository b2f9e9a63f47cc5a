"""Acceptance: the server as a separate process on loopback, the device half through `infer`,
1,000 malformed requests, 50 concurrent clients, and the server's memory across them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx
import numpy as np
import psutil
import pytest
from conftest import TINY_K
from deploy_fixtures import ROOT, TinyStudy, engine_predictions
from PIL import Image

from optimizer.cli import main
from optimizer.deploy import DeviceHalf, ServerHalf, open_bundle
from optimizer.protocol import request_headers
from optimizer.search import Config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tiny: TinyStudy) -> Path:
    return tiny.export(tiny.trial_of(k=TINY_K["pca"], codec="pca"), "pca")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen, deadline_s: float = 120) -> None:
    """Poll /healthz until the server answers (it is ready when it does), the process dies, or the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert process.poll() is None, "the server exited during start-up"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)  # not a stand-in for synchronisation: the loop ends on the server's answer
    raise AssertionError(f"the server at {url} did not answer within {deadline_s} s")


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    command = [sys.executable, "-m", "optimizer", "serve", str(bundle), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _config(bundle: Path) -> Config:
    manifest = json.loads((bundle / "manifest.json").read_text())
    codec = {k: v for k, v in manifest["codec"].items() if k not in ("shape", "state_file", "state_hash")}
    return Config.make(manifest["model"]["spec"], manifest["model"]["input_size"], manifest["k"], codec)


def test_200_images_through_infer_match_the_study(
    tiny: TinyStudy,
    bundle: Path,
    server: tuple[str, subprocess.Popen],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    evaluator = tiny.evaluator()
    idx = evaluator.indices("test")
    assert len(idx) == 200
    paths = [tmp_path / f"{n:03d}.png" for n in range(len(idx))]
    for path, i in zip(paths, idx, strict=True):
        Image.fromarray(evaluator.dataset.native(int(i))).save(path)  # 28 x 28 grey, as the camera gives it
    assert main(["infer", str(bundle), *map(str, paths), "--url", server[0], "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    predictions, sizes = engine_predictions(evaluator, _config(bundle))
    assert [r["class_index"] for r in results] == predictions.tolist()
    assert [r["payload_bytes"] for r in results] == sizes.tolist()
    assert sizes.tolist() == evaluator.evaluate(_config(bundle), "test").payload_bytes.tolist()
    assert all(r["network_ms"] > 0 for r in results)


def _malformed(
    payload: bytes, octet: dict[str, str], rng: np.random.Generator, n: int
) -> Iterator[tuple[bytes, dict[str, str]]]:
    for i in range(n):
        kind = i % 5
        if kind == 0:
            yield rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes(), octet
        elif kind == 1:
            yield payload[: int(rng.integers(0, len(payload)))], octet
        elif kind == 2:
            data = bytearray(payload)
            data[int(rng.integers(0, 3))] ^= 1 << int(rng.integers(0, 8))  # a broken header field
            yield bytes(data), octet
        elif kind == 3:
            yield payload + bytes(int(rng.integers(1, 5000))), octet
        else:
            yield payload, {"content-type": "text/plain"}


def _rss(process: subprocess.Popen) -> int:
    return int(psutil.Process(process.pid).memory_info().rss)


def test_server_survives_malformed_requests_and_concurrent_clients(
    tiny: TinyStudy, bundle: Path, server: tuple[str, subprocess.Popen]
) -> None:
    url, process = server
    opened = open_bundle(bundle)
    natives = [tiny.evaluator().dataset.native(int(i)) for i in tiny.evaluator().indices("test")[:200]]
    device, local = DeviceHalf(opened), ServerHalf(opened)
    payloads = [device.encode(n).payload for n in natives]
    expected = [local.infer(p).class_index for p in payloads]
    rng, octet = np.random.default_rng(0), request_headers(opened.identity)
    with httpx.Client(base_url=url, timeout=30) as client:
        warm_up = _malformed(payloads[0], octet, rng, 200)
        statuses = [client.post("/v1/infer", content=b, headers=h).status_code for b, h in warm_up]
        before = _rss(process)  # after a warm-up: allocator pools and caches are in place
        for body, headers in _malformed(payloads[1], octet, rng, 1000):
            statuses.append(client.post("/v1/infer", content=body, headers=headers).status_code)
        after_malformed = _rss(process)
    assert all(s < 500 for s in statuses) and sum(s in (400, 413, 415) for s in statuses) >= 1000

    barrier = Barrier(50)

    def one_client(c: int) -> list[tuple[int, int, int]]:
        with httpx.Client(base_url=url, timeout=60) as client:
            barrier.wait(timeout=60)
            picks = [(c * 4 + j) % len(payloads) for j in range(4)]
            answers = [client.post("/v1/infer", content=payloads[p], headers=octet) for p in picks]
            return [(p, a.status_code, a.json().get("class_index", -1)) for p, a in zip(picks, answers, strict=True)]

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = [a for batch in pool.map(one_client, range(50)) for a in batch]
    assert len(answers) == 200
    assert all(status == 200 and cls == expected[p] for p, status, cls in answers)
    after = _rss(process)
    assert after_malformed - before < 30e6, (
        f"RSS grew {(after_malformed - before) / 1e6:.1f} MB over 1,000 bad requests"
    )
    assert after - before < 60e6, f"RSS grew {(after - before) / 1e6:.1f} MB"
    assert process.poll() is None
