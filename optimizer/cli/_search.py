"""``split-opt search``: the Optuna study over (alpha, input size, k, codec) for one device."""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import optuna
from tqdm import tqdm

from optimizer.cli._common import emit_json, positive_int, table
from optimizer.cli._report import describe_report, report_json
from optimizer.config import load_device_profile, load_search_space
from optimizer.errors import UserError
from optimizer.profiler import cache_dir
from optimizer.report import write_report
from optimizer.search import SAMPLERS, Limits, SearchRequest, build_evaluator, run_search

__all__ = ["DEFAULT_SPACE", "add_search_parser"]

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)

DEFAULT_SPACE = Path(__file__).resolve().parents[2] / "search_spaces" / "mobilenetv2-fashion-mnist.yaml"


def add_search_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="find the Pareto-optimal splits and codecs for a device and budget",
        description="An Optuna multi-objective study: maximise val accuracy, minimise mean "
        "payload bytes and predicted device latency, under the payload budget and "
        "the device's memory. Writes reports/NAME/ (study storage, pareto.json, the "
        "interactive report index.html); "
        "running the same --study again resumes it.",
    )
    p.add_argument("--device", type=Path, required=True, help="a device profile, e.g. profiles/pi4.yaml")
    p.add_argument("--budget-kb", type=float, required=True, help="payload budget per inference, in KB (1000 B)")
    p.add_argument(
        "--search-space",
        type=Path,
        default=DEFAULT_SPACE,
        help="a search space file (default: the embedded Fashion-MNIST space)",
    )
    p.add_argument("--dataset", default=None, help="override the space's dataset spec")
    p.add_argument(
        "--trials",
        type=positive_int,
        default=150,
        help="sampled trials to run now, besides the reference points (default: %(default)s)",
    )
    p.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    p.add_argument("--study", default=None, help="study name (default: SPACE-DEVICE-BUDGETkb)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite in reports/NAME/)")
    p.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where studies are written")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes on this machine sharing the study (each also uses the disk cache)",
    )
    p.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="nsga2",
        help="Optuna sampler (default: %(default)s, the best of those measured at small trial budgets in "
        "benchmarks/bench_search.py; grid enumerates the space)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-latency-ms", type=float, default=None, help="deadline for head + encoding on the device")
    p.add_argument("--min-accuracy", type=float, default=None, help="minimum val accuracy in [0, 1]")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=_search)


def _request(args: argparse.Namespace) -> SearchRequest:
    if args.budget_kb <= 0:
        raise UserError(f"--budget-kb must be > 0, got {args.budget_kb}")
    if args.min_accuracy is not None and not 0 <= args.min_accuracy <= 1:
        raise UserError(f"--min-accuracy must be in [0, 1], got {args.min_accuracy}")
    device, space = load_device_profile(args.device), load_search_space(args.search_space)
    name = args.study or f"{space.name}-{device.name}-{args.budget_kb:g}kb"
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UserError(f"--study must be letters, digits, '-', '_' or '.', got {name!r}")
    limits = Limits(args.budget_kb * 1000, args.max_latency_ms, args.min_accuracy)
    return SearchRequest(
        space,
        device,
        limits,
        name,
        args.reports_dir / name,
        args.storage,
        args.trials,
        args.timeout,
        args.sampler,
        args.seed,
        args.workers,
        args.dataset,
        cache_dir(),
    )


def _search(args: argparse.Namespace) -> int:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    request = _request(args)
    evaluator = build_evaluator(request.space, request.dataset, request.cache_dir)
    quiet = args.format == "json"
    bar = tqdm(total=request.trials, desc=f"search {request.study_name}", unit="trial", disable=quiet)
    started = datetime.datetime.now()  # Optuna stamps trials with naive local times

    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial | None) -> None:
        # Read from the storage, so trials finished by the other worker processes count too.
        finished = study.get_trials(deepcopy=False, states=_FINISHED)
        this_run = [t for t in finished if t.datetime_start is not None and t.datetime_start >= started]
        references = sum(bool(t.user_attrs.get("reference")) for t in this_run)
        bar.update(len(this_run) - references - bar.n)
        best = max((t.values[0] for t in finished if t.user_attrs.get("feasible") and t.values), default=None)
        bar.set_postfix(references=references, best_feasible_acc="-" if best is None else f"{best:.4f}")

    rescoring: list[tqdm] = []

    def rescored() -> None:
        if not rescoring:
            bar.close()
            rescoring.append(tqdm(desc="re-scoring the Pareto set on the test split", unit="config", disable=quiet))
        rescoring[0].update(1)

    stop = threading.Event()

    def on_ctrl_c(signum: int, frame: object) -> None:
        # NOTE: raising KeyboardInterrupt at an arbitrary point can land inside SQLAlchemy, which
        # swallows it; so the first Ctrl-C asks the study to stop after the trial in progress.
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        stop.set()
        sys.stderr.write("\nsplit-opt: stopping after the trial in progress (Ctrl-C again to stop now)\n")

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        doc = run_search(request, evaluator, progress, rescored, stop)
    except KeyboardInterrupt:
        bar.close()
        sys.stderr.write(
            f"split-opt: interrupted; completed trials are kept in {request.storage_url} and "
            f"{request.out_dir / 'pareto.json'}; run the same command to resume\n"
        )
        _report_after_interrupt(request)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    bar.close()
    for extra in rescoring:
        extra.close()
    report = write_report(request.out_dir, request.storage)
    if quiet:
        emit_json({**doc, "report": report_json(report)})
    else:
        _print(doc, request)
        print(describe_report(report))
    return 0


def _report_after_interrupt(request: SearchRequest) -> None:
    """The report of what completed (a further Ctrl-C while it is written stops at once)."""
    try:
        report = write_report(request.out_dir, request.storage)
    except UserError as exc:
        sys.stderr.write(f"split-opt: no report written ({exc})\n")
        return
    sys.stderr.write(f"split-opt: {describe_report(report)}\n")


def _describe(entry: dict[str, Any]) -> str:
    p = entry["params"]
    codec = {k: v for k, v in p.items() if k not in ("alpha", "input_size", "k", "codec")}
    extra = " ".join(f"{k}={v}" for k, v in codec.items())
    return f"alpha={p['alpha']:g} size={p['input_size']} k={p['k']} {p['codec']} {extra}".strip()


def _print(doc: dict[str, Any], request: SearchRequest) -> None:
    print(
        f"study {doc['study']}: {doc['n_complete']} trials complete ({doc['n_feasible']} feasible) on "
        f"{doc['device']}, budget {doc['budget_bytes'] / 1000:g} KB; wrote {request.out_dir / 'pareto.json'}"
    )
    rows = [
        [
            str(e["trial"]),
            _describe(e),
            f"{e['val_accuracy']:.4f}",
            f"{e['test_accuracy']:.4f}",
            f"{e['payload_bytes_mean']:.0f}",
            f"{e['device_latency_ms']:.2f}",
            "yes" if e["feasible"] else "no",
        ]
        for e in doc["pareto"]
    ]
    print(table(rows, ["trial", "configuration", "val acc", "test acc", "payload B", "device ms", "feasible"]))
    best = doc["best"]
    if best is None:
        print(doc["message"])
    else:
        lo, hi = best["test_accuracy_ci"]
        print(
            f"best within budget: trial {best['trial']}: {_describe(best)}; test accuracy "
            f"{best['test_accuracy']:.4f} [{lo:.4f}, {hi:.4f}], {best['payload_bytes_mean']:.0f} B per "
            f"inference, {best['device_latency_ms']:.2f} ms on the device"
        )
