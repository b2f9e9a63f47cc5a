"""How well does the calibrated latency model predict measured head latency, on models it was not fitted on?

    python benchmarks/bench_latency_model.py [--threads 1] [--repeats 7] [--rounds 4] [--out FILE]
        [--calibrate-on SPEC@SIZE,...] [--evaluate SPEC@SIZE,...] [--runtime onnxruntime|torch]
        [--clock auto|thread|wall] [--measurements FILE] [--profile-timing-only | --no-profile-timing]

1. Calibrate on one (model, size) per family (default: mobilenetv2:alpha=1.0@224, resnet18@160,
   mobilenet_v3_small@224, efficientnet_b0@160, regnet_x_400mf@160): every fx segment alone and
   every head timed, and the same fit as `split-opt calibrate` (random weights: values do not change
   the time). For comparison the fit is also made on the segments alone.
2. For every (model, size) pair NOT used in calibration (other sizes, other members: resnet34/50,
   mobilenet_v3_large, other mobilenetv2 alphas) and every split k = 1..last, predict the
   cumulative head latency (profile_spec on the calibrated profile) and measure it: the real head
   as one ONNX graph, batch 1, the lowest median of --rounds rounds of --repeats runs (the rounds
   go over all heads of a model in turn), fixed threads. With one thread (the default) the time is
   the calling thread's CPU time (``--clock``; optimizer/profiler/_measure.py says why), and the
   JSON keeps the wall-clock medians of the same rounds too.
3. Report the share of predictions within +-20 % (the target: >= 90 %) and +-10 %, per family and
   overall, the median |error|, and the worst cases. Also times profile_spec (and ``split-opt
   profile`` as a new process) for resnet50@224 and efficientnet_b0@224 with a cold and a warm cost
   cache (``--profile-timing-only``: only that). The machine is shared: say what else ran (the JSON
   keeps the load average).

``--measurements FILE`` keeps what was timed (every calibration run and every evaluated head, with
the load average around each model): a later run given the same file fits and predicts from those
times without measuring again, so a change to the latency model is compared on the same
measurements; a pair missing from the file is measured and added.
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

import yaml

from optimizer.config import load_yaml_mapping, parse_device_profile
from optimizer.models import adapter_for, build_model, parse_model_spec, split_graph
from optimizer.profiler import (
    CLOCKS,
    RUNTIMES,
    Run,
    apply_compute_fit,
    clear_memory_caches,
    fit_compute,
    measure_heads,
    measure_samples,
    profile_spec,
    resolve_clock,
    spec_costs,
)

ROOT = Path(__file__).resolve().parents[1]
CALIBRATE = "mobilenetv2:alpha=1.0@224,resnet18@160,mobilenet_v3_small@224,efficientnet_b0@160,regnet_x_400mf@160"
EVALUATE = (
    "mobilenetv2:alpha=0.35@96,mobilenetv2:alpha=0.5@160,mobilenetv2:alpha=0.75@224,mobilenetv2:alpha=1.0@96,"
    "mobilenetv2:alpha=1.0@160,resnet18@96,resnet18@224,resnet34@160,resnet50@96,resnet50@224,"
    "mobilenet_v3_small@96,mobilenet_v3_small@160,mobilenet_v3_large@96,mobilenet_v3_large@224,"
    "efficientnet_b0@96,efficientnet_b0@224,regnet_x_400mf@96,regnet_x_400mf@224"
)

# families as the target counts them: one calibration model each, other members evaluated
GROUP = {
    "mobilenetv2": "mobilenetv2",
    "resnet18": "resnet",
    "resnet34": "resnet",
    "resnet50": "resnet",
    "mobilenet_v3_small": "mobilenet_v3",
    "mobilenet_v3_large": "mobilenet_v3",
    "efficientnet_b0": "efficientnet",
    "regnet_x_400mf": "regnet",
}


def parse_pairs(text: str) -> list[tuple[str, int]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        spec, _, size = item.rpartition("@")
        pairs.append((str(parse_model_spec(spec)), int(size)))
    return pairs


def _load(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {"calibration": {}, "evaluation": {}}
    return json.loads(path.read_text())


def _save(path: Path | None, store: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(store, indent=1) + "\n")


MEASURED_NOW: list[str] = []  # the pairs this invocation timed (the rest came from --measurements)


def calibration_samples(pairs: list[tuple[str, int]], args: argparse.Namespace, store: dict[str, Any]) -> list[Run]:
    """Every segment alone and every head of each calibration pair, measured now or read from ``store``."""
    samples = []
    for spec, size in pairs:
        key = f"{spec}@{size}"
        if key not in store["calibration"]:
            MEASURED_NOW.append(key)
            load = os.getloadavg()
            runs = measure_samples(
                [(spec, size)], args.threads, args.repeats, runtime=args.runtime, rounds=args.rounds, clock=args.clock
            )
            store["calibration"][key] = {
                "load_average": [load, os.getloadavg()],
                "runs": [
                    {"head": r.head, "first": r.segments[0].k, "last": r.segments[-1].k, "ms": r.ms} for r in runs
                ],
            }
            _save(args.measurements, store)
        segments = spec_costs(spec, 10, size).segments
        for r in store["calibration"][key]["runs"]:
            samples.append(Run(segments[r["first"] - 1 : r["last"]], r["ms"], r["head"]))
    return samples


def measured_heads(spec: str, size: int, args: argparse.Namespace, store: dict[str, Any]) -> list[float]:
    """The median ms of every head k = 1..last of one evaluation pair, measured now or read from ``store``."""
    key = f"{spec}@{size}"
    if key not in store["evaluation"]:
        MEASURED_NOW.append(key)
        load = os.getloadavg()
        graph = split_graph(spec, build_model(spec, 10))
        timings = measure_heads(
            graph, size, None, args.threads, repeats=args.repeats, runtime=args.runtime, rounds=args.rounds,
            clock=args.clock,
        )  # fmt: skip
        store["evaluation"][key] = {
            "load_average": [load, os.getloadavg()],
            "ms": [t.median_ms for t in timings],
            "wall_ms": [t.wall_median_ms for t in timings],
        }
        _save(args.measurements, store)
    return list(store["evaluation"][key]["ms"])


def calibrated_host(samples: list, pairs: list[tuple[str, int]], args: argparse.Namespace, tmp: Path, cache=None):  # type: ignore[no-untyped-def]
    """profiles/host.yaml with the compute section fitted on ``samples`` (``cache``: weight_cache_bytes
    fixed there instead of fitted)."""
    data = load_yaml_mapping(ROOT / "profiles" / "host.yaml")
    fit = fit_compute(samples, float(data["memory"]["bytes_per_weight"]["value"]), cache)
    apply_compute_fit(data, fit, pairs, args.threads, args.runtime)
    path = tmp / f"host-{len(samples)}-{time.perf_counter_ns()}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=100))
    return parse_device_profile(load_yaml_mapping(path), path), fit


def evaluate(profile: Any, spec: str, size: int, measured: list[float]) -> dict[str, Any]:
    predicted = [row.latency_ms for row in profile_spec(profile, spec, size, 10).splits[1:]]
    errors = [(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    return {"model": spec, "input_size": size, "predicted_ms": predicted, "measured_ms": measured, "errors": errors}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [e for r in rows for e in r["errors"]]
    families: dict[str, list[float]] = {}
    for r in rows:
        families.setdefault(GROUP[parse_model_spec(r["model"]).family], []).extend(r["errors"])
    worst = sorted(
        ((abs(e), r["model"], r["input_size"], k, e) for r in rows for k, e in enumerate(r["errors"], start=1)),
        reverse=True,
    )[:12]
    return {
        "predictions": len(errors),
        "within_20pct": sum(abs(e) <= 0.2 for e in errors) / len(errors),
        "within_10pct": sum(abs(e) <= 0.1 for e in errors) / len(errors),
        "median_abs_error": statistics.median(abs(e) for e in errors),
        "by_family": {
            f: {
                "predictions": len(e),
                "within_20pct": sum(abs(x) <= 0.2 for x in e) / len(e),
                "median_abs_error": statistics.median(abs(x) for x in e),
            }
            for f, e in sorted(families.items())
        },
        "worst": [{"model": m, "input_size": s, "k": k, "error": e} for _, m, s, k, e in worst],
    }


PROFILE_TIMED = (("resnet50", 224), ("efficientnet_b0", 224))


def profile_timing(profile: Any, rounds: int = 3) -> dict[str, Any]:
    """``profile_spec`` in this process with an empty cost cache (cold: trace and count), with the disk
    cache only (as a new process: trace and read), and warm (the in-process table, as every trial of
    a search asks); and ``split-opt profile`` as a new process, with an empty cache and again. Each
    figure is the lowest of ``rounds`` tries."""
    out: dict[str, Any] = {}
    for spec, size in PROFILE_TIMED:
        cold, disk, warm, cli_cold, cli_warm = [], [], [], [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                old = os.environ.get("SPLIT_OPT_CACHE_DIR")
                os.environ["SPLIT_OPT_CACHE_DIR"] = tmp
                try:
                    clear_memory_caches()
                    t0 = time.perf_counter()
                    profile_spec(profile, spec, size, 1000)
                    cold.append(time.perf_counter() - t0)
                    clear_memory_caches()
                    t0 = time.perf_counter()
                    profile_spec(profile, spec, size, 1000)  # a new process: trace + read the disk cache
                    disk.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    for _ in range(1000):
                        profile_spec(profile, spec, size, 1000)  # every trial of a search
                    warm.append((time.perf_counter() - t0) / 1000)
                finally:
                    if old is None:
                        os.environ.pop("SPLIT_OPT_CACHE_DIR")
                    else:
                        os.environ["SPLIT_OPT_CACHE_DIR"] = old
                    clear_memory_caches()
            with tempfile.TemporaryDirectory() as tmp:
                cli_cold.append(_cli_profile(spec, size, Path(tmp)))
                cli_warm.append(_cli_profile(spec, size, Path(tmp)))
        out[f"{spec}@{size}"] = {
            "profile_spec_cold_s": round(min(cold), 3),
            "profile_spec_disk_cache_s": round(min(disk), 3),
            "profile_spec_warm_call_us": round(min(warm) * 1e6, 2),
            "cli_cold_s": round(min(cli_cold), 2),
            "cli_warm_s": round(min(cli_warm), 2),
        }
    return out


def _cli_profile(spec: str, size: int, cache: Path) -> float:
    """Wall seconds of ``split-opt profile --model SPEC --input-size SIZE --num-classes 1000`` as a new
    process (interpreter start and imports included) with ``cache`` as its cost cache."""
    cmd = [sys.executable, "-m", "optimizer", "profile", "--device", str(ROOT / "profiles" / "pi4.yaml")]
    cmd += ["--model", spec, "--input-size", str(size), "--num-classes", "1000", "--format", "json"]
    t0 = time.perf_counter()
    subprocess.run(cmd, env={**os.environ, "SPLIT_OPT_CACHE_DIR": str(cache)}, check=True, capture_output=True)
    return time.perf_counter() - t0


def print_profile_timing(timing: dict[str, Any]) -> None:
    for pair, t in timing.items():
        print(
            f"profile_spec {pair}: {t['profile_spec_cold_s']} s cold, {t['profile_spec_disk_cache_s']} s from the disk "
            f"cache, {t['profile_spec_warm_call_us']} us per call warm; `split-opt profile`: {t['cli_cold_s']} s cold, "
            f"{t['cli_warm_s']} s warm (new process)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runtime", choices=RUNTIMES, default="onnxruntime")
    parser.add_argument("--clock", choices=CLOCKS, default="auto", help="auto: the thread's CPU time with 1 thread")
    parser.add_argument("--calibrate-on", default=CALIBRATE)
    parser.add_argument("--evaluate", default=EVALUATE)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--measurements", type=Path, default=None, help="read and keep the timings here")
    parser.add_argument("--profile-timing-only", action="store_true", help="only time profile_spec and the CLI")
    parser.add_argument("--no-profile-timing", action="store_true", help="leave out the profile_spec and CLI times")
    args = parser.parse_args()
    if args.profile_timing_only:
        load_before = os.getloadavg()
        host = parse_device_profile(load_yaml_mapping(ROOT / "profiles" / "host.yaml"), ROOT / "profiles" / "host.yaml")
        timing = profile_timing(host)
        print_profile_timing(timing)
        if args.out:
            doc = {"profile_timing": timing, "load_average_before": load_before, "load_average_after": os.getloadavg()}
            args.out.write_text(json.dumps(doc, indent=1) + "\n")
        return
    calib, pairs = parse_pairs(args.calibrate_on), parse_pairs(args.evaluate)
    overlap = set(calib) & set(pairs)
    if overlap:
        raise SystemExit(f"evaluation pairs must not be calibration pairs: {sorted(overlap)}")
    t_start, load_before = time.time(), os.getloadavg()
    store = _load(args.measurements)
    clock = resolve_clock(args.clock, args.threads)
    if store.setdefault("clock", clock) != clock:
        raise SystemExit(f"{args.measurements} holds {store['clock']} times, not {clock}")
    samples = calibration_samples(calib, args, store)
    with tempfile.TemporaryDirectory() as tmp:
        host, fit = calibrated_host(samples, calib, args, Path(tmp))
        segment_host, segment_fit = calibrated_host([s for s in samples if not s.head], calib, args, Path(tmp))
        uncached_host, uncached_fit = calibrated_host(samples, calib, args, Path(tmp), 0.0)  # the model before
        print(
            f"calibrated on {len(calib)} models, {fit.samples} runs: rms relative error "
            f"{fit.rms_relative_error:.1%}; {fit.values}",
            flush=True,
        )
        rows, segment_rows, uncached_rows = [], [], []
        for spec, size in pairs:
            adapter_for(spec).check_input_size(size)
            measured = measured_heads(spec, size, args, store)
            rows.append(evaluate(host, spec, size, measured))
            segment_rows.append(evaluate(segment_host, spec, size, measured))
            uncached_rows.append(evaluate(uncached_host, spec, size, measured))
            errs = rows[-1]["errors"]
            print(
                f"{spec:24s}@{size:3d}: whole model predicted {rows[-1]['predicted_ms'][-1]:7.2f} ms, measured "
                f"{measured[-1]:7.2f} ms; {sum(abs(e) <= 0.2 for e in errs)}/{len(errs)} splits within +-20 %, "
                f"median |err| {statistics.median(map(abs, errs)):.1%}, worst {max(errs, key=abs):+.1%}",
                flush=True,
            )
        timing = {} if args.no_profile_timing else profile_timing(host)
    result, segments_only, uncached = summary(rows), summary(segment_rows), summary(uncached_rows)
    print(
        f"{result['predictions']} predictions: {result['within_20pct']:.1%} within +-20 % (target >= 90 %), "
        f"{result['within_10pct']:.1%} within +-10 %, median |error| {result['median_abs_error']:.1%}"
    )
    for family, f in result["by_family"].items():
        print(
            f"  {family:14s} {f['predictions']:4d} predictions, {f['within_20pct']:.1%} within +-20 %, "
            f"median |error| {f['median_abs_error']:.1%}"
        )
    print(
        "worst: " + "; ".join(f"{w['model']}@{w['input_size']} k={w['k']} {w['error']:+.0%}" for w in result["worst"])
    )
    print(
        f"fitted on segments alone instead: {segments_only['within_20pct']:.1%} within +-20 %, "
        f"median |error| {segments_only['median_abs_error']:.1%}"
    )
    print(
        f"fitted with weight_cache_bytes = 0 instead (every weight byte streams, the model before that key): "
        f"{uncached['within_20pct']:.1%} within +-20 %, {uncached['within_10pct']:.1%} within +-10 %, "
        f"median |error| {uncached['median_abs_error']:.1%}"
    )
    print_profile_timing(timing)
    if args.out:
        doc = {
            "runtime": args.runtime,
            "threads": args.threads,
            "clock": clock,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "calibrated_on": [f"{s}@{n}" for s, n in calib],
            "fit": fit.values,
            "fit_rms_relative_error": fit.rms_relative_error,
            "fit_runs": fit.samples,
            **result,
            "segments_only_fit": {
                "fit": segment_fit.values,
                **{k: v for k, v in segments_only.items() if k != "worst"},
            },
            "no_weight_cache_fit": {
                "fit": uncached_fit.values,
                "fit_rms_relative_error": uncached_fit.rms_relative_error,
                **{k: v for k, v in uncached.items() if k != "worst"},
            },
            "profile_timing": timing,
            "wall_s": round(time.time() - t_start),
            "measurements": str(args.measurements) if args.measurements else None,
            "measured_in_this_run": MEASURED_NOW,  # the load averages below are this run's, not the stored pairs'
            "load_average_when_measured": {  # 1, 5 and 15 minutes, before and after each pair was timed
                f"{s}@{n}": store[part][f"{s}@{n}"]["load_average"]
                for part, used in (("calibration", calib), ("evaluation", pairs))
                for s, n in used
            },
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "models": rows,
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
