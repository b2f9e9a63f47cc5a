"""The device's calibration (`split-opt calibrate --kit` in the device install, no torch) against today's
`split-opt calibrate` in the full install, on the same models and this machine: wall time and peak RSS
of each process, the kit's size and the time to make it, and how close the two fitted profiles are.

    python benchmarks/bench_calibrate_kit.py [--models SPEC@SIZE,...] [--repeats N] [--threads T]
        [--runs N] [--env DIR] [--out FILE]

- The device install: a fresh venv (scripts/device_check.py's ``build_env``), or ``--env DIR``.
- The kit: ``split-opt calibrate --make-kit`` by the full install (wall, peak RSS); its size on disk,
  and what it would be with every graph holding its own weights (the sum of each graph's file and
  the external bytes it points at).
- ``--runs`` rounds, each: the full install's ``calibrate --device profiles/pi4.yaml`` (exports and
  times every segment and head, then the coding steps), then the device install's ``calibrate --kit``
  (times the kit's graphs, then the coding steps); same ``--models`` (default: calibrate's own),
  ``--repeats``, ``--threads``. Each is a new process, timed with its peak RSS by bench_device.py's
  launcher (``wait4``). Taking turns spreads a change in the machine's load over both.
- Closeness: for every value a calibration wrote (its source names the command and today), the ratio kit /
  full of the same round; and full / full between rounds, the run-to-run spread that any two
  calibrations of one machine show; per round, the median and largest factor over the keys, and
  per key, the median ratio over the rounds. Values are as written in the profiles (4 significant
  digits).
  The machine's load average is recorded: on a shared 2-core machine timings move with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import onnx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]

from bench_device import timed  # noqa: E402
from device_check import build_env, device_env, full_env  # noqa: E402

PROFILE = ROOT / "profiles" / "pi4.yaml"


def kit_size(kit: Path) -> dict[str, Any]:
    """Bytes on disk, and bytes if every graph held its own copy of its weights."""
    files = [p for p in kit.iterdir() if p.is_file()]
    unshared = 0
    for path in kit.glob("*.onnx"):
        model = onnx.load(str(path), load_external_data=False)
        external = sum(
            int(entry.value) for t in model.graph.initializer for entry in t.external_data if entry.key == "length"
        )
        unshared += path.stat().st_size + external
    return {
        "bytes": sum(p.stat().st_size for p in files),
        "files": len(files),
        "graphs": len(list(kit.glob("*.onnx"))),
        "weights_bin_bytes": (kit / "weights.bin").stat().st_size,
        "bytes_if_each_graph_held_its_weights": unshared,
    }


def calibrated(path: Path) -> dict[str, float]:
    """Every value a calibration wrote into the profile today: section.key -> value."""
    doc, today = yaml.safe_load(path.read_text()), str(dt.date.today())
    return {
        f"{section}.{key}": float(entry["value"])
        for section in ("compute", "coding")
        for key, entry in doc[section].items()
        if "calibrated by `split-opt calibrate" in str(entry.get("source", "")) and today in str(entry["source"])
    }


def ratios(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a[k] / b[k] for k in sorted(a.keys() & b.keys()) if b[k] > 0 and a[k] > 0}


def spread(r: dict[str, float]) -> dict[str, float]:
    """How far ratios stray from 1: median and max of |log ratio|, as factors."""
    logs = [abs(math.log(v)) for v in r.values()]
    return {
        "keys": len(logs),
        "median_factor": math.exp(statistics.median(logs)) if logs else 1.0,
        "max_factor": math.exp(max(logs)) if logs else 1.0,
    }


def per_key(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each key's median ratio over the rounds."""
    keys = sorted(set().union(*rounds)) if rounds else []
    return {k: statistics.median(r[k] for r in rounds if k in r) for k in keys}


def closeness(rounds: list[dict[str, float]]) -> dict[str, Any]:
    return {"per_round": rounds, "spread_per_round": [spread(r) for r in rounds], "median_per_key": per_key(rounds)}


def summary(samples: list[tuple[float, float]]) -> dict[str, Any]:
    walls, rss = [w for w, _ in samples], [r for _, r in samples]
    return {"wall_s": walls, "rss_mb": rss, "wall_s_median": statistics.median(walls), "rss_mb_max": max(rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="SPEC@SIZE,... (default: calibrate's own default models)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2, help="rounds of full calibrate + kit calibrate")
    parser.add_argument("--env", type=Path, default=None, help="reuse (or create) the device venv here")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-kit-"))
    device = build_env(args.env or work / "device-venv")
    models = ["--models", args.models] if args.models else []
    common = ["--device", str(PROFILE), "--repeats", str(args.repeats), "--threads", str(args.threads)]
    full_python = [sys.executable, "-m", "optimizer", "calibrate"]
    kit = work / "kit"
    made = timed([*full_python, "--make-kit", str(kit), *models, "--format", "json"], full_env(), ROOT)
    full, device_runs, profiles = [], [], []
    for i in range(args.runs):
        full_out, kit_out = work / f"full-{i}.yaml", work / f"kit-{i}.yaml"
        full.append(
            timed([*full_python, *common, *models, "--out", str(full_out), "--format", "json"], full_env(), ROOT)
        )
        kit_args = ["--kit", str(kit), *common, "--out", str(kit_out), "--format", "json"]
        device_runs.append(timed([str(device), "-m", "optimizer", "calibrate", *kit_args], device_env(), work))
        profiles.append((calibrated(full_out), calibrated(kit_out)))
        print(f"round {i + 1}: full {full[-1][0]:.1f} s {full[-1][1]:.0f} MB, kit {device_runs[-1][0]:.1f} s "
              f"{device_runs[-1][1]:.0f} MB", file=sys.stderr)  # fmt: skip
    kit_over_full = [ratios(k, f) for f, k in profiles]
    full_over_full = [ratios(profiles[i][0], profiles[0][0]) for i in range(1, len(profiles))]
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "models": args.models or "calibrate's default",
        "repeats": args.repeats,
        "threads": args.threads,
        "runs": args.runs,
        "kit": {"make_wall_s": made[0], "make_rss_mb": made[1], **kit_size(kit)},
        "full_calibrate": summary(full),
        "kit_calibrate_device_install": summary(device_runs),
        "kit_over_full": closeness(kit_over_full),
        "full_over_full": closeness(full_over_full),
        "load_average_1min_at_end": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
