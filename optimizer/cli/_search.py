"""``split-opt search``: the Optuna study over (model, input size, split k, codec) for one device."""

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
from optimizer.config import load_device_profile, load_network_profile, load_search_space
from optimizer.errors import UserError
from optimizer.models import DEFAULT_SEARCH_SPACE
from optimizer.profiler import cache_dir
from optimizer.report import write_report
from optimizer.search import SAMPLERS, Limits, SearchRequest, build_evaluator, run_search
from optimizer.system import DEFAULT_OBJECTIVES, METRICS, TRANSPORTS, check_objectives

__all__ = ["DEFAULT_SPACE", "add_search_parser"]

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)

DEFAULT_SPACE = Path(__file__).resolve().parents[2] / "search_spaces" / DEFAULT_SEARCH_SPACE


def add_search_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="find the Pareto-optimal splits and codecs for a device and budget",
        description="An Optuna multi-objective study over named metrics of the whole path (device, "
        "coding, network, server; by default: maximise val accuracy, minimise mean payload bytes and "
        "device_ms), under the payload budget, the device's memory and any deadline or cap you give. "
        "Writes reports/NAME/ (study storage, pareto.json, the interactive report index.html); "
        "running the same --study again resumes it.",
    )
    p.add_argument("--device", type=Path, required=True, help="a device profile, e.g. profiles/pi4.yaml")
    p.add_argument(
        "--network",
        type=Path,
        default=None,
        help="a network profile (profiles/networks/*.yaml) replacing the device profile's own link",
    )
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
    p.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="http",
        help="how the device half sends payloads: one HTTP request each (`infer`), or one persistent "
        "WebSocket stream (`infer --stream`, about 8 bytes per inference on top of the payload); "
        "the system model counts its bytes (default: %(default)s)",
    )
    p.add_argument(
        "--objectives",
        default=",".join(DEFAULT_OBJECTIVES),
        help=f"2-4 metrics to optimise, comma-separated, from {', '.join(METRICS)} (default: %(default)s)",
    )
    p.add_argument("--max-latency-ms", type=float, default=None, help="deadline on e2e_ms (device + transfer + server)")
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frames per second: e2e_ms within 1/F, and device_ms and the uplink's time per frame each within 1/F",
    )
    p.add_argument("--max-energy-mj", type=float, default=None, help="cap on energy_mj per inference on the device")
    p.add_argument("--min-accuracy", type=float, default=None, help="minimum val accuracy in [0, 1]")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=_search)


def _limits(args: argparse.Namespace) -> Limits:
    if args.budget_kb <= 0:
        raise UserError(f"--budget-kb must be > 0, got {args.budget_kb}")
    if args.min_accuracy is not None and not 0 <= args.min_accuracy <= 1:
        raise UserError(f"--min-accuracy must be in [0, 1], got {args.min_accuracy}")
    for flag, value in (
        ("--max-latency-ms", args.max_latency_ms),
        ("--fps", args.fps),
        ("--max-energy-mj", args.max_energy_mj),
    ):
        if value is not None and value <= 0:
            raise UserError(f"{flag} must be > 0, got {value:g}")
    return Limits(args.budget_kb * 1000, args.max_latency_ms, args.fps, args.max_energy_mj, args.min_accuracy)


def _request(args: argparse.Namespace) -> SearchRequest:
    limits = _limits(args)
    objectives = check_objectives([name.strip() for name in args.objectives.split(",") if name.strip()])
    device, space = load_device_profile(args.device), load_search_space(args.search_space)
    if args.network is not None:
        device = device.with_network(load_network_profile(args.network))
    link = f"-{device.network.name}" if args.network is not None else ""
    name = args.study or f"{space.name}-{device.name}{link}-{args.budget_kb:g}kb"
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UserError(f"--study must be letters, digits, '-', '_' or '.', got {name!r}")
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
        objectives,
        args.transport,
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
        best = max(
            (
                t.user_attrs["metrics"]["accuracy"]
                for t in finished
                if t.user_attrs.get("feasible") and "metrics" in t.user_attrs
            ),
            default=None,
        )
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
    codec = {k: v for k, v in p.items() if k not in ("model", "input_size", "k", "split", "codec")}
    extra = " ".join(f"{k}={v}" for k, v in codec.items())
    where = f"k={p['k']} ({p['split']})" if p.get("split") else f"k={p['k']}"
    return f"{p['model']} size={p['input_size']} {where} {p['codec']} {extra}".strip()


def _times(entry: dict[str, Any]) -> list[str]:
    m = entry["metrics"]
    return [f"{m.get(name, float('nan')):.2f}" for name in ("device_ms", "transfer_ms", "server_ms", "e2e_ms")]


def _print(doc: dict[str, Any], request: SearchRequest) -> None:
    print(
        f"study {doc['study']}: {doc['n_complete']} trials complete ({doc['n_feasible']} feasible) on "
        f"{doc['device']} over {doc['network']} ({doc['transport']}), budget {doc['budget_bytes'] / 1000:g} KB, "
        f"objectives {', '.join(doc['objectives'])}; wrote {request.out_dir / 'pareto.json'}"
    )
    rows = [
        [
            str(e["trial"]),
            _describe(e),
            f"{e['val_accuracy']:.4f}",
            f"{e['test_accuracy']:.4f}",
            f"{e['payload_bytes_mean']:.0f}",
            f"{e['metrics']['wire_bytes']:.0f}",
            *_times(e),
            "yes" if e["feasible"] else "no",
        ]
        for e in doc["pareto"]
    ]
    head = ["trial", "configuration", "val acc", "test acc", "payload B", "wire B", "device ms", "transfer ms"]
    print(table(rows, [*head, "server ms", "e2e ms", "feasible"]))
    best = doc["best"]
    if best is None:
        print(doc["message"])
    else:
        lo, hi = best["test_accuracy_ci"]
        device, transfer, server, e2e = _times(best)
        print(
            f"best (highest val accuracy meeting every constraint): trial {best['trial']}: {_describe(best)}; "
            f"val {best['val_accuracy']:.4f}, test {best['test_accuracy']:.4f} [{lo:.4f}, {hi:.4f}]; "
            f"{best['payload_bytes_mean']:.0f} B payload, {best['metrics']['wire_bytes']:.0f} B on the link; "
            f"{device} ms device + {transfer} ms transfer + {server} ms server = {e2e} ms end to end"
        )
