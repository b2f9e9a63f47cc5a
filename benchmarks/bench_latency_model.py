"""How well does the calibrated latency model predict measured head latency on this machine?

    python benchmarks/bench_latency_model.py [--runtime onnxruntime|torch] [--threads 1] [--repeats 9] [--out FILE]

1. Calibrate (the same fit as `split-opt calibrate`) on two models, by default 1.0/224 and 0.35/96.
2. For every other (alpha, size) in {0.35, 0.5, 0.75, 1.0} x {96, 160, 224} and every split
   k = 1..n+1, predict the cumulative head latency and measure it (the real head as one graph,
   batch 1, median of --repeats runs after warm-up, fixed threads, in --runtime: ONNX Runtime as a
   deployed head runs, or PyTorch eager).
3. Report the share of predictions within +-10 % and +-20 % and the median absolute error.
Also times `profile_model` for one model with a cold and a warm cost cache (the CLI target: < 5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from optimizer.config import load_device_profile
from optimizer.models import build_head, build_mobilenetv2, split_range
from optimizer.profiler import RUNTIMES, compiled, fixed_threads, model_costs, profile_model, time_ms
from optimizer.profiler._calibrate import calibrate_profile

ALPHAS = (0.35, 0.5, 0.75, 1.0)
SIZES = (96, 160, 224)
ROOT = Path(__file__).resolve().parents[1]


def measured_heads(alpha: float, size: int, threads: int, repeats: int, runtime: str) -> list[float]:
    """The whole head for every k, timed as one call (one ONNX graph per head with onnxruntime)."""
    model = build_mobilenetv2(alpha, 10).eval()
    x = torch.randn(1, 3, size, size)
    with fixed_threads(threads):
        return [
            time_ms(compiled(build_head(model, k), x, runtime, threads), 2, repeats).median_ms
            for k in split_range(model)
        ]


def profile_timing() -> dict[str, float]:
    profile = load_device_profile(ROOT / "profiles" / "pi4.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("SPLIT_OPT_CACHE_DIR")
        os.environ["SPLIT_OPT_CACHE_DIR"] = tmp
        model_costs.cache_clear()
        t0 = time.perf_counter()
        profile_model(profile, 1.0, 224, 1000)
        cold = time.perf_counter() - t0
        model_costs.cache_clear()
        t0 = time.perf_counter()
        profile_model(profile, 1.0, 224, 1000)
        warm = time.perf_counter() - t0
        if old is None:
            os.environ.pop("SPLIT_OPT_CACHE_DIR")
        else:
            os.environ["SPLIT_OPT_CACHE_DIR"] = old
    return {"profile_cold_cache_s": round(cold, 3), "profile_warm_cache_s": round(warm, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--runtime", choices=RUNTIMES, default="onnxruntime")
    parser.add_argument("--calibrate-on", default="1.0:224,0.35:96")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    calib = [(float(a), int(s)) for a, s in (item.split(":") for item in args.calibrate_on.split(","))]
    with tempfile.TemporaryDirectory() as tmp:
        host, fit, _ = calibrate_profile(
            ROOT / "profiles" / "host.yaml",
            Path(tmp) / "h.yaml",
            calib,
            args.threads,
            repeats=args.repeats,
            runtime=args.runtime,
        )
    print(f"calibrated on {calib}: rms residual {fit.residual_ms:.3f} ms per block; {fit.values}", flush=True)
    errors, rows = [], []
    for alpha in ALPHAS:
        for size in SIZES:
            if (alpha, size) in calib:
                continue
            predicted = [s.latency_ms for s in profile_model(host, alpha, size, 10).splits]
            measured = measured_heads(alpha, size, args.threads, args.repeats, args.runtime)
            errs = [(p - m) / m for p, m in zip(predicted[1:], measured[1:], strict=True)]
            errors.extend(errs)
            rows.append(
                {
                    "alpha": alpha,
                    "input_size": size,
                    "predicted_ms": predicted,
                    "measured_ms": measured,
                    "relative_errors": errs,
                }
            )
            print(
                f"{alpha:4g}/{size:3d}: full head predicted {predicted[-1]:7.2f} ms, measured "
                f"{measured[-1]:7.2f} ms; median |err| over k {statistics.median(map(abs, errs)):.1%}, "
                f"worst {max(map(abs, errs)):.1%}",
                flush=True,
            )
    within10 = sum(abs(e) <= 0.10 for e in errors) / len(errors)
    within20 = sum(abs(e) <= 0.20 for e in errors) / len(errors)
    median_abs = statistics.median(abs(e) for e in errors)
    timing = profile_timing()
    print(
        f"{len(errors)} predictions: {within10:.1%} within +-10 %, {within20:.1%} within +-20 %, "
        f"median |error| {median_abs:.1%} (targets: >= 90 % within +-20 %, median <= 10 %)"
    )
    print(
        f"profile_model 1.0/224: {timing['profile_cold_cache_s']} s cold cache, {timing['profile_warm_cache_s']} s warm"
    )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "runtime": args.runtime,
                    "threads": args.threads,
                    "repeats": args.repeats,
                    "calibrated_on": calib,
                    "fit": fit.values,
                    "fit_rms_residual_ms": fit.residual_ms,
                    "predictions": len(errors),
                    "within_10pct": within10,
                    "within_20pct": within20,
                    "median_abs_error": median_abs,
                    **timing,
                    "models": rows,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
