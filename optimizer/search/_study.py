"""Running a study: storage, sampler, reference points, the optimisation loop, and pareto.json.

The study lives in an Optuna storage (SQLite in reports/NAME/ by default), so running the same
study again resumes it and other workers can join through ``--storage``. Completed trials are
committed one by one: a crash or Ctrl-C loses at most the trials in flight.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import platform
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.study import StudyDirection

from optimizer import __version__
from optimizer.config import DeviceProfile, SearchSpace
from optimizer.errors import UserError
from optimizer.search._constraints import Limits, infeasibility
from optimizer.search._engine import Evaluator
from optimizer.search._models import model_macs, resolve_models
from optimizer.search._objective import Objective, SearchChoices, enumerate_params
from optimizer.search._pareto import SELECTION_RULE, pareto_entries, pick_best, trial_metrics
from optimizer.system import DEFAULT_OBJECTIVES, METRICS, SweepCandidate, bandwidth_sweep

__all__ = [
    "SAMPLERS",
    "SearchRequest",
    "build_evaluator",
    "make_sampler",
    "open_study",
    "evaluator_choices",
    "reference_points",
    "run_search",
    "summarize",
]

SAMPLERS = ("nsga2", "tpe", "gp", "random", "grid")
# Constraints whose value does not depend on the uplink rate (the bandwidth sweep keeps them as they are).
_RATE_FREE = ("payload_over_budget", "memory_overflow", "energy_over_cap", "accuracy_below_minimum")


@dataclass(frozen=True)
class SearchRequest:
    space: SearchSpace
    device: DeviceProfile
    limits: Limits
    study_name: str
    out_dir: Path
    storage: str | None = None
    trials: int | None = 150
    timeout_s: float | None = None
    sampler: str = "nsga2"
    seed: int = 0
    workers: int = 1
    dataset: str | None = None
    cache_dir: Path | None = None
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    transport: str = "http"

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.out_dir / 'study.db'}"


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name in ("random", "grid"):  # grid: every configuration is enqueued (see _enqueue_grid)
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def open_study(request: SearchRequest) -> optuna.Study:
    request.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # heartbeats (stale RUNNING trials -> FAIL) are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(request.storage_url, heartbeat_interval=30, grace_period=90)
    except Exception as exc:
        raise UserError(
            f"cannot open the study storage {request.storage_url!r}: {exc}; give a reachable "
            "sqlite:/// or postgresql:// URL"
        ) from exc
    directions = [StudyDirection[METRICS[name].direction.upper()] for name in request.objectives]
    study = optuna.create_study(
        storage=storage,
        study_name=request.study_name,
        directions=directions,
        sampler=make_sampler(request.sampler, request.seed),
        load_if_exists=True,
    )
    _check_objectives(study, request)
    _check_not_legacy(study, request)
    _fail_trials_without_heartbeat(study, storage)
    return study


def _check_not_legacy(study: optuna.Study, request: SearchRequest) -> None:
    """Studies written before model specs named models by alpha and splits by block index."""
    if any("alpha" in t.params and "model" not in t.params for t in study.get_trials(deepcopy=False)):
        raise UserError(
            f"study {request.study_name!r} was written by split-opt < 0.4 (models by alpha, splits by block "
            "index); it still opens in `split-opt report` and `export`, but cannot be resumed: pass a new "
            "--study name (or delete its folder) to search again"
        )


def _fail_trials_without_heartbeat(study: optuna.Study, storage: optuna.storages.RDBStorage) -> None:
    """Optuna fails a RUNNING trial whose heartbeat went stale, but skips one that never recorded a
    heartbeat: its worker was killed within milliseconds of starting it. A live worker records one
    at once, so such a trial older than the grace period is dead too (tested by SIGKILL)."""
    import datetime as dt

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return
    with storage.engine.connect() as conn:
        beating = {int(row[0]) for row in conn.exec_driver_sql("SELECT trial_id FROM trial_heartbeats")}
    grace = dt.timedelta(seconds=float(storage.grace_period or 90))
    for trial in running:
        start = trial.datetime_start
        if start is None or trial._trial_id in beating:
            continue
        now = dt.datetime.now(start.tzinfo) if start.tzinfo else dt.datetime.now()
        if now - start > grace:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


def _check_objectives(study: optuna.Study, request: SearchRequest) -> None:
    """A resumed study keeps its objectives; a new one is named (optuna-dashboard shows the names)."""
    names = study.metric_names
    if names is None and study.trials:
        raise UserError(
            f"study {request.study_name!r} was written by an older split-opt without named metrics; it still opens "
            "in `split-opt report` and `export`, but cannot be resumed: pass a new --study name to search again"
        )
    if names is None:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and what optuna-dashboard reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(request.objectives))
    elif tuple(names) != request.objectives:
        raise UserError(
            f"study {request.study_name!r} optimises {','.join(names)}, not {','.join(request.objectives)}; "
            "pass the same --objectives to resume it, or a new --study name"
        )


def reference_points(choices: SearchChoices) -> list[dict[str, Any]]:
    """Always evaluated: the codecs' reference points at the output (the all-local split) of every
    model at every size; at each input size, for the model with the most MACs there, those at the
    input (the image baselines) and at its middle split (the uncompressed float16); and every trained
    instance (learned bottlenecks) at its own site."""
    models = choices.models
    refs: list[dict[str, Any]] = []

    def at(spec: str, size: int, k: int) -> None:
        base = {"model": spec, "input_size": size, "k": k}
        refs.extend({**base, **codec} for codec in choices.codecs.references(choices.site(spec, size, k)))

    sizes = sorted({s for m in models.values() for s in m.input_sizes})
    for size in sizes:
        here = [m for m in models.values() if size in m.input_sizes]
        for m in here:
            if m.last_k in m.ks:
                at(m.spec, size, m.last_k)
        biggest = max(here, key=lambda m: model_macs(m.spec, size))
        if 0 in biggest.ks:
            at(biggest.spec, size, 0)
        if biggest.middle_k is not None:
            at(biggest.spec, size, biggest.middle_k)
    for site in choices.sites():
        base = {"model": site.model, "input_size": site.input_size, "k": site.k}
        refs.extend({**base, **variant} for variant in choices.codecs.variant_references(site))
    return refs


def _enqueue_references(study: optuna.Study, choices: SearchChoices) -> int:
    if study.trials:
        return 0  # a resumed study already has them
    refs = reference_points(choices)
    for params in refs:
        study.enqueue_trial(choices.suggestion(params), user_attrs={"reference": True}, skip_if_exists=True)
    return len(refs)


def _enqueue_grid(study: optuna.Study, request: SearchRequest, choices: SearchChoices) -> None:
    """The grid sampler: configurations of the space in a seeded order, each once; the next
    ``request.trials`` not yet in the study are queued (so a resumed grid continues)."""
    import numpy as np

    grid = enumerate_params(choices)
    seen = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)}
    queued = 0
    for i in np.random.default_rng(request.seed).permutation(len(grid)):
        params = grid[int(i)]
        if tuple(sorted(params.items())) in seen:
            continue
        study.enqueue_trial(params)
        queued += 1
        if request.trials is not None and queued >= request.trials:
            return


# Called after each trial this process finishes, and about once a second (trial None) while it
# waits for the other worker processes: their trials are in the storage.
ProgressFn = Callable[[optuna.Study, optuna.trial.FrozenTrial | None], None]


def run_search(
    request: SearchRequest,
    evaluator: Evaluator,
    progress: ProgressFn | None = None,
    rescore_progress: Callable[[], object] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study for ``request.trials`` more trials, then write pareto.json.

    Setting ``stop`` (the CLI does on Ctrl-C) ends the study after the trial in progress; the
    summary is still written, and KeyboardInterrupt is raised afterwards.
    """
    started = time.time()
    study = open_study(request)
    choices = evaluator_choices(request.space, evaluator)
    references = _enqueue_references(study, choices)
    if request.sampler == "grid":
        _enqueue_grid(study, request, choices)
    trials = None if request.trials is None else request.trials + references
    shares = _shares(trials, request.workers)
    helpers = [_spawn_worker(request, share, i) for i, share in enumerate(shares[1:], start=1)]
    interrupted = False

    def progress_or_stop(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress:
            progress(study, trial)
        if stop is not None and stop.is_set():
            study.stop()

    try:
        _optimize(study, request, evaluator, shares[0], progress_or_stop)
        interrupted = stop is not None and stop.is_set()
    except KeyboardInterrupt:
        interrupted = True  # completed trials are already in the storage
    finally:
        for helper in helpers:
            while helper.is_alive():
                if interrupted or (stop is not None and stop.is_set()):
                    interrupted = True
                    helper.terminate()
                helper.join(timeout=1.0)
                if progress is not None and not interrupted:
                    progress(study, None)
    doc = summarize(study, request, evaluator, rescore_progress)
    doc["wall_time_s"] = round(time.time() - started, 1)
    doc["interrupted"] = interrupted
    (request.out_dir / "pareto.json").write_text(json.dumps(doc, indent=2) + "\n")
    if interrupted:
        raise KeyboardInterrupt
    return doc


def _shares(trials: int | None, workers: int) -> list[int | None]:
    """Split the trial count between workers (the first takes the remainder)."""
    if trials is None:
        return [None] * workers
    base = trials // workers
    return [base + trials % workers, *([base] * (workers - 1))]


def _optimize(
    study: optuna.Study,
    request: SearchRequest,
    evaluator: Evaluator,
    trials: int | None,
    progress: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None,
) -> None:
    objective = Objective(
        evaluator_choices(request.space, evaluator),
        evaluator,
        request.device,
        request.limits,
        request.objectives,
        request.transport,
    )
    study.optimize(
        objective,
        n_trials=trials,
        timeout=request.timeout_s,
        callbacks=[progress] if progress else [],
        catch=(),
        gc_after_trial=False,
    )


def _worker(request: SearchRequest, trials: int | None, index: int) -> None:
    """A helper process: its own evaluator (sharing the disk cache) on the same storage."""
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    seeded = replace(request, seed=request.seed + index)
    evaluator = build_evaluator(request.space, request.dataset, request.cache_dir)
    _optimize(open_study(seeded), seeded, evaluator, trials, None)


def _spawn_worker(request: SearchRequest, trials: int | None, index: int) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=_worker, args=(request, trials, index), daemon=True)
    process.start()
    return process


def summarize(
    study: optuna.Study,
    request: SearchRequest,
    evaluator: Evaluator,
    rescore_progress: Callable[[], object] | None = None,
) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]

    def score_test(configs: Any) -> Any:
        return evaluator.evaluate_many(configs, "test", rescore_progress)

    best_trial = pick_best(trials)
    entries, extra = pareto_entries(trials, score_test, request.objectives, [best_trial] if best_trial else [])
    best = None
    if best_trial is not None:
        on_front = [e for e in entries if e["trial"] == best_trial.number]
        best = on_front[0] if on_front else extra[0]
    payloads = [trial_metrics(t)["payload_bytes"] for t in complete if t.values]
    sizes = {s: len(evaluator.indices(s)) for s in ("calib", "val", "test")}
    return {
        "study": request.study_name,
        "device": request.device.name,
        "device_path": request.device.path,
        "network": request.device.network.name,
        "network_path": request.device.network.path,
        "transport": request.transport,
        "objectives": list(request.objectives),
        "constraints": request.limits.to_json(),
        "budget_bytes": request.limits.budget_bytes,
        "max_latency_ms": request.limits.max_latency_ms,
        "fps": request.limits.fps,
        "max_energy_mj": request.limits.max_energy_mj,
        "min_accuracy": request.limits.min_accuracy,
        "search_space": request.space.name,
        "search_space_path": str(Path(request.space.path).resolve()),  # `split-opt export` reads it
        "search_space_spec": request.space.to_json(),  # the report shows both in full
        "device_profile": request.device.to_json(),
        "dataset": evaluator.dataset.spec,
        "num_classes": evaluator.dataset.num_classes,
        "split_sizes": sizes,
        "sampler": request.sampler,
        "seed": request.seed,
        "n_trials": len(trials),
        "n_complete": len(complete),
        "n_feasible": sum(bool(t.user_attrs.get("feasible")) for t in complete),
        "smallest_payload_bytes": min(payloads, default=None),
        "pareto": entries,
        "best": best,
        "selection_rule": SELECTION_RULE,
        "message": None if best is not None else infeasibility(trials, request.limits),
        "bandwidth_sweep": _sweep(complete, request.limits),
        "versions": {
            "split-opt": __version__,
            "optuna": optuna.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }


def _sweep(complete: list[optuna.trial.FrozenTrial], limits: Limits) -> list[dict[str, Any]]:
    """Best configuration per uplink rate, re-priced from the trials' stored terms."""
    candidates = []
    for t in complete:
        costs, names = t.user_attrs.get("costs"), t.user_attrs.get("constraint_names")
        if not costs or not names:
            continue  # a trial from before the system model
        values = dict(zip(names, t.user_attrs["constraints"], strict=True))
        static_ok = all(values.get(name, 0.0) <= 0 for name in _RATE_FREE)
        candidates.append(SweepCandidate(t.number, trial_metrics(t)["accuracy"], costs, static_ok))
    return bandwidth_sweep(candidates, limits.deadline_ms, limits.frame_ms)


def build_evaluator(space: SearchSpace, dataset_spec: str | None = None, cache_dir: Path | None = None) -> Evaluator:
    """The evaluator for a space: its dataset (or an override), the seeded splits, its models."""
    from optimizer.data import make_splits, open_dataset

    dataset = open_dataset(dataset_spec or space.dataset)
    samples = {"calib": space.calib_samples, "val": space.val_samples}
    return Evaluator(dataset, make_splits(dataset), resolve_models(space), samples, cache_dir=cache_dir)


def evaluator_choices(space: SearchSpace, evaluator: Evaluator) -> SearchChoices:
    """What the sampler may choose: the evaluator's resolved models and the space's bottlenecks."""
    return SearchChoices(space, evaluator.models)
