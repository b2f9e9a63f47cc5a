"""End-to-end prediction against a measured run over a shaped loopback link.

    python benchmarks/bench_e2e.py reports/NAME [--device profiles/host.yaml] [--configs 20]
        [--rates 100,1000,10000] [--rtt-ms 20] [--images 15] [--out FILE]

For ``--configs`` configurations of a finished study (the image codecs at k = 0, the class id, a
float16 middle split and PCA at several splits, chosen in a seeded order; splits are fx split
indices k, "middle" the middle fifth of the model's, see is_middle), the benchmark exports
each bundle, starts `split-opt serve` on loopback, and sends test images through the device half
(`split-opt infer`'s code: head.onnx + entropy coding + HTTP) via optimizer.deploy.ShapedLink, a
proxy that serialises each direction at the given rate and adds the round trip. The server
requires a bearer token, as one off loopback must, and the device half sends it. Measured: wall time
per image from the image file to the answer, median. Predicted: the system model with the device
profile (calibrated here) and a network profile of the shaped link (its rate, the added round trip,
no per-packet headers: the proxy shapes the application bytes), the codec's work from the bundle
and the payload size the study measured on val. The profile's per-request cost (``server.request_ms``:
HTTP handling on both ends) is measured first on one class-id bundle that is not among the
configurations. Target: predicted within +-20 % of the measured median for >= 90 % of them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import optuna
from PIL import Image

from optimizer.cli import main as cli
from optimizer.config import DeviceProfile, Network, Quantity, load_device_profile
from optimizer.deploy import open_bundle
from optimizer.deploy._client import RemoteServer
from optimizer.deploy._halves import DeviceHalf, load_image
from optimizer.deploy._link import ShapedLink
from optimizer.models import split_graph
from optimizer.profiler import profile_spec
from optimizer.search import config_key, trial_metrics
from optimizer.system import path_costs

ROOT = Path(__file__).resolve().parents[1]


def shaped_network(rate_kbps: float, rtt_ms: float) -> Network:
    q = Quantity
    return Network(
        name=f"shaped loopback {rate_kbps:g} kbps",
        uplink_kbps=q(rate_kbps, "the proxy's rate"),
        downlink_kbps=q(rate_kbps, "the proxy's rate"),
        rtt_ms=q(rtt_ms + 0.05, "the proxy's added round trip + loopback"),
        mss_bytes=q(1e9, "the proxy shapes application bytes, not packets"),
        per_packet_overhead_bytes=q(0, "the proxy shapes application bytes, not packets"),
        nj_per_byte_sent=q(0, "not measured"),
        nj_per_byte_received=q(0, "not measured"),
    )


def pick_trials(study: optuna.Study, count: int, seed: int) -> tuple[list[optuna.trial.FrozenTrial], Any]:
    """``count`` distinct configurations (k = 0 and middle splits first), plus one class-id trial to
    calibrate the per-request cost that is not among them."""
    seen, pool = set(), []
    for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        kind = t.user_attrs.get("codec_params", {}).get("kind")
        if kind in (None, "bottleneck") or config_key(t) in seen:
            continue
        seen.add(config_key(t))
        pool.append(t)
    rng = np.random.default_rng(seed)
    class_ids = [t for t in pool if t.user_attrs["codec_params"]["kind"] == "class-id"]
    calibration = class_ids[0] if class_ids else None
    rest = [t for t in pool if t is not calibration]
    rng.shuffle(rest)  # type: ignore[arg-type]
    first = [t for t in rest if config_key(t).k == 0][:4] + [t for t in rest if is_middle(t)][:4]
    chosen = first + [t for t in rest if t not in first]
    return chosen[:count], calibration


@functools.lru_cache(maxsize=16)
def last_k(spec: str) -> int:
    return len(split_graph(spec)) - 1


def is_middle(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trial's split is in the middle fifth of its model's split points, 0.4-0.6 of the
    last k (MobileNetV2: fx k = 14..21 of 0..35; block k = 8..12 of 0..20, taken before, are fx 15..21)."""
    config = config_key(trial)
    return 0.4 * last_k(config.model) <= config.k <= 0.6 * last_k(config.model)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TOKEN = secrets.token_urlsafe(32)  # as a deployment off loopback needs one (43 characters)


class Served:
    """`split-opt serve BUNDLE --token-file` on a free loopback port, for the duration of a with-block."""

    def __init__(self, bundle: Path) -> None:
        self.port = free_port()
        token_file = bundle.parent / "token.txt"
        token_file.write_text(TOKEN)
        command = [sys.executable, "-m", "optimizer", "serve", str(bundle), "--port", str(self.port)]
        command += ["--token-file", str(token_file)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> Served:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def measure(bundle: Path, url: str, images: list[Path]) -> float:
    """Median ms from the image file to the answer, through the device half and ``url``."""
    loaded = open_bundle(bundle)
    device, server = DeviceHalf(loaded), RemoteServer(url, loaded.identity, timeout_s=60, token=TOKEN)
    times = []
    try:
        for i, path in enumerate([images[0], images[1], *images]):
            start = time.perf_counter()
            server.send(device.encode(load_image(path, device.image_mode)).payload)
            if i >= 2:  # two warm-up requests open the connection and the sessions
                times.append((time.perf_counter() - start) * 1e3)
    finally:
        server.close()
    return statistics.median(times)


def predict(
    profile: DeviceProfile, trial: optuna.trial.FrozenTrial, bundle: Path, num_classes: int
) -> dict[str, float]:
    config = config_key(trial)
    row = profile_spec(profile, config.model, config.input_size, num_classes).splits[config.k]
    loaded = open_bundle(bundle)
    native = (28, 28)  # Fashion-MNIST, as the device holds it
    shape = native if config.k == 0 else loaded.codec.shape
    payload = trial_metrics(trial)["payload_bytes"]
    costs = path_costs(
        profile,
        row.latency_ms,
        row.cum_macs,
        row.tail_latency_ms,
        payload,
        loaded.codec.device_work(shape),
        loaded.codec.server_work(shape),
    )
    return {**costs.metrics(), **{f"part_{k}": v for k, v in costs.parts().items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a finished study's folder (reports/NAME)")
    parser.add_argument("--device", type=Path, default=ROOT / "profiles" / "host.yaml")
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--rates", default="100,1000,10000", help="uplink = downlink rates in kbps")
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--images", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    pareto = json.loads((args.report / "pareto.json").read_text())
    study = optuna.load_study(study_name=pareto["study"], storage=f"sqlite:///{args.report / 'study.db'}")
    trials, calibration = pick_trials(study, args.configs, args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    images = write_images(pareto, work / "images", args.images)
    bundles = {t.number: export(args.report, t.number, work) for t in [*trials, calibration] if t is not None}
    profile = load_device_profile(args.device)
    request_ms = calibrate_request(profile, calibration, bundles, images, pareto["num_classes"])
    profile = replace(profile, server=replace(profile.server, request_ms=Quantity(request_ms, "bench_e2e")))
    rates = [float(r) for r in args.rates.split(",")]
    rows = [
        r for trial in trials for r in run_config(trial, bundles[trial.number], profile, rates, args, images, pareto)
    ]
    within = float(np.mean([abs(r["error"]) <= 0.2 for r in rows]))
    runs = f"{len(rows)} runs ({len(trials)} configurations x {len(rates)} rates)"
    print(f"{runs}: {within:.1%} within +-20 %; request_ms calibrated {request_ms:.3f}")
    if args.out:
        doc = {"report": str(args.report), "device": str(args.device), "rtt_ms": args.rtt_ms, "request_ms": request_ms}
        doc |= {"within_20_percent": within, "rows": rows}
        args.out.write_text(json.dumps(doc, indent=2) + "\n")


def run_config(
    trial: optuna.trial.FrozenTrial,
    bundle: Path,
    profile: DeviceProfile,
    rates: list[float],
    args: argparse.Namespace,
    images: list[Path],
    pareto: dict[str, Any],
) -> list[dict[str, Any]]:
    """Measured and predicted e2e of one configuration at every rate."""
    rows, config = [], config_key(trial)
    with Served(bundle) as served:
        for rate in rates:
            with ShapedLink(served.port, rate, rate, args.rtt_ms) as link:
                measured = measure(bundle, link.url, images)
            shaped = replace(profile, network=shaped_network(rate, args.rtt_ms))
            predicted = predict(shaped, trial, bundle, pareto["num_classes"])
            row = {"trial": trial.number, "params": dict(trial.params), "codec": trial.user_attrs["codec_params"]}
            row |= {"model": config.model, "k": config.k, "split": trial.user_attrs.get("split")}
            row |= {"rate_kbps": rate, "measured_ms": measured, "predicted_ms": predicted["e2e_ms"]}
            row |= {"error": predicted["e2e_ms"] / measured - 1, "predicted": predicted}
            rows.append(row)
            what = f"trial {trial.number:4d} k={config.k:2d} {row['codec']['kind']:<9} {rate:>8g} kbps"
            times = f"predicted {row['predicted_ms']:8.2f} ms, measured {measured:8.2f} ms"
            print(f"{what}: {times} ({row['error']:+.1%})", flush=True)
    return rows


def write_images(pareto: dict[str, Any], folder: Path, n: int) -> list[Path]:
    """The first ``n`` test images of the study's dataset, as the PNG files a device would read."""
    from optimizer.data import make_splits, open_dataset

    dataset = open_dataset(pareto["dataset"])
    folder.mkdir(parents=True)
    paths = []
    for i in make_splits(dataset)["test"][:n]:
        path = folder / f"{int(i)}.png"
        Image.fromarray(dataset.native(int(i))).save(path)
        paths.append(path)
    return paths


def export(report: Path, trial: int, work: Path) -> Path:
    out = work / "deploy" / f"t{trial}"
    with contextlib.redirect_stdout(io.StringIO()):  # the manifest it prints
        assert cli(["export", str(report), "--trial", str(trial), "--out", str(out), "--format", "json"]) == 0
    return out


def calibrate_request(
    profile: DeviceProfile, trial: Any, bundles: dict[int, Path], images: list[Path], classes: int
) -> float:
    """The per-request cost on this machine: a class-id round trip on loopback (no link) minus
    what the model already counts for it."""
    if trial is None:
        return float(profile.server.request_ms.value)
    with Served(bundles[trial.number]) as served:
        measured = measure(bundles[trial.number], f"http://127.0.0.1:{served.port}", images)
    fast = replace(
        profile, network=shaped_network(1e9, 0.0), server=replace(profile.server, request_ms=Quantity(0.0, ""))
    )
    return max(0.0, measured - predict(fast, trial, bundles[trial.number], classes)["e2e_ms"])


if __name__ == "__main__":
    main()
