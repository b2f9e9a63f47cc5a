"""The bandwidth-adaptive device over a shaped link whose uplink changes during the run.

    python benchmarks/bench_adaptive.py deploy/NAME [--schedule KBPS:S,...] [--transport http|stream]
                                        [--fixed-tag T] [--out FILE]

``deploy/NAME`` is an adaptive bundle (``split-opt export --adaptive``). ``split-opt serve`` runs it
in its own process; a ShapedLink (optimizer.deploy._link) in this one stands for the study's link:
its round trip, per-packet headers and downlink rate from the bundle's policy, and an uplink that
follows ``--schedule`` (each phase's rate in kbps for S seconds; the clock starts when the device
connects). ``split-opt infer --adaptive --format json`` runs in its own process over the link, one
frame per test image of the bundle's dataset (labels known, so accuracy is measured), at the
policy's fps; then the same schedule again with ``--config T``: a fixed configuration (default:
the policy's choice at the first phase's rate).

Figures, per phase and overall, for both runs:
- switch latency: the requests the adaptive device sent after a rate change before its first
  frame with another configuration, where the policy's choice at the new rate differs from the one
  before (target <= 5); and whether it then ran the policy's choice at the phase's true rate;
- deadline met: the fraction of frames with e2e_ms (head + coding + round trip, measured here)
  within the policy's deadline, after the first 5 frames of each phase (settled), in the phases
  where the policy says some configuration can meet it (target >= 95 % for the adaptive device),
  and the fixed configuration's miss rate in the same phases;
- accuracy: the fraction of frames answered with the image's label, both runs; every frame must
  be answered (the run fails otherwise);
- stream overhead: every configuration's payloads over the stream through an unshaped counting
  link: bytes per inference beyond the payload, each way (target <= 8 up).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from optimizer.data import make_splits, open_dataset
from optimizer.deploy import DeviceHalf, open_bundle
from optimizer.deploy._link import ShapedLink
from optimizer.deploy._policy import Policy
from optimizer.deploy._stream import StreamServer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCHEDULE = "10000:10,100:10,45:10,2000:10"
SWITCH_WINDOW = 5  # the target: a switch within this many requests; frames after it count as settled


def parse_schedule(text: str) -> list[tuple[float, float]]:
    return [(float(rate), float(seconds)) for rate, seconds in (part.split(":") for part in text.split(","))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(bundle: Path) -> tuple[int, subprocess.Popen]:
    port = _free_port()
    command = [sys.executable, "-m", "optimizer", "serve", str(bundle), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 120
    while time.monotonic() < end and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return port, process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"the server for {bundle} did not start (exit code {process.poll()})")


def write_frames(bundle: Path, n: int, folder: Path) -> tuple[list[Path], list[int]]:
    """The first ``n`` test images of the bundle's dataset as PNGs (as a camera hands them over), and labels."""
    data = open_bundle(bundle).manifest["dataset"]
    dataset = open_dataset(data["spec"])
    indices = make_splits(dataset, seed=int(data["split_seed"])).test[:n]
    paths, labels = [], []
    for i, index in enumerate(indices):
        path = folder / f"{i:05d}.png"
        Image.fromarray(dataset.native(int(index))).save(path)
        paths.append(path)
        labels.append(int(dataset.labels[int(index)]))
    return paths, labels


def _drive(link: ShapedLink, schedule: list[tuple[float, float]], down: float, changes: list[float]) -> None:
    """Set each phase's uplink when its time comes; the first when the device connects."""
    link.set_rates(schedule[0][0], down)
    while link.counters.connections == 0:
        time.sleep(0.005)
    for rate, seconds in schedule:
        link.set_rates(rate, down)
        changes.append(time.time())
        time.sleep(seconds)


def run_device(
    bundle: Path, port: int, policy: Policy, schedule: list[tuple[float, float]], frames: list[Path], extra: list[str]
) -> tuple[dict[str, Any], list[float]]:
    """``split-opt infer --adaptive`` over a shaped link following ``schedule``; (its trace, change times)."""
    net = policy.network
    down = float(net["downlink_kbps"])
    changes: list[float] = []
    overhead = int(net["per_packet_overhead_bytes"])
    link = ShapedLink(port, schedule[0][0], down, float(net["rtt_ms"]), mss_bytes=int(net["mss_bytes"]),
                      per_packet_overhead_bytes=overhead)  # fmt: skip
    with link:
        driver = threading.Thread(target=_drive, args=(link, schedule, down, changes), daemon=True)
        driver.start()
        command = [sys.executable, "-m", "optimizer", "infer", str(bundle), *map(str, frames), "--adaptive"]
        command += ["--url", link.url, "--format", "json", *extra]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ}, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"infer --adaptive failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout), changes


def _by_phase(frames: list[dict[str, Any]], started_at: float, changes: list[float]) -> list[list[dict[str, Any]]]:
    """The frames that started in each phase of the schedule."""
    phases: list[list[dict[str, Any]]] = [[] for _ in changes]
    for f in frames:
        index = max((i for i, c in enumerate(changes) if started_at + f["t_s"] >= c), default=0)
        phases[index].append(f)
    return phases


def _phase(mine: list[dict[str, Any]], old: int | None, rate: float, policy: Policy, switches: int) -> dict[str, Any]:
    target = policy.choose(rate)
    moved = next((n for n, f in enumerate(mine) if old is not None and f["tag"] != old), None)
    settled = mine[SWITCH_WINDOW:]
    met = [f["met_deadline"] for f in settled]
    return {
        "uplink_kbps": rate,
        "frames": len(mine),
        "policy_tag": target,
        "policy_meets_deadline": policy.feasible_at(rate),
        "switch_expected": old is not None and target != old,
        "requests_before_switch": moved,
        "switches_in_phase": switches,
        "settled_on_policy_tag": sum(f["tag"] == target for f in settled) / len(settled) if settled else None,
        "settled_deadline_met": sum(met) / len(met) if met else None,
        "settled_frames": len(settled),
        "rate_estimate_kbps_median": _median([f["rate_kbps"] for f in settled]),
        "e2e_ms_median": _median([f["e2e_ms"] for f in settled]),
        "tags": sorted({f["tag"] for f in mine}),
    }


def analyse(
    trace: dict[str, Any], changes: list[float], schedule: list[tuple[float, float]], policy: Policy, labels: list[int]
) -> dict[str, Any]:
    frames, start = trace["frames"], trace["started_at"]
    by_phase = _by_phase(frames, start, changes)
    switch_phases = [s["frame"] for s in trace["switches"]]
    phases = []
    for i, ((rate, _), mine) in enumerate(zip(schedule, by_phase, strict=True)):
        old = by_phase[i - 1][-1]["tag"] if i and by_phase[i - 1] else None
        frame_ids = {f["frame"] for f in mine}
        phases.append(_phase(mine, old, rate, policy, sum(1 for n in switch_phases if n in frame_ids)))
    correct = [f["class_index"] == labels[f["frame"]] for f in frames]
    settled = [f["met_deadline"] for (rate, _), mine in zip(schedule, by_phase, strict=True)
               if policy.feasible_at(rate) for f in mine[SWITCH_WINDOW:]]  # fmt: skip
    return {
        "frames": len(frames),
        "answered": sum(1 for f in frames if f["class_index"] >= 0),
        "accuracy": sum(correct) / len(correct) if correct else None,
        "switches": trace["switches"],
        "phases": phases,
        "settled_deadline_met_where_feasible": sum(settled) / len(settled) if settled else None,
        "settled_frames_where_feasible": len(settled),
        "achieved_fps": trace["summary"]["achieved_fps"],
    }


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


def stream_overhead(bundle: Path, port: int, frames: list[Path]) -> dict[str, Any]:
    """Bytes per inference beyond the payload on the stream, every configuration's payloads, counted at the link."""
    from optimizer.deploy import load_image

    opened = open_bundle(bundle)
    payloads = []
    for config in opened.configurations:
        device = DeviceHalf(config)
        payloads += [device.encode(load_image(p, device.image_mode)).payload for p in frames]
    with ShapedLink(port) as link:
        client = StreamServer(link.url, opened)
        client.send(payloads[0])  # the connection is set up (upgrade + hello)
        up0, down0 = link.counters.up, link.counters.down
        for payload in payloads:
            client.send(payload)
        up, down = link.counters.up, link.counters.down
        client.close()
    sent = sum(map(len, payloads))
    return {
        "inferences": len(payloads),
        "configurations": len(opened.configurations),
        "payload_bytes_mean": sent / len(payloads),
        "up_bytes_per_inference_beyond_payload": (up - up0 - sent) / len(payloads),
        "down_bytes_per_inference": (down - down0) / len(payloads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="an adaptive bundle (split-opt export --adaptive)")
    parser.add_argument("--schedule", default=DEFAULT_SCHEDULE, help="uplink phases, KBPS:SECONDS,... (%(default)s)")
    parser.add_argument("--transport", choices=("http", "stream"), default=None, help="default: the policy's")
    parser.add_argument("--fixed-tag", type=int, default=None, help="default: the policy's choice at the first rate")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--traces", type=Path, default=None, help="also write both runs' traces here (JSON)")
    args = parser.parse_args()
    bundle = open_bundle(args.bundle)
    policy = bundle.policy
    if policy is None or policy.fps is None:
        raise SystemExit(f"{args.bundle} is not an adaptive bundle exported with --fps")
    schedule = parse_schedule(args.schedule)
    transport = args.transport or policy.transport
    fixed = args.fixed_tag if args.fixed_tag is not None else policy.choose(schedule[0][0])
    n = int(sum(s for _, s in schedule) * policy.fps) + 20
    port, server = start_server(args.bundle)
    extra = ["--stream"] if transport == "stream" else []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            frames, labels = write_frames(args.bundle, n, Path(tmp))
            result: dict[str, Any] = {"bundle": str(args.bundle), "schedule": schedule, "transport": transport}
            result["policy"] = policy.doc["ranges"]
            for name, flags in (("adaptive", extra), ("fixed", [*extra, "--config", str(fixed)])):
                trace, changes = run_device(args.bundle, port, policy, schedule, frames, flags)
                result[name] = analyse(trace, changes, schedule, policy, labels)
                if args.traces:
                    args.traces.mkdir(parents=True, exist_ok=True)
                    (args.traces / f"{name}.json").write_text(json.dumps({**trace, "changes": changes}) + "\n")
                print(f"{name}: {json.dumps(_brief(result[name]))}", flush=True)
            result["fixed"]["tag"] = fixed
            result["stream_overhead"] = stream_overhead(args.bundle, port, frames[:50])
            print(f"stream overhead: {json.dumps(result['stream_overhead'])}")
    finally:
        server.terminate()
        server.wait(30)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("frames", "answered", "accuracy", "settled_deadline_met_where_feasible", "achieved_fps")
    phases = [
        {k: p[k] for k in ("uplink_kbps", "policy_tag", "requests_before_switch", "settled_deadline_met", "tags")}
        for p in run["phases"]
    ]
    return {**{k: run[k] for k in keys}, "phases": phases}


if __name__ == "__main__":
    main()
