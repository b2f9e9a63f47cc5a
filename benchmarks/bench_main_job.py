"""The main job's search time, this tree against an older one, on the same configurations, in one run.

    python benchmarks/bench_main_job.py --baseline-tree /work/old-checkout [--trials 150] [--out FILE]

1. The baseline tree (a checkout of an older split-opt, e.g. ``git worktree add /tmp/old 44845d3``)
   runs the README's main job (`split-opt search --device profiles/pi4.yaml --budget-kb 5`, the
   default space, ``--trials N``) with an empty cache, as a subprocess with that tree first on the
   Python path.
2. This tree replays exactly the configurations the baseline evaluated, in the baseline's order
   (its reference points and sampled trials, mapped from alpha and block index to model spec and
   fx split index), through ``run_search`` with an empty cache: the same trials, the same data, and
   the Pareto set re-scored on the test split at the end.

Each run's time is split into the trials (first trial start to last trial end, from the study) and
the rest (set-up and the test re-scoring of the Pareto set: pareto.json's wall time minus the
trials). Times are wall seconds on this machine while it runs whatever else it runs: compare the
ratio of the two runs in one invocation, not the seconds across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

ROOT = Path(__file__).resolve().parents[1]
PI4 = ROOT / "profiles" / "pi4.yaml"
SPACE = ROOT / "search_spaces" / "mobilenetv2-fashion-mnist.yaml"


def _phases(study: optuna.Study, wall_s: float) -> dict[str, float]:
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    start = min(t.datetime_start for t in done if t.datetime_start is not None)
    end = max(t.datetime_complete for t in done if t.datetime_complete is not None)
    trials_s = (end - start).total_seconds()
    return {"trials_s": round(trials_s, 1), "rest_s": round(wall_s - trials_s, 1), "wall_s": round(wall_s, 1)}


def run_baseline(tree: Path, work: Path, trials: int) -> dict[str, Any]:
    """The older tree's main job as a subprocess (its own code first on the path), empty cache."""
    env = {**os.environ, "PYTHONPATH": str(tree), "SPLIT_OPT_CACHE_DIR": str(work / "cache-baseline")}
    cmd = [sys.executable, "-m", "optimizer", "search", "--device", str(tree / "profiles" / "pi4.yaml")]
    cmd += ["--budget-kb", "5", "--trials", str(trials), "--reports-dir", str(work / "reports"), "--study", "base"]
    cmd += ["--format", "json"]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the baseline search failed ({done.returncode}): {done.stderr[-2000:]}")
    doc = json.loads(done.stdout)
    study = optuna.load_study(study_name="base", storage=f"sqlite:///{work / 'reports' / 'base' / 'study.db'}")
    return {"doc": doc, "study": study, **_phases(study, wall)}


def _replayed(study: optuna.Study) -> list[tuple[dict[str, Any], bool]]:
    """The baseline's configurations in its order, as this tree's plain trial parameters (model spec,
    ``input_size``, fx ``k``), each with whether it was a reference point."""
    from optimizer.search import legacy_params

    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return [
        (legacy_params(dict(t.params)), bool(t.user_attrs.get("reference")))
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE
    ]


def run_current(work: Path, params: list[tuple[dict[str, Any], bool]]) -> dict[str, Any]:
    """This tree's search over exactly ``params`` (enqueued under the names this space's trials
    suggest them by: with several models, ``input_size_SPEC`` and ``k_SPEC``), with an empty cache."""
    os.environ["SPLIT_OPT_CACHE_DIR"] = str(work / "cache-current")
    from optimizer.config import load_device_profile, load_search_space
    from optimizer.profiler import cache_dir
    from optimizer.search import Limits, SearchRequest, build_evaluator, evaluator_choices, open_study, run_search

    space = load_search_space(SPACE)
    request = SearchRequest(
        space, load_device_profile(PI4), Limits(5000.0), "current", work / "reports" / "current",
        trials=len(params), sampler="random", cache_dir=cache_dir(),
    )  # fmt: skip
    started = time.perf_counter()
    study = open_study(request)
    evaluator = build_evaluator(space, None, request.cache_dir)
    choices = evaluator_choices(space, evaluator)
    for p, reference in params:
        study.enqueue_trial(choices.suggestion(p), user_attrs={"reference": True} if reference else None)
    doc = run_search(request, evaluator)
    wall = time.perf_counter() - started
    repeats = sum("repeat_of" in t.user_attrs for t in study.get_trials(deepcopy=False))
    return {"doc": doc, "study": study, "repeats_not_rescored": repeats, **_phases(study, wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-tree", type=Path, required=True, help="a checkout of the older split-opt")
    parser.add_argument("--trials", type=int, default=150, help="sampled trials of the baseline (README: 150)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    loads = [os.getloadavg()]  # the machine is shared: what else ran shows in the load average
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = run_baseline(args.baseline_tree.resolve(), work, args.trials)
        loads.append(os.getloadavg())
        params = _replayed(base["study"])
        current = run_current(work, params)
        loads.append(os.getloadavg())
    result = {
        "load_average": {"start": loads[0], "after_baseline": loads[1], "after_current": loads[2]},
        "trials": len(params),
        "baseline": {k: v for k, v in base.items() if k.endswith("_s")},
        "current": {k: v for k, v in current.items() if k.endswith("_s")},
        "repeats_not_rescored": current["repeats_not_rescored"],
        "pareto_entries": {"baseline": len(base["doc"]["pareto"]), "current": len(current["doc"]["pareto"])},
        "best": {
            name: {key: run["doc"]["best"].get(key) for key in ("params", "val_accuracy", "test_accuracy")}
            if run["doc"]["best"] else None
            for name, run in (("baseline", base), ("current", current))
        },
    }  # fmt: skip
    for phase in ("trials_s", "rest_s", "wall_s"):
        result[f"ratio_{phase}"] = round(current[phase] / base[phase], 3) if base[phase] else None
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
