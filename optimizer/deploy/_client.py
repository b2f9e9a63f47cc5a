"""The device side end to end: image files -> head.onnx -> payload -> a server (or the server half
in this process) -> prediction, with the time spent in each stage.

Each transport also counts the bytes of its last exchange as they cross TCP (``last_bytes``: request
line, headers and body up; status line, headers and body down) and can ``probe`` the link (see
optimizer.protocol); the adaptive device (see _adaptive) estimates the link from both."""

from __future__ import annotations

import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from optimizer.codecs import CodecError
from optimizer.deploy._bundle import Bundle
from optimizer.deploy._configs import ServerHalves
from optimizer.deploy._halves import DeviceHalf, load_image
from optimizer.errors import UserError
from optimizer.protocol import INFER_PATH, PROBE, PROBE_STATUS, request_headers

if TYPE_CHECKING:
    from optimizer.deploy._stream import StreamServer

__all__ = ["InferResult", "LocalServer", "RemoteServer", "infer_images"]


@dataclass(frozen=True)
class InferResult:
    image: str
    class_index: int
    label: str
    score: float | None
    payload_bytes: int
    head_ms: float  # preprocessing + head.onnx
    coding_ms: float  # entropy coding + wire header
    network_ms: float  # request round trip, server compute included (0 with --local)
    server_ms: float  # the server half's own time

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _header_bytes(first_line: str, raw: list[tuple[bytes, bytes]]) -> int:
    """An HTTP/1.1 head on the wire: the first line, ``name: value`` lines, the blank line (CRLFs)."""
    return len(first_line) + 2 + sum(len(name) + 2 + len(value) + 2 for name, value in raw) + 2


def exchange_bytes(response: httpx.Response) -> tuple[int, int]:
    """(bytes up, bytes down) of one HTTP/1.1 request and its answer, as they cross TCP."""
    request = response.request
    target = request.url.raw_path.decode("ascii")
    up = _header_bytes(f"{request.method} {target} HTTP/1.1", request.headers.raw) + len(request.content)
    status = f"{response.http_version} {response.status_code} {response.reason_phrase}"
    return up, _header_bytes(status, response.headers.raw) + response.num_bytes_downloaded


class RemoteServer:
    """A split-opt server over HTTP; every failure becomes one UserError line that says what to do."""

    def __init__(
        self,
        url: str,
        identity: str,
        timeout_s: float = 30.0,
        token: str | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``identity``: the bundle's (``Bundle.identity``), sent with each request; ``token``: sent as
        ``Authorization: Bearer``; ``verify``: how an https:// server's certificate is checked (True:
        the system's authorities; an SSLContext: e.g. one that trusts --ca-cert)."""
        self.url = url.rstrip("/")
        self.headers = request_headers(identity)
        auth = {"authorization": f"Bearer {token}"} if token is not None else {}
        self.client = httpx.Client(timeout=timeout_s, headers=auth, verify=verify)
        self.last_bytes = (0, 0)  # (up, down) of the last exchange

    def _request(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
        start = time.perf_counter()
        try:
            response = self.client.request(method, f"{self.url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise UserError(
                f"cannot reach the server at {self.url} ({type(exc).__name__}: {exc}); start it with "
                "`split-opt serve deploy/NAME` or pass --url (or --local)"
            ) from exc
        elapsed = time.perf_counter() - start
        self.last_bytes = exchange_bytes(response)
        return response, elapsed

    def probe(self) -> float:
        """The round trip of a probe (an empty payload, answered 204); its bytes in ``last_bytes``."""
        response, elapsed = self._request("POST", INFER_PATH, content=PROBE, headers=self.headers)
        if response.status_code != PROBE_STATUS:
            raise UserError(
                f"the server at {self.url} answered a probe with {response.status_code}, not {PROBE_STATUS}: "
                "update it (split-opt serve) to this version, or check --token-file"
            )
        return elapsed

    def send(self, payload: bytes) -> tuple[dict[str, Any], float]:
        # NOTE: optimizer.system counts exactly these request bytes (tests/test_transport.py).
        response, elapsed = self._request("POST", INFER_PATH, content=payload, headers=self.headers)
        if response.status_code == 401:
            raise UserError(f"the server at {self.url} answered 401: give its token with --token-file")
        if response.status_code != 200:
            detail = response.json().get("detail", response.text) if response.content else response.reason_phrase
            raise UserError(f"the server at {self.url} answered {response.status_code}: {detail}")
        return response.json(), elapsed

    def close(self) -> None:
        self.client.close()


class LocalServer:
    """The server half in this process (``--local``): no network, same answers."""

    def __init__(self, bundle: Bundle) -> None:
        self.half = ServerHalves(bundle)
        self.last_bytes = (0, 0)  # nothing crosses a network

    def probe(self) -> float:
        return 0.0

    def send(self, payload: bytes) -> tuple[dict[str, Any], float]:
        start = time.perf_counter()
        prediction = self.half.infer(payload)
        elapsed = time.perf_counter() - start
        answer = {**asdict(prediction), "server_ms": elapsed * 1e3}
        return answer, 0.0

    def close(self) -> None:
        pass


def infer_images(
    bundle: Bundle,
    images: Sequence[Path],
    server: RemoteServer | LocalServer | StreamServer,
    device: DeviceHalf | None = None,
) -> list[InferResult]:
    """Run every image through the device half and ``server``, in order."""
    device = device or DeviceHalf(bundle)
    results = []
    for path in images:
        try:
            encoded = device.encode(load_image(path, device.image_mode))
        except CodecError as exc:
            raise UserError(f"image {path} cannot be encoded by this bundle's codec: {exc}") from exc
        answer, network_s = server.send(encoded.payload)
        results.append(
            InferResult(
                image=str(path),
                class_index=int(answer["class_index"]),
                label=str(answer["label"]),
                score=answer["score"],
                payload_bytes=len(encoded.payload),
                head_ms=encoded.head_s * 1e3,
                coding_ms=encoded.coding_s * 1e3,
                network_ms=network_s * 1e3,
                server_ms=float(answer["server_ms"]),
            )
        )
    return results
