"""The server's guards (token, load shedding, timeout, metrics), dynamic batching, and signed bundles."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TINY_K
from deploy_fixtures import TinyStudy
from fastapi.testclient import TestClient
from trust_fixtures import self_signed_cert, token_file

from optimizer.cli import main
from optimizer.codecs import CodecError
from optimizer.deploy import DeviceHalf, ServerHalf, open_bundle
from optimizer.deploy._batching import TailBatcher, infer_batch
from optimizer.deploy._limits import LoadShedder, ServeOptions
from optimizer.deploy._server import create_app
from optimizer.deploy._signing import SIGNATURE
from optimizer.errors import UserError
from optimizer.protocol import request_headers

OCTET = {"content-type": "application/octet-stream"}  # plus the bundle identity, see _octet


def _octet(bundle: Path) -> dict[str, str]:
    return request_headers(open_bundle(bundle).identity)


@pytest.fixture(scope="module")
def payloads(tiny: TinyStudy, pca_bundle: Path) -> list[bytes]:
    device = DeviceHalf(open_bundle(pca_bundle))
    evaluator = tiny.evaluator()
    return [device.encode(evaluator.dataset.native(int(i))).payload for i in evaluator.indices("test")[:64]]


# --- token ---------------------------------------------------------------------------------------
def test_a_token_guards_every_route_but_healthz(pca_bundle: Path, payloads: list[bytes], tmp_path: Path) -> None:
    _, token = token_file(tmp_path)
    client = TestClient(create_app(open_bundle(pca_bundle), ServeOptions(token=token)))
    assert client.get("/healthz").status_code == 200
    for headers in ({}, {"authorization": "Bearer " + token[:-1] + "x"}, {"authorization": f"Basic {token}"}):
        answer = client.post("/v1/infer", content=payloads[0], headers={**_octet(pca_bundle), **headers})
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/v1/manifest", headers=headers).status_code == 401
        assert client.get("/metrics", headers=headers).status_code == 401
    auth = {"authorization": f"Bearer {token}"}
    assert client.post("/v1/infer", content=payloads[0], headers={**_octet(pca_bundle), **auth}).status_code == 200
    metrics = client.get("/metrics", headers=auth).text
    assert 'splitopt_requests_total{path="/v1/infer",status="401"} 3.0' in metrics
    assert 'splitopt_requests_total{path="/v1/infer",status="200"} 1.0' in metrics
    assert "splitopt_request_seconds_bucket" in metrics and "splitopt_payload_bytes_count 4.0" in metrics


def test_token_files_must_hold_a_real_secret(tmp_path: Path) -> None:
    from optimizer.deploy._auth import read_token

    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(UserError, match="at least 16"):
        read_token(tmp_path / "short")
    with pytest.raises(UserError, match="cannot read"):
        read_token(tmp_path / "missing")
    path, token = token_file(tmp_path)
    assert read_token(path) == token


# --- load shedding and timeouts ------------------------------------------------------------------
class _Slow:
    """An ASGI app whose /v1/infer answers when released (or never)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_over_the_concurrency_cap_is_429_with_retry_after_and_slow_work_503() -> None:
    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        slow = _Slow()
        shedder = LoadShedder(slow, ServeOptions(max_concurrent=2, timeout_s=5.0, retry_after_s=3))
        transport = httpx.ASGITransport(app=shedder)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = [asyncio.create_task(client.post("/v1/infer", content=b"x")) for _ in range(2)]
            while slow.entered < 2:
                await asyncio.sleep(0.001)
            shed = await client.post("/v1/infer", content=b"x")
            other_route = asyncio.create_task(client.get("/healthz"))  # not capped: answers when released
            slow.release.set()
            done = list(await asyncio.gather(*first))
            await other_route
            impatient = LoadShedder(_Slow(), ServeOptions(timeout_s=0.05))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=impatient), base_url="http://t") as c2:
                late = await c2.post("/v1/infer", content=b"x")
        return done, shed, late

    done, shed, late = asyncio.run(scenario())
    assert [r.status_code for r in done] == [200, 200]
    assert shed.status_code == 429 and shed.headers["retry-after"] == "3" and "limit of 2" in shed.json()["detail"]
    assert late.status_code == 503 and "within 0.05 s" in late.json()["detail"]


# --- batching ------------------------------------------------------------------------------------
def test_a_batch_answers_each_payload_as_one_by_one_and_keeps_errors_apart(
    pca_bundle: Path, payloads: list[bytes]
) -> None:
    half = ServerHalf(open_bundle(pca_bundle))
    mixed = [*payloads[:10], payloads[10][:-3], *payloads[11:20]]
    results = infer_batch(half, mixed)
    assert isinstance(results[10], CodecError)
    for payload, result in zip(mixed, results, strict=True):
        if payload is mixed[10]:
            continue
        single = half.infer(payload)
        assert not isinstance(result, Exception)
        assert result.class_index == single.class_index and result.label == single.label
        assert result.score == pytest.approx(single.score, abs=1e-5)


def test_concurrent_requests_share_tail_calls(pca_bundle: Path, payloads: list[bytes]) -> None:
    half = ServerHalf(open_bundle(pca_bundle))
    sizes: list[int] = []

    async def scenario() -> list[Any]:
        batcher = TailBatcher(half, max_batch=16, window_s=0.01, on_batch=sizes.append)
        try:
            first = await batcher.infer(payloads[0])  # alone: no window
            rest = await asyncio.gather(*(batcher.infer(p) for p in payloads), return_exceptions=True)
            bad = await asyncio.gather(batcher.infer(b"\0" * 5), return_exceptions=True)
            return [first, *rest, *bad]
        finally:
            batcher.close()

    results = asyncio.run(scenario())
    assert isinstance(results[-1], CodecError)
    assert [r.class_index for r in results[1:-1]] == [half.infer(p).class_index for p in payloads]
    assert sizes[0] == 1 and max(sizes) == 16 and sum(sizes) == len(payloads) + 2


def test_the_batched_server_answers_like_the_unbatched_one(pca_bundle: Path, payloads: list[bytes]) -> None:
    bundle, octet = open_bundle(pca_bundle), _octet(pca_bundle)
    with TestClient(create_app(bundle, ServeOptions(max_batch=1))) as plain:
        expected = [plain.post("/v1/infer", content=p, headers=octet).json()["class_index"] for p in payloads]
    with TestClient(create_app(bundle, ServeOptions(max_batch=8))) as batched:
        got = [batched.post("/v1/infer", content=p, headers=octet).json()["class_index"] for p in payloads]
        assert batched.post("/v1/infer", content=payloads[0][:-2], headers=octet).status_code == 400
        assert "splitopt_batch_size_count" in batched.get("/metrics").text
    assert got == expected


# --- command line --------------------------------------------------------------------------------
def test_serve_refuses_an_open_port_without_a_token_and_half_tls(
    pca_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(pca_bundle), "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--token-file" in err and "--insecure" in err
    cert, key = self_signed_cert(tmp_path / "tls")
    assert main(["serve", str(pca_bundle), "--tls-cert", str(cert)]) == 2
    assert "both --tls-cert and --tls-key" in capsys.readouterr().err
    assert main(["serve", str(pca_bundle), "--tls-cert", str(cert), "--tls-key", str(cert)]) == 2
    assert "cannot use --tls-cert" in capsys.readouterr().err
    assert main(["infer", str(pca_bundle), "x.png", "--url", "http://10.1.2.3:8000", "--token-file", str(key)]) == 2
    assert "one line of at least 16" in capsys.readouterr().err
    token, _ = token_file(tmp_path)
    assert main(["infer", str(pca_bundle), "x.png", "--url", "http://10.1.2.3:8000", "--token-file", str(token)]) == 2
    assert "refusing to send the token in clear text" in capsys.readouterr().err


# --- signed bundles ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    for name in ("release", "other"):
        assert main(["keygen", "--out", str(folder / name)]) == 0
    return {"release": folder / "release", "other": folder / "other"}


@pytest.fixture(scope="module")
def signed_bundle(tiny: TinyStudy, keys: dict[str, Path]) -> Path:
    out = tiny.root / "deploy" / "signed"
    args = ["export", str(tiny.report), "--trial", str(tiny.trial_of(k=TINY_K["pca"], codec="pca")), "--out", str(out)]
    assert main([*args, "--search-space", str(tiny.space), "--sign-key", str(keys["release"])]) == 0
    return out


def test_keygen_writes_a_private_key_only_its_owner_reads(keys: dict[str, Path], capsys: Any) -> None:
    assert keys["release"].stat().st_mode & 0o077 == 0
    assert keys["release"].with_name("release.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert main(["keygen", "--out", str(keys["release"])]) == 2
    assert "already exists" in capsys.readouterr().err


def test_a_signed_bundle_opens_with_its_key_and_unsigned_ones_without_any(
    signed_bundle: Path, pca_bundle: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    release = str(keys["release"].with_name("release.pub"))
    doc = json.loads((signed_bundle / SIGNATURE).read_text())
    assert doc["algorithm"] == "ed25519" and len(doc["key_id"]) == 16
    assert main(["verify", str(signed_bundle), "--trust-key", release, "--limit", "20", "--format", "json"]) in (0, 1)
    capsys.readouterr()
    assert open_bundle(signed_bundle).name == "signed"  # no trust key: opened as before
    assert open_bundle(pca_bundle).name == "pca"
    assert main(["verify", str(pca_bundle), "--trust-key", release]) == 2  # unsigned, but a key is required
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not signed" in err


@pytest.mark.parametrize("case", ["tampered manifest", "wrong key", "forged key id", "garbled signature"])
def test_serve_refuses_a_bundle_whose_signature_fails(
    signed_bundle: Path, keys: dict[str, Path], tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(signed_bundle, copy)
    trust = keys["release"].with_name("release.pub")
    if case == "tampered manifest":  # e.g. someone raises the expected accuracy
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["expected"]["test_accuracy"] = 0.99
        (copy / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    elif case == "wrong key":
        trust = keys["other"].with_name("other.pub")
    elif case == "forged key id":  # signed by the other key, claiming to be the release key
        from optimizer.deploy._signing import load_private_key, sign_manifest

        release_id = json.loads((copy / SIGNATURE).read_text())["key_id"]
        sign_manifest(copy, load_private_key(keys["other"]))
        doc = json.loads((copy / SIGNATURE).read_text())
        (copy / SIGNATURE).write_text(json.dumps({**doc, "key_id": release_id}))
    else:
        (copy / SIGNATURE).write_text('{"format": 1, "algorithm": "ed25519", "key_id": "x", "signature": "%%"}')
    for command in ("serve", "verify"):
        assert main([command, str(copy), "--trust-key", str(trust)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("split-opt: error:"), err
        assert "refusing" in err or "not a split-opt signature" in err


def test_export_checks_the_signing_key_before_any_work(
    tiny: TinyStudy, tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    pub = keys["release"].with_name("release.pub")
    assert main(["export", str(tiny.report), "--best", "--out", str(out), "--sign-key", str(pub)]) == 2
    assert "not an unencrypted PEM private key" in capsys.readouterr().err and not out.exists()
    assert main(["serve", str(tiny.report), "--trust-key", str(keys["release"])]) == 2
    assert "is not a PEM public key" in capsys.readouterr().err


# --- acceptance: a token-protected TLS server on loopback ----------------------------------------
@pytest.mark.slow
def test_infer_over_tls_with_the_token_and_without_it(
    signed_bundle: Path, keys: dict[str, Path], tiny: TinyStudy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ssl
    import subprocess
    import sys
    import time

    from deploy_fixtures import ROOT
    from PIL import Image
    from test_deploy_e2e import _free_port

    cert, key = self_signed_cert(tmp_path / "tls")
    token, _ = token_file(tmp_path)
    trust = str(keys["release"].with_name("release.pub"))
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    command = [sys.executable, "-m", "optimizer", "serve", str(signed_bundle), "--port", str(port)]
    command += ["--token-file", str(token), "--tls-cert", str(cert), "--tls-key", str(key), "--trust-key", trust]
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 120
        while True:  # until the server answers over TLS (it is ready when it does), dies, or the deadline
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the TLS server did not answer within 120 s"
            try:
                if httpx.get(f"{url}/healthz", verify=context, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        image = tmp_path / "one.png"
        evaluator = tiny.evaluator()
        Image.fromarray(evaluator.dataset.native(int(evaluator.indices("test")[0]))).save(image)
        base = ["infer", str(signed_bundle), str(image), "--url", url, "--trust-key", trust, "--format", "json"]
        assert main([*base, "--token-file", str(token), "--ca-cert", str(cert)]) == 0
        result = json.loads(capsys.readouterr().out)["results"][0]
        assert result["label"] == open_bundle(signed_bundle).classes[result["class_index"]]
        assert main([*base, "--ca-cert", str(cert)]) == 2  # no token
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "401" in err
        assert main([*base, "--token-file", str(token)]) == 2  # the system's authorities do not know the cert
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "CERTIFICATE_VERIFY_FAILED" in err
        plain = httpx.post(f"{url}/v1/infer", content=b"x", headers=OCTET, verify=context)
        assert plain.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


# --- export reads the study's own search space ---------------------------------------------------
def test_export_uses_the_search_space_stored_with_the_study(
    tiny: TinyStudy, pca_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    report = tmp_path / "report"
    shutil.copytree(tiny.report, report)
    edited = tmp_path / "edited.yaml"  # the YAML changed after the study: other calib images
    edited.write_text(yaml.safe_dump({**yaml.safe_load(tiny.space.read_text()), "samples": {"calib": 25, "val": 30}}))
    pareto = json.loads((report / "pareto.json").read_text())
    (report / "pareto.json").write_text(json.dumps({**pareto, "search_space_path": str(edited)}))
    trial = str(tiny.trial_of(k=TINY_K["pca"], codec="pca"))
    assert main(["export", str(report), "--trial", trial, "--out", str(tmp_path / "b"), "--format", "json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["codec"]["state_hash"] == open_bundle(pca_bundle).manifest["codec"]["state_hash"]
    args = ["export", str(report), "--trial", trial, "--out", str(tmp_path / "c"), "--search-space", str(edited)]
    assert main(args) == 2
    assert "not the search space the study used" in capsys.readouterr().err
