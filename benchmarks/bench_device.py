"""The device install (packaging/device, no torch): its size, `infer` of one image from a cold start,
byte-identity of its payloads with the full install's, and the bytes each transport adds per
inference, counted at a loopback proxy (optimizer.deploy's ShapedLink, unshaped).

    python benchmarks/bench_device.py [--bundle deploy/NAME] [--runs N] [--baseline CHECKOUT] [--out FILE]

- Environment: a fresh venv (``--without-pip``; packaging/device installed by this interpreter's pip
  with ``--no-compile``), then one ``infer`` with bytecode writing on, so that the modules a run
  imports are compiled once, as on a device after its first run. Size = the apparent size of every
  file in the venv (``--env DIR`` reuses one).
- Cold start: ``split-opt infer BUNDLE IMAGE --local`` (device and server half in one process, as
  the issue measured it) and ``--url`` / ``--url --stream`` against the full install's server, each
  a new process; wall time around the process and its peak RSS (``wait4``, from a small launcher);
  median and max of ``--runs``. The machine's load average is recorded: wall times on a shared
  2-core machine grow with it.
  The same for the full install of this checkout, and of ``--baseline`` (another checkout, e.g. main,
  run by this interpreter) when given.
- Identity: payloads of 16 images through each bundle (the tiny test study's bundles at fx split
  k = 0, 10, 17 and 35, the older block k = 0, 5, 10 and 20, and its adaptive bundle, every
  configuration; plus ``--bundle``), device install vs. full install: the share that are byte-identical.
- Transport: 200 payloads of the measured bundle through the counting loopback proxy (ShapedLink, no rate limit), over
  HTTP (httpx, keep-alive) and over the stream; bytes each way beyond the payloads, per inference,
  after the connection is set up (its cost is reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests")]  # device_check; deploy_fixtures

from device_check import (  # noqa: E402
    build_env,
    device_env,
    full_env,
    make_bundles,
    payloads,
    serving,
    write_images,
)

from optimizer.deploy import DeviceHalf, load_image, open_bundle  # noqa: E402
from optimizer.deploy._client import RemoteServer  # noqa: E402
from optimizer.deploy._link import ShapedLink  # noqa: E402
from optimizer.deploy._stream import StreamServer  # noqa: E402


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def identity(device: Path, bundle: Path, images: list[Path], work: Path) -> float:
    """The share of payloads (every configuration's) the device install makes byte-identical to the full install's."""
    mine = [p for config in payloads(device, bundle, images, device_env(), work) for p in config]
    full = [p for config in payloads(Path(sys.executable), bundle, images, full_env(), ROOT) for p in config]
    return sum(a == b for a, b in zip(mine, full, strict=True)) / len(full)


def env_size(venv: Path) -> dict[str, Any]:
    site = next((venv / "lib").glob("python*/site-packages"))
    parts = {p.name: tree_bytes(p) if p.is_dir() else p.stat().st_size for p in site.iterdir()}
    top = dict(sorted(parts.items(), key=lambda kv: -kv[1])[:8])
    return {"total_mb": tree_bytes(venv) / 1e6, "largest_mb": {k: round(v / 1e6, 1) for k, v in top.items()}}


# Peak RSS is measured by a small launcher: a child forked from this process (torch loaded, ~1 GB)
# would carry this process's high-water mark into its own (Linux keeps it across exec).
LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(json.dumps([time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]))
"""


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process that must exit 0."""
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER]
    done = subprocess.run([*launcher, *command], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    wall, rss_kb, code = json.loads(done.stdout.strip().splitlines()[-1])
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr}")
    return float(wall), rss_kb / 1024


def cold_start(python: Path, args: list[str], env: dict[str, str], cwd: Path, runs: int) -> dict[str, float]:
    samples = [timed([str(python), "-m", "optimizer", "infer", *args], env, cwd) for _ in range(runs)]
    walls, rss = [w for w, _ in samples], [r for _, r in samples]
    return {
        "wall_s_median": statistics.median(walls),
        "wall_s_max": max(walls),
        "rss_mb_median": statistics.median(rss),
        "rss_mb_max": max(rss),
    }


def transport_overhead(bundle: Path, url: str, images: list[Path]) -> dict[str, Any]:
    """Bytes per inference beyond the payload, each way, for HTTP and the stream."""
    opened = open_bundle(bundle)
    device = DeviceHalf(opened)
    frames = [device.encode(load_image(p, device.image_mode)).payload for p in images]
    port, out = int(url.rsplit(":", 1)[1]), {}
    for name in ("http", "stream"):
        with ShapedLink(port) as link:
            proxy_url = f"http://127.0.0.1:{link.port}"
            client = (
                StreamServer(proxy_url, open_bundle(bundle))
                if name == "stream"
                else RemoteServer(proxy_url, open_bundle(bundle).identity)
            )
            client.send(frames[0])  # the connection is set up (HTTP: TCP; stream: upgrade + hello)
            setup = {"up": link.counters.up, "down": link.counters.down}
            for frame in frames:
                client.send(frame)
            client.close()
            time.sleep(0.2)  # the closing frames reach the proxy; they are not counted below
            end = {"up": link.counters.up, "down": link.counters.down}
        n, sent = len(frames), sum(map(len, frames))
        out[name] = {
            "up_bytes_per_inference": (end["up"] - setup["up"] - sent) / n,
            "down_bytes_per_inference": (end["down"] - setup["down"]) / n,
            "setup_up_bytes": setup["up"] - len(frames[0]),
            "setup_down_bytes": setup["down"],
            "payload_bytes_mean": sent / n,
            "inferences": n,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="also measure this bundle (e.g. a real study's)")
    parser.add_argument("--runs", type=int, default=5, help="cold starts per configuration")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time (e.g. main)")
    parser.add_argument("--env", type=Path, default=None, help="reuse (or create) the device venv here")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-device-"))
    venv = args.env or work / "device-venv"
    device = build_env(venv)
    bundles = make_bundles(work / "study")
    if args.bundle is not None:
        bundles["given"] = args.bundle.resolve()
    images = write_images(work / "images", 200)
    if args.bundle is not None and open_bundle(args.bundle).image_mode != "L":
        raise SystemExit("--bundle must take grey images (a Fashion-MNIST study's bundle)")
    one = str(images[0])
    compile_env = {k: v for k, v in device_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    for extra in ([], ["--stream"]):  # compiles what the runs import (HTTP and stream), then measure
        subprocess.run(
            [str(device), "-m", "optimizer", "infer", str(bundles["pca"]), one, "--local", *extra],
            env=compile_env,
            cwd=work,
            capture_output=True,
        )
    result: dict[str, Any] = {"device_env": env_size(venv)}
    result["identity"] = {codec: identity(device, bundle, images[:16], work) for codec, bundle in bundles.items()}
    target = bundles.get("given", bundles["pca"])
    result["bundle"] = str(target)
    cold: dict[str, Any] = {}
    cold["device_local"] = cold_start(device, [str(target), one, "--local"], device_env(), work, args.runs)
    cold["full_local"] = cold_start(Path(sys.executable), [str(target), one, "--local"], full_env(), ROOT, args.runs)
    if args.baseline is not None:
        env = {**device_env(), "PYTHONPATH": str(args.baseline.resolve())}
        cold["baseline_local"] = cold_start(
            Path(sys.executable), [str(target), one, "--local"], env, args.baseline, args.runs
        )
    with serving(Path(sys.executable), target, full_env(), ROOT) as url:
        for name, extra in (("device_http", []), ("device_stream", ["--stream"])):
            cold[name] = cold_start(device, [str(target), one, "--url", url, *extra], device_env(), work, args.runs)
        result["transport"] = transport_overhead(target, url, images)
    result["cold_start"] = cold
    result["load_average_1min_at_end"] = os.getloadavg()[0]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
