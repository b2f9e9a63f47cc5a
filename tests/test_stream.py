"""The stream: one WebSocket per device, one binary message per payload, compact answers in order,
the bundle checked at connection time, and no payload lost when the connection breaks."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
import websocket
from conftest import TINY_K
from deploy_fixtures import TinyStudy
from PIL import Image

from optimizer.cli import main
from optimizer.deploy import DeviceHalf, ServerHalf, load_image, open_bundle
from optimizer.deploy._link import ShapedLink
from optimizer.deploy._server import create_app
from optimizer.deploy._stream import StreamServer, stream_url
from optimizer.errors import UserError
from optimizer.protocol import ANSWER_BYTES, bundle_id, pack_answer, parse_answer


@pytest.fixture(scope="module")
def port(pca_bundle: Path) -> Iterator[int]:
    """``split-opt serve``'s app for the PCA bundle, on loopback, in a thread of this process."""
    config = uvicorn.Config(create_app(open_bundle(pca_bundle)), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and server.servers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _images(tmp: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(4)
    paths = []
    for i in range(n):
        path = tmp / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _payloads(bundle_dir: Path, tmp: Path, n: int) -> list[bytes]:
    device = DeviceHalf(open_bundle(bundle_dir))
    return [device.encode(load_image(p, device.image_mode)).payload for p in _images(tmp, n)]


def test_answers_are_six_bytes_and_round_trip() -> None:
    assert ANSWER_BYTES == 6
    answer = parse_answer(pack_answer(7, 0.8125, 1.5))
    assert (answer.class_index, answer.score, answer.server_ms, answer.status) == (7, 0.8125, 1.5, 200)
    assert parse_answer(pack_answer(3, None, 0.25)).score is None
    refused = parse_answer(json.dumps({"status": 409, "detail": "other bundle"}))
    assert (refused.status, refused.detail) == (409, "other bundle")
    with pytest.raises(ValueError, match="6 bytes"):
        parse_answer(b"\x00" * 5)


def test_stream_url_from_the_http_url() -> None:
    assert stream_url("http://127.0.0.1:8000/", "ab") == "ws://127.0.0.1:8000/v1/stream?bundle=ab"
    assert stream_url("https://h/x", "ab") == "wss://h/x/v1/stream?bundle=ab"
    with pytest.raises(UserError, match="http://"):
        stream_url("ftp://h", "ab")


def test_infer_stream_gives_the_answers_of_http_with_at_most_8_bytes_of_framing_per_image(
    pca_bundle: Path, port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [str(p) for p in _images(tmp_path, 6)]
    docs = {}
    for transport in ("http", "stream"):
        with ShapedLink(port) as link:
            flag = ["--stream"] if transport == "stream" else []
            argv = ["infer", str(pca_bundle), *images, "--url", f"http://127.0.0.1:{link.port}", *flag]
            assert main([*argv, "--format", "json"]) == 0
            docs[transport] = json.loads(capsys.readouterr().out)
            up = link.counters.up
        payload_bytes = sum(r["payload_bytes"] for r in docs[transport]["results"])
        docs[transport]["up_overhead"] = up - payload_bytes
    assert docs["stream"]["transport"] == "stream"
    for http, stream in zip(docs["http"]["results"], docs["stream"]["results"], strict=True):
        assert (stream["class_index"], stream["label"]) == (http["class_index"], http["label"])
        assert stream["payload_bytes"] == http["payload_bytes"] < 126  # one-byte lengths in the frame header
        assert math.isclose(stream["score"], http["score"], abs_tol=2**-10)
    handshake = docs["stream"]["up_overhead"] - 6 * len(images)  # upgrade request (once per connection)
    assert 0 < handshake < 400, handshake
    assert docs["http"]["up_overhead"] > 150 * len(images)  # request line and headers, every time


def test_a_device_with_another_bundle_is_refused_at_connection_time(tiny: TinyStudy, port: int) -> None:
    other = open_bundle(tiny.export(tiny.trial_of(k=TINY_K["float16"]), "f16"))
    with pytest.raises(UserError, match=r"refused this bundle .*bundle mismatch: server runs pca"):
        StreamServer(f"http://127.0.0.1:{port}", other, retries=0)


def test_no_payload_is_lost_when_the_connection_breaks(pca_bundle: Path, port: int, tmp_path: Path) -> None:
    payloads = _payloads(pca_bundle, tmp_path, 12)
    server = ServerHalf(open_bundle(pca_bundle))
    expected = [server.infer(p).class_index for p in payloads]
    with ShapedLink(port) as link:
        client = StreamServer(f"http://127.0.0.1:{link.port}", open_bundle(pca_bundle))
        answers = [client.send(p)[0]["class_index"] for p in payloads[:3]]
        for payload in payloads[3:8]:  # five in flight, then the link fails
            client.submit(payload)
        link.cut()
        answers += [client.receive().class_index for _ in range(5)]
        link.cut()  # a break while idle: the next send finds it
        answers += [client.send(p)[0]["class_index"] for p in payloads[8:]]
        client.close()
    assert answers == expected
    assert client.reconnects >= 2 and link.counters.connections >= 3 and not client.pending


def test_a_refused_payload_gets_a_text_answer_and_the_stream_goes_on(
    pca_bundle: Path, port: int, tmp_path: Path
) -> None:
    good = _payloads(pca_bundle, tmp_path, 1)[0]
    client = StreamServer(f"http://127.0.0.1:{port}", open_bundle(pca_bundle))
    client.submit(good[:6])  # a header cut short
    client.submit(b"\x00" * 100_000)
    client.submit(good)
    corrupt, too_large, fine = client.receive(), client.receive(), client.receive()
    client.close()
    assert (corrupt.status, too_large.status, fine.status) == (400, 413, 200)
    assert "corrupt payload" in corrupt.detail and "largest" in too_large.detail
    assert client.reconnects == 0


def test_text_frames_and_missing_identity_are_closed_with_a_reason(pca_bundle: Path, port: int) -> None:
    identity = bundle_id((pca_bundle / "manifest.json").read_bytes())
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/v1/stream?bundle={identity}", timeout=10)
    assert json.loads(ws.recv())["bundle"] == "pca"
    ws.send("hello")
    opcode, data = ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1003
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/v1/stream", timeout=10)
    opcode, data = ws.recv_data()
    assert int.from_bytes(data[:2], "big") == 4409 and b"got none" in data


def test_infer_refuses_local_and_stream_together(pca_bundle: Path, tmp_path: Path) -> None:
    images = [str(p) for p in _images(tmp_path, 1)]
    assert main(["infer", str(pca_bundle), *images, "--local", "--stream"]) == 2
