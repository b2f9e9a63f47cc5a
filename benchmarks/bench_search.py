"""Search benchmark: trial throughput with the evaluation engine's caches vs a naive loop, and
search quality (hypervolume share of the exhaustive front) for each sampler on a reduced space.

    python benchmarks/bench_search.py [--val 300] [--shares 0.05,0.1,0.15] [--table FILE] [--out FILE]

Quality: every configuration of the reduced space (``mobilenetv2:alpha=0.35`` and
``mobilenetv2:alpha=1.0``, sizes 32 and 64, the 19 block boundaries between the input and the
logits, PCA channel geometry with 4 component counts x 4 bit widths, ANS) is evaluated once (the
real evaluation, on --val images of the val split). Splits are fx split indices k: the block
boundaries are ``SplitGraph.block_ks()`` (the older block k = 1..19, ``features.0`` ..
``features.18``; docs/models.md). Each sampler then runs a study whose objective looks those
results up, for several trial budgets (shares of the grid) and seeds; it picks the split as the
position 1..19 among the block boundaries (an integer, as the older block k was).
Hypervolume is computed on (1 - accuracy, log10 payload bytes, device latency ms), all minimised,
against two reference points (see compare_samplers). Payload budgets are not applied here.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna._hypervolume import compute_hypervolume

from optimizer.codecs import make_codec
from optimizer.config import ModelChoice, load_device_profile
from optimizer.data import make_splits, open_dataset
from optimizer.models import load_spec_model, split_graph
from optimizer.profiler import profile_spec
from optimizer.search import Config, Evaluator, legacy_params, make_sampler, resolve_model

ROOT = Path(__file__).resolve().parents[1]
MODELS, SIZES = ("mobilenetv2:alpha=0.35", "mobilenetv2:alpha=1.0"), (32, 64)
COMPONENTS, BITS = (2, 4, 8, 16), (2, 3, 4, 6)


def block_ks(spec: str) -> list[int]:
    """The fx split indices of the block boundaries between the input and the logits."""
    return split_graph(spec).block_ks()[1:-1]


def channels_at(spec: str, size: int) -> list[int]:
    """Channels of the activation at every fx split index."""
    return [p.shape[0] for p in split_graph(spec).points(size, macs=False)]


def pca(components: int, bits: int) -> dict[str, Any]:
    return {"kind": "pca", "geometry": "channel", "tile": 1, "components": components, "bits": bits, "coder": "ans"}


def grid() -> list[Config]:
    """Every configuration; component counts above the channel count at k are left out (the search
    clamps them to 'all channels', which the largest smaller count already covers)."""
    out = []
    for spec in MODELS:
        for size in SIZES:
            channels = channels_at(spec, size)
            for k in block_ks(spec):
                for c in (c for c in COMPONENTS if c <= channels[k]):
                    out.extend(Config.make(spec, size, k, pca(c, b)) for b in BITS)
    return out


def make_evaluator(dataset: Any, splits: Any, n: int, cache: Path | None = None) -> Evaluator:
    """The engine over the reduced space: the zoo's models at its sizes and block boundaries."""
    models = {spec: resolve_model(ModelChoice(spec, "zoo", SIZES, "blocks")) for spec in MODELS}
    return Evaluator(dataset, splits, models, {"calib": n, "val": n}, cache_dir=cache)


def objectives(evaluator: Evaluator, device: Any, config: Config) -> tuple[float, float, float]:
    result = evaluator.evaluate(config, "val")
    row = profile_spec(device, config.model, config.input_size, 10).splits[config.k]
    latency = row.latency_ms + result.encode_macs / device.compute.pointwise_macs_per_s.value * 1e3
    return result.accuracy, float(result.payload_bytes.mean()), latency


def naive_trial(dataset: Any, splits: Any, config: Config, n_val: int) -> None:
    """What a trial costs without the engine: load the model (plain eager form, torch.fx halves),
    run the head on calib and val, fit the codec, code every val sample, run the tail."""
    built = load_spec_model(config.model)
    graph = split_graph(config.model, built.at_size(config.input_size))
    head, tail = graph.head(config.k), graph.tail(config.k)
    size, prep = config.input_size, built.preprocessing
    with torch.no_grad():
        calib = head(dataset.batch(splits.calib[:n_val], size, prep)).numpy()
        val = head(dataset.batch(splits.val[:n_val], size, prep)).numpy()
        codec = make_codec(config.codec_params, calib.shape[1:])
        codec.fit(calib)
        decoded = np.stack([codec.decode(codec.encode(a)) for a in val])
        tail(torch.from_numpy(decoded))


def measure_throughput(dataset: Any, splits: Any, device: Any, sample: list[Config], n: int) -> dict[str, float]:
    """Seconds per trial for the same configurations: the naive loop; the engine from cold (empty
    memory and disk caches, which fill as the sequence goes, as in a first study); and the engine
    warm (the same splits with other bit widths: activations on disk or in memory, exported heads
    and tails and PCA bases where still in memory, as in a study's later trials)."""
    t0 = time.perf_counter()
    for config in sample:
        naive_trial(dataset, splits, config, n)
    naive_s = (time.perf_counter() - t0) / len(sample)
    cache = Path(tempfile.mkdtemp(prefix="bench-search-cache-"))  # empty: the cold pass fills it
    engine = make_evaluator(dataset, splits, n, cache)
    t0 = time.perf_counter()
    for config in sample:
        objectives(engine, device, config)
    cold_s = (time.perf_counter() - t0) / len(sample)
    t0 = time.perf_counter()
    for config in sample:
        params = {**config.codec_params, "bits": 5}
        objectives(engine, device, Config.make(config.model, config.input_size, config.k, params))
    warm_s = (time.perf_counter() - t0) / len(sample)
    shutil.rmtree(cache, ignore_errors=True)
    print(
        f"throughput ({len(sample)} trials, {n} calib + {n} val images): naive {naive_s:.2f} s/trial; engine cold "
        f"{cold_s:.2f} s/trial ({naive_s / cold_s:.1f}x); engine warm {warm_s:.2f} s/trial ({naive_s / warm_s:.1f}x)",
        flush=True,
    )
    return {
        "trials": len(sample),
        "images": n,
        "naive_s_per_trial": naive_s,
        "engine_cold_s_per_trial": cold_s,
        "engine_warm_s_per_trial": warm_s,
        "speedup_cold": naive_s / cold_s,
        "speedup_warm": naive_s / warm_s,
    }


def to_min(values: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - values[:, 0], np.log10(values[:, 1]), values[:, 2]])


def dominated(values: np.ndarray, v: np.ndarray) -> bool:
    """Whether some row of ``values`` is at least as good as ``v`` everywhere and better somewhere."""
    return bool(np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1)))


def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    keep = np.all(points < ref, axis=1)
    return float(compute_hypervolume(points[keep], ref)) if keep.any() else 0.0


def exhaustive_table(engine: Evaluator, device: Any, configs: list[Config], path: Path | None) -> dict[Config, Any]:
    """Objectives of every configuration; read from / written to ``path`` (JSON) when given, so the
    sampler comparison can be re-run without the exhaustive pass (a table written before model specs,
    by alpha and block k, is read as today's)."""
    if path is not None and path.is_file():
        rows = json.loads(path.read_text())
        places = [legacy_params({k: r[k] for k in ("model", "alpha", "input_size", "k") if k in r}) for r in rows]
        return {
            Config.make(p["model"], p["input_size"], p["k"], r["codec"]): tuple(r["values"])
            for p, r in zip(places, rows, strict=True)
        }
    t0 = time.perf_counter()
    table = {}
    for i, config in enumerate(configs):
        table[config] = objectives(engine, device, config)
        if i % 100 == 0:
            print(f"  exhaustive: {i}/{len(configs)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"  exhaustive: {len(configs)} configurations in {time.perf_counter() - t0:.0f} s", flush=True)
    if path is not None:
        rows = [
            {"model": c.model, "input_size": c.input_size, "k": c.k, "codec": c.codec_params, "values": list(v)}
            for c, v in table.items()
        ]
        path.write_text(json.dumps(rows) + "\n")
    return table


def run_sampler(name: str, seed: int, table: dict[Config, Any], n_trials: int) -> np.ndarray:
    """A study of ``n_trials`` whose objective looks the exhaustive results up; its values."""
    channels = {(m, s): channels_at(m, s) for m in MODELS for s in SIZES}
    blocks = {m: block_ks(m) for m in MODELS}
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"], sampler=make_sampler(name, seed))

    def lookup(trial: optuna.trial.Trial) -> tuple[float, float, float]:
        spec = trial.suggest_categorical("model", list(MODELS))
        size = trial.suggest_categorical("input_size", list(SIZES))
        k = blocks[spec][trial.suggest_int("block", 1, len(blocks[spec])) - 1]
        c = trial.suggest_categorical("components", list(COMPONENTS))
        c = min(c, max(x for x in COMPONENTS if x <= channels[(spec, size)][k]))
        b = trial.suggest_categorical("bits", list(BITS))
        return table[Config.make(spec, size, k, pca(c, b))]  # type: ignore[no-any-return]

    study.optimize(lookup, n_trials=n_trials)
    return to_min(np.array([t.values for t in study.trials]))


def compare_samplers(table: dict[Config, Any], samplers: list[str], seeds: int, shares: list[float]) -> dict:
    """Hypervolume share of the exhaustive front per sampler and trial budget, against two
    reference points: just beyond the worst value of each objective over the grid (lenient: much of
    the volume is easy to reach) and just beyond the exhaustive front's own worst values (strict)."""
    values = to_min(np.array(list(table.values())))
    front = values[[not dominated(values, v) for v in values]]
    refs = {
        "lenient": values.max(axis=0) + 1e-6 + 0.01 * np.abs(values.max(axis=0)),
        "strict": front.max(axis=0) + 1e-6 + 0.01 * np.abs(front.max(axis=0)),
    }
    full = {name: hypervolume(values, ref) for name, ref in refs.items()}
    out: dict[str, Any] = {"grid_size": len(values), "front_size": len(front), "results": []}
    for share in shares:
        n_trials = max(1, math.ceil(share * len(values)))
        for name in samplers:
            t0 = time.perf_counter()
            found = [run_sampler(name, seed, table, n_trials) for seed in range(seeds)]
            row: dict[str, Any] = {"sampler": name, "trials": n_trials, "grid_share": n_trials / len(values)}
            for ref_name, ref in refs.items():
                row[ref_name] = [hypervolume(f, ref) / full[ref_name] for f in found]
            row["s_per_study"] = (time.perf_counter() - t0) / seeds
            out["results"].append(row)
            print(
                f"{name:7s}: {n_trials:4d} trials ({row['grid_share']:.0%} of {len(values)}): hypervolume share "
                f"lenient {np.mean(row['lenient']):.3f}, strict {np.mean(row['strict']):.3f} (mean of {seeds} seeds; "
                f"strict per seed: {', '.join(f'{v:.3f}' for v in row['strict'])}); {row['s_per_study']:.1f} s/study",
                flush=True,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--val", type=int, default=300)
    parser.add_argument("--shares", default="0.05,0.1,0.15", help="trial budgets as shares of the grid")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samplers", default="nsga2,tpe,random,gp")
    parser.add_argument("--throughput-trials", type=int, default=12)
    parser.add_argument("--skip-throughput", action="store_true", help="measure the search quality only")
    parser.add_argument("--skip-quality", action="store_true", help="measure the throughput only")
    parser.add_argument("--table", type=Path, default=None, help="JSON cache of the exhaustive evaluation")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    device = load_device_profile(ROOT / "profiles" / "pi4.yaml")
    dataset = open_dataset("fashion-mnist")
    splits = make_splits(dataset)
    configs = grid()
    doc: dict[str, Any] = {"val_samples": args.val}
    if not args.skip_throughput:
        rng = np.random.default_rng(0)
        sample = [configs[i] for i in rng.choice(len(configs), args.throughput_trials, replace=False)]
        doc["throughput"] = measure_throughput(dataset, splits, device, sample, args.val)
    if not args.skip_quality:
        engine = make_evaluator(dataset, splits, args.val)
        table = exhaustive_table(engine, device, configs, args.table)
        shares = [float(x) for x in args.shares.split(",")]
        doc["quality"] = compare_samplers(table, args.samplers.split(","), args.seeds, shares)
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
