"""CI's check of the device install (packaging/device): built fresh, without torch, it runs
``split-opt infer`` against bundles served by the full install, over HTTP and over the stream.

    .venv/bin/python scripts/device_check.py [--work DIR] [--keep]

Steps: a new virtual environment (no pip inside it, no bytecode compiled at install) gets
``packaging/device`` through this interpreter's pip; ``import torch`` must fail there. The full
install exports the tiny test study's bundles (tests/deploy_fixtures.py: k = 0 PNG, k = 5 PCA + ANS,
k = 10 float16, k = 20 class id) and serves the PCA one; the device install's ``infer`` must answer
every image over HTTP and ``--stream`` as the full install does, and its payloads for every bundle
(every configuration of the adaptive one) must be byte-identical to the full install's. The
study's adaptive bundle (``export --adaptive --fps 10``) is served too: the device install's
``infer --adaptive`` must answer every image over both transports with a trace of the bundle's
tags, and pinned to one configuration (``--config``) answer as the full install does. Then the
``[server]`` extra is added and the device environment serves the bundle itself, answering the same.
A command that needs the full install (``search``) must say so in one line (exit 2). The full
install makes a calibration kit of one tiny model (``calibrate --make-kit``, tests/tiny_nets.py);
the device install's ``calibrate --kit`` (3 repeats) must write a profile whose fitted rates are
positive and finite, and refuse the kit in one line (exit 2) once a byte of it changes. Exit code 0
when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The tiny study's splits (tests/conftest.py TINY_K: fx split indices of its block boundaries).
BUNDLES = {"image": 0, "pca": 10, "float16": 17, "class-id": 35}
KIT_MODEL = "python:tiny_nets:tiny_net@32"  # tests/tiny_nets.py: a few split points, quick to export and time
# What the device install's Python prints for a bundle and images: the payloads, in hex.
PAYLOADS = """
import json, sys
from pathlib import Path
from optimizer.deploy import DeviceHalf, load_image, open_bundle
out = []
for config in open_bundle(Path(sys.argv[1])).configurations:
    device = DeviceHalf(config)
    out.append([device.encode(load_image(Path(p), device.image_mode)).payload.hex() for p in sys.argv[2:]])
print(json.dumps(out))
"""


def build_env(dest: Path, extras: str = "") -> Path:
    """A fresh venv at ``dest`` with packaging/device installed (``extras`` like "[server]"); its python."""
    if not (dest / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True, env=device_env())
    python = dest / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-compile"]
    subprocess.run([*pip, f"{ROOT / 'packaging' / 'device'}{extras}"], check=True, env=device_env())
    return python


def device_env() -> dict[str, str]:
    """The environment a device process runs in: nothing that points at this checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def full_env() -> dict[str, str]:
    return {**device_env(), "PYTHONPATH": str(ROOT)}


def make_bundles(root: Path) -> dict[str, Path]:
    """The tiny test study's bundles, exported by the full install (this interpreter)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from deploy_fixtures import build_tiny_study

    from optimizer.cli import main

    with contextlib.redirect_stdout(io.StringIO()):  # the search's and export's own JSON documents
        study = build_tiny_study(root)
        bundles = {codec: study.export(study.trial_of(k=k), codec) for codec, k in BUNDLES.items()}
        adaptive = root / "deploy" / "adaptive"
        args = ["export", str(study.report), "--adaptive", "--fps", "10", "--out", str(adaptive)]
        if main([*args, "--search-space", str(study.space), "--format", "json"]) != 0:
            raise RuntimeError("export --adaptive of the tiny study failed")
        return {**bundles, "adaptive": adaptive}


def write_images(folder: Path, n: int, seed: int = 5) -> list[Path]:
    """Grey 28 x 28 PNGs, as the Fashion-MNIST bundles take them."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = [folder / f"{i}.png" for i in range(n)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
    return paths


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(python: Path, bundle: Path, env: dict[str, str], cwd: Path) -> Iterator[str]:
    """``split-opt serve`` run by ``python`` on a free loopback port; yields its URL."""
    port = free_port()
    command = [str(python), "-m", "optimizer", "serve", str(bundle), "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {process.stderr.read().decode()}") from None  # type: ignore[union-attr]
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def run(python: Path, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def infer(python: Path, bundle: Path, images: list[Path], extra: list[str], env: dict[str, str], cwd: Path) -> dict:
    done = run(
        python, ["-m", "optimizer", "infer", str(bundle), *map(str, images), *extra, "--format", "json"], env, cwd
    )
    if done.returncode != 0:
        raise RuntimeError(f"infer {' '.join(extra)} failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


def payloads(python: Path, bundle: Path, images: list[Path], env: dict[str, str], cwd: Path) -> list[str]:
    done = run(python, ["-c", PAYLOADS, str(bundle), *map(str, images)], env, cwd)
    if done.returncode != 0:
        raise RuntimeError(f"encoding failed: {done.stderr.strip()}")
    return list(json.loads(done.stdout))


def _predictions(doc: dict) -> list[tuple[int, int]]:
    return [(r["class_index"], r["payload_bytes"]) for r in doc["results"]]


def check_adaptive(device: Path, bundle: Path, images: list[Path], work: Path) -> list[str]:
    """The device install's ``infer --adaptive`` against the adaptive bundle served by the full install."""
    failures: list[str] = []
    tags = {c["tag"] for c in json.loads((bundle / "manifest.json").read_text())["configurations"]}
    with serving(Path(sys.executable), bundle, full_env(), ROOT) as url:
        for extra in (["--url", url], ["--url", url, "--stream"]):
            trace = infer(device, bundle, images, ["--adaptive", "--fps", "20", *extra], device_env(), work)
            frames = trace["frames"]
            if len(frames) != len(images) or not {f["tag"] for f in frames} <= tags or "switches" not in trace:
                failures.append(f"device infer --adaptive {' '.join(extra[2:])}: not every image answered with a tag")
        pinned = ["--adaptive", "--config", "0", "--url", url]
        ours = infer(device, bundle, images, pinned, device_env(), work)
        theirs = infer(Path(sys.executable), bundle, images, pinned, full_env(), ROOT)
        if [f["class_index"] for f in ours["frames"]] != [f["class_index"] for f in theirs["frames"]]:
            failures.append("device infer --adaptive --config 0 answers differently from the full install")
    return failures


def make_kit(folder: Path) -> None:
    """A calibration kit of the tiny net, made by the full install (this interpreter)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from optimizer.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        if main(["calibrate", "--make-kit", str(folder), "--models", KIT_MODEL, "--format", "json"]) != 0:
            raise RuntimeError("calibrate --make-kit of the tiny net failed")


def check_calibration_kit(device: Path, work: Path) -> list[str]:
    """The device install's ``calibrate --kit`` on a kit the full install made; then on an altered copy."""
    kit, out = work / "kit", work / "calibrated.yaml"
    make_kit(kit)
    args = ["-m", "optimizer", "calibrate", "--kit", str(kit), "--device", str(ROOT / "profiles" / "pi4.yaml")]
    args += ["--out", str(out), "--repeats", "3", "--format", "json"]
    done = run(device, args, device_env(), work)
    if done.returncode != 0:
        return [f"device calibrate --kit failed ({done.returncode}): {done.stderr.strip()}"]
    failures: list[str] = []
    summary = json.loads(done.stdout)
    rates = {k: v for k, v in {**summary["fitted"], **summary["coding"]}.items() if k.endswith("_per_s")}
    if not rates or not all(0 < v < float("inf") for v in rates.values()) or not out.is_file():
        failures.append(f"device calibrate --kit wrote no profile or rates that are not positive and finite: {rates}")
    with (kit / "weights.bin").open("ab") as f:
        f.write(b"\0")
    refused = run(device, args, device_env(), work)
    if refused.returncode != 2 or "sha256" not in refused.stderr or refused.stderr.count("\n") != 1:
        failures.append(f"device calibrate --kit should refuse an altered kit in one line: {refused.stderr!r}")
    return failures


def check(work: Path) -> list[str]:
    """Every check above; the list of failures (empty when all pass)."""
    failures: list[str] = []
    device = build_env(work / "device-venv")
    if run(device, ["-c", "import torch"], device_env(), work).returncode == 0:
        failures.append("the device install can import torch")
    bundles, images = make_bundles(work / "study"), write_images(work / "images", 8)
    for codec, bundle in bundles.items():
        ours, theirs = (
            payloads(p, bundle, images, e, work) for p, e in ((device, device_env()), (sys.executable, full_env()))
        )
        if ours != theirs:
            failures.append(f"{codec}: the device install's payloads differ from the full install's")
    with serving(Path(sys.executable), bundles["pca"], full_env(), ROOT) as url:
        expected = _predictions(infer(Path(sys.executable), bundles["pca"], images, ["--url", url], full_env(), ROOT))
        for extra in (["--url", url], ["--url", url, "--stream"]):
            if _predictions(infer(device, bundles["pca"], images, extra, device_env(), work)) != expected:
                failures.append(f"device infer {' '.join(extra)} answers differently from the full install")
    failures += check_adaptive(device, bundles["adaptive"], images, work)
    failures += check_calibration_kit(device, work)
    refused = run(device, ["-m", "optimizer", "search", "--budget-kb", "5"], device_env(), work)
    if refused.returncode != 2 or "needs the full install" not in refused.stderr or refused.stderr.count("\n") != 1:
        failures.append(f"device `search` should refuse in one line, got {refused.returncode}: {refused.stderr!r}")
    build_env(work / "device-venv", "[server]")
    with serving(device, bundles["pca"], device_env(), work) as url:
        if (
            _predictions(infer(device, bundles["pca"], images, ["--url", url, "--stream"], device_env(), work))
            != expected
        ):
            failures.append("the device install's own server answers differently")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="split-opt-device-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        failures = check(work)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print(f"device check FAILED: {failure}")
    print(f"device check: {'ok' if not failures else f'{len(failures)} failed'} ({time.monotonic() - start:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
