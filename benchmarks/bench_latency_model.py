"""How well does the calibrated latency model predict measured head latency, on models it was not fitted on?

    python benchmarks/bench_latency_model.py [--threads 1] [--repeats 7] [--rounds 4] [--out FILE]
        [--calibrate-on SPEC@SIZE,...] [--evaluate SPEC@SIZE,...] [--runtime onnxruntime|torch]

1. Calibrate on one (model, size) per family (default: mobilenetv2:alpha=1.0@224, resnet18@160,
   mobilenet_v3_small@224, efficientnet_b0@160, regnet_x_400mf@160): every fx segment alone and
   every head timed, and the same fit as `split-opt calibrate` (random weights: values do not change
   the time). For comparison the fit is also made on the segments alone.
2. For every (model, size) pair NOT used in calibration (other sizes, other members: resnet34/50,
   mobilenet_v3_large, other mobilenetv2 alphas) and every split k = 1..last, predict the
   cumulative head latency (profile_spec on the calibrated profile) and measure it: the real head
   as one ONNX graph, batch 1, the lowest median of --rounds rounds of --repeats runs (the rounds
   go over all heads of a model in turn), fixed threads.
3. Report the share of predictions within +-20 % (the target: >= 90 %) and +-10 %, per family and
   overall, the median |error|, and the worst cases. Also times profile_spec with a cold and a warm
   cost cache. The machine is shared: say what else ran (the JSON keeps the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from optimizer.config import load_yaml_mapping, parse_device_profile
from optimizer.models import adapter_for, build_model, parse_model_spec, split_graph
from optimizer.profiler import (
    RUNTIMES,
    apply_compute_fit,
    clear_memory_caches,
    fit_compute,
    measure_heads,
    measure_samples,
    profile_spec,
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


def calibrated_host(samples: list, pairs: list[tuple[str, int]], args: argparse.Namespace, tmp: Path):  # type: ignore[no-untyped-def]
    """profiles/host.yaml with the compute section fitted on ``samples``."""
    data = load_yaml_mapping(ROOT / "profiles" / "host.yaml")
    fit = fit_compute(samples, float(data["memory"]["bytes_per_weight"]["value"]))
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


def profile_timing(profile: Any) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("SPLIT_OPT_CACHE_DIR")
        os.environ["SPLIT_OPT_CACHE_DIR"] = tmp
        try:
            clear_memory_caches()
            t0 = time.perf_counter()
            profile_spec(profile, "resnet50", 224, 1000)
            cold = time.perf_counter() - t0
            clear_memory_caches()
            t0 = time.perf_counter()
            profile_spec(profile, "resnet50", 224, 1000)  # a new process: trace + read the disk cache
            warm_disk = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(1000):
                profile_spec(profile, "resnet50", 224, 1000)  # every trial of a search
            warm = (time.perf_counter() - t0) / 1000
        finally:
            os.environ.pop("SPLIT_OPT_CACHE_DIR") if old is None else os.environ.__setitem__("SPLIT_OPT_CACHE_DIR", old)
            clear_memory_caches()
    return {
        "profile_cold_cache_s": round(cold, 3),
        "profile_disk_cache_s": round(warm_disk, 3),
        "profile_warm_call_us": round(warm * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runtime", choices=RUNTIMES, default="onnxruntime")
    parser.add_argument("--calibrate-on", default=CALIBRATE)
    parser.add_argument("--evaluate", default=EVALUATE)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    calib, pairs = parse_pairs(args.calibrate_on), parse_pairs(args.evaluate)
    overlap = set(calib) & set(pairs)
    if overlap:
        raise SystemExit(f"evaluation pairs must not be calibration pairs: {sorted(overlap)}")
    t_start, load_before = time.time(), os.getloadavg()
    samples = measure_samples(calib, args.threads, args.repeats, runtime=args.runtime, rounds=args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        host, fit = calibrated_host(samples, calib, args, Path(tmp))
        segment_host, segment_fit = calibrated_host([s for s in samples if not s.head], calib, args, Path(tmp))
        print(
            f"calibrated on {len(calib)} models, {fit.samples} runs: rms relative error "
            f"{fit.rms_relative_error:.1%}; {fit.values}",
            flush=True,
        )
        rows, segment_rows = [], []
        for spec, size in pairs:
            adapter_for(spec).check_input_size(size)
            graph = split_graph(spec, build_model(spec, 10))
            timings = measure_heads(
                graph, size, None, args.threads, repeats=args.repeats, runtime=args.runtime, rounds=args.rounds
            )
            measured = [t.median_ms for t in timings]
            rows.append(evaluate(host, spec, size, measured))
            segment_rows.append(evaluate(segment_host, spec, size, measured))
            errs = rows[-1]["errors"]
            print(
                f"{spec:24s}@{size:3d}: whole model predicted {rows[-1]['predicted_ms'][-1]:7.2f} ms, measured "
                f"{measured[-1]:7.2f} ms; {sum(abs(e) <= 0.2 for e in errs)}/{len(errs)} splits within +-20 %, "
                f"median |err| {statistics.median(map(abs, errs)):.1%}, worst {max(errs, key=abs):+.1%}",
                flush=True,
            )
        timing = profile_timing(host)
    result, segments_only = summary(rows), summary(segment_rows)
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
        f"profile_spec resnet50@224: {timing['profile_cold_cache_s']} s cold, {timing['profile_disk_cache_s']} s "
        f"from the disk cache, {timing['profile_warm_call_us']} us per call warm"
    )
    if args.out:
        doc = {
            "runtime": args.runtime,
            "threads": args.threads,
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
            **timing,
            "wall_s": round(time.time() - t_start),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "models": rows,
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
