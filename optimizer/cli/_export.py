"""``split-opt export``: a study's chosen configuration as a deployment bundle.

The CLI is the one place that may read the study (optimizer.search) and write a bundle
(optimizer.deploy): it rebuilds the configuration exactly as the study scored it (the model's torch.fx halves at its
input size, the codec fitted on the same calib images) and hands both to deploy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from optimizer.cli._common import add_format, emit_json
from optimizer.cli._export_adaptive import add_adaptive_args, export_adaptive
from optimizer.cli._search import DEFAULT_SPACE
from optimizer.config import SearchSpace, load_search_space
from optimizer.errors import UserError
from optimizer.models import parse_model_spec
from optimizer.profiler import cache_dir
from optimizer.search import Config, Evaluator, build_evaluator, config_key, entry_of, legacy_params, modern_trial

if TYPE_CHECKING:
    from optimizer.deploy import ExportSpec

__all__ = ["add_export_parser"]


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a study's configuration as a bundle: head.onnx, codec state, tail.onnx, manifest",
        description="Rebuild one configuration of a study (the model at its input size, the codec fitted "
        "on the same calib images) and write deploy/NAME/: head.onnx (device half, outputs integer "
        "symbols), codec.npz, tail.onnx (server half) and manifest.json (sha256 of every file).",
    )
    p.add_argument("report", type=Path, help="the study's folder, e.g. reports/NAME (holds pareto.json)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--best", action="store_true", help="the study's best configuration within the budget")
    which.add_argument("--trial", type=int, help="the trial number (see pareto.json or the report)")
    which.add_argument(
        "--adaptive",
        action="store_true",
        help="every configuration the study's rule picks at some uplink rate for the deadline given "
        "(--max-latency-ms or --fps), in one bundle with the rate -> configuration policy",
    )
    add_adaptive_args(p)
    p.add_argument("--out", type=Path, required=True, help="the bundle folder to write, e.g. deploy/NAME")
    p.add_argument(
        "--search-space",
        type=Path,
        default=None,
        help="the study's search space file, for a pareto.json without search_space_spec (older studies)",
    )
    p.add_argument("--storage", default=None, help="the study's Optuna storage (default: study.db in the report)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument(
        "--sign-key",
        type=Path,
        default=None,
        help="sign the manifest with this private key (from `split-opt keygen`): writes manifest.sig",
    )
    add_format(p)
    p.set_defaults(func=_export)


def _read_pareto(report: Path) -> dict[str, Any]:
    path = report / "pareto.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist; give a study folder written by `split-opt search` (reports/NAME)")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _stored_space(doc: dict[str, Any]) -> SearchSpace:
    """The search space as the study used it (pareto.json's search_space_spec, SearchSpace.to_json)."""
    try:
        return SearchSpace.from_json(doc)
    except UserError as exc:
        raise UserError(f"pareto.json's search_space_spec is not readable ({exc}); pass --search-space") from exc


def _comparable(space: SearchSpace) -> dict[str, Any]:
    return {k: v for k, v in json.loads(json.dumps(space.to_json())).items() if k != "path"}


def _space(args: argparse.Namespace, pareto: dict[str, Any]) -> SearchSpace:
    """The study's own search space, stored in pareto.json (the YAML file may have changed since);
    a study written before it was stored reads --search-space or the file it names."""
    if pareto.get("search_space_spec"):
        stored = _stored_space(pareto["search_space_spec"])
        if args.search_space is not None and _comparable(load_search_space(args.search_space)) != _comparable(stored):
            raise UserError(
                f"{args.search_space} is not the search space the study used (pareto.json stores that one); "
                "drop --search-space"
            )
        return stored
    candidates = [
        args.search_space,
        pareto.get("search_space_path"),
        DEFAULT_SPACE.parent / f"{pareto['search_space']}.yaml",
    ]
    for candidate in candidates:
        if candidate is not None and Path(candidate).is_file():
            return load_search_space(candidate)
    raise UserError(
        f"the study's search space {pareto['search_space']!r} is not in {DEFAULT_SPACE.parent}; "
        "pass its file with --search-space"
    )


def _trial_entry(args: argparse.Namespace, pareto: dict[str, Any], evaluator: Evaluator) -> dict[str, Any]:
    """The study's entry for --best / --trial N; a trial outside the Pareto set is re-scored on test."""
    if args.best:
        if pareto["best"] is None:
            raise UserError(f"the study has no best configuration ({pareto.get('message')}); pick one with --trial N")
        return pareto["best"]  # type: ignore[no-any-return]
    for entry in pareto["pareto"]:
        if entry["trial"] == args.trial:
            return entry  # type: ignore[no-any-return]
    storage = args.storage or f"sqlite:///{args.report / 'study.db'}"
    study = optuna.load_study(study_name=pareto["study"], storage=storage)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == args.trial]
    if not trials or trials[0].state != optuna.trial.TrialState.COMPLETE:
        raise UserError(f"trial {args.trial} is not a completed trial of study {pareto['study']!r}; see pareto.json")
    trial = modern_trial(trials[0])
    return entry_of(trial, evaluator.evaluate(config_key(trial), "test"))


_PLACE = ("model", "input_size", "k", "split", "codec")


def _config(entry: dict[str, Any]) -> Config:
    """The configuration of a pareto.json entry (entries before model specs name alpha and a block k)."""
    p = dict(entry["params"])
    codec = {"kind": p["codec"], **{k: v for k, v in p.items() if k not in (*_PLACE, "alpha")}}
    place = legacy_params({k: v for k, v in p.items() if k in ("alpha", "model", "input_size", "k")})
    return Config.make(place["model"], place["input_size"], place["k"], codec)


_EXPECTED_KEYS = (
    "val_accuracy",
    "test_accuracy",
    "test_accuracy_ci",
    "payload_bytes_mean",
    "payload_bytes_p95",
    "test_payload_bytes_mean",
    "device_latency_ms",
    "device_macs",
)


def _expected(entry: dict[str, Any]) -> dict[str, Any]:
    """What the study measured for this configuration, for verify and for the people deploying it."""
    expected = {key: entry.get(key) for key in _EXPECTED_KEYS}
    if entry.get("metrics"):  # studies with named metrics: every one of them (device_ms, e2e_ms, ...)
        expected["metrics"] = entry["metrics"]
    return expected


def _spec(args: argparse.Namespace, pareto: dict[str, Any], evaluator: Evaluator, entry: dict[str, Any]) -> ExportSpec:
    config = _config(entry)
    dataset = evaluator.dataset
    built = evaluator.built(config.model)
    graph = evaluator.graph(config.model, config.input_size)
    model_info = {
        "spec": config.model,
        "family": parse_model_spec(config.model).family,
        "input_size": config.input_size,
        "num_classes": dataset.num_classes,
        "weights": built.weights,
        "classes": list(dataset.classes),
        "preprocessing": built.preprocessing.to_json(),
        "split": graph.names()[config.k],
    }
    data = {
        "spec": dataset.spec,
        "split_seed": evaluator.splits.seed,
        "test_samples": len(evaluator.indices("test")),
        "image_mode": "L" if dataset.native(int(evaluator.indices("test")[0])).ndim == 2 else "RGB",
    }
    study = {"name": pareto["study"], "trial": entry["trial"], "device": pareto["device"]}
    study["budget_bytes"] = pareto["budget_bytes"]
    from optimizer.deploy import ExportSpec  # deploy (onnxruntime, onnx) loads only when used

    head, tail = graph.head(config.k), graph.tail(config.k)
    codec = evaluator.codec(config)
    return ExportSpec(args.out.name, head, tail, model_info, config.k, len(graph), codec, _expected(entry), data, study)


def _export(args: argparse.Namespace) -> int:
    from optimizer.deploy import export_bundle
    from optimizer.deploy._signing import load_private_key

    if not args.adaptive and (args.max_latency_ms is not None or args.fps is not None):
        raise UserError("--max-latency-ms and --fps choose the configurations of an --adaptive bundle; add --adaptive")
    sign_key = load_private_key(args.sign_key) if args.sign_key is not None else None  # before any work
    pareto = _read_pareto(args.report)
    evaluator = build_evaluator(_space(args, pareto), pareto.get("dataset"), cache_dir())
    if args.adaptive:
        written = export_adaptive(args, pareto, evaluator, _spec_of(args, pareto, evaluator), sign_key)
        return _print_adaptive(args, *written)
    entry = _trial_entry(args, pareto, evaluator)
    manifest = export_bundle(_spec(args, pareto, evaluator, entry), args.out, args.force, sign_key)
    if args.format == "json":
        emit_json(manifest)
        return 0
    e = manifest["expected"]
    print(
        f"wrote {args.out}: trial {entry['trial']}, k={manifest['k']}, codec {manifest['codec']['kind']}; "
        f"expected test accuracy {e['test_accuracy']:.4f}, {e['payload_bytes_mean']:.0f} B per inference, "
        f"{e['device_latency_ms']:.2f} ms on {pareto['device']}"
    )
    for name, digest in manifest["files"].items():
        print(f"  {name}  sha256 {digest}")
    if sign_key is not None:
        from optimizer.deploy._signing import key_id

        print(f"  manifest.json signed by key {key_id(sign_key.public_key())} (manifest.sig)")
    return 0


def _spec_of(args: argparse.Namespace, pareto: dict[str, Any], evaluator: Evaluator) -> Any:
    return lambda entry: _spec(args, pareto, evaluator, entry)


def _print_adaptive(args: argparse.Namespace, manifest: dict[str, Any], entries: list[dict[str, Any]]) -> int:
    if args.format == "json":
        emit_json(manifest)
        return 0
    policy = manifest["policy"]
    deadline = f"{policy['deadline_ms']:g} ms deadline" + (f", {policy['fps']:g} fps" if policy["fps"] else "")
    print(f"wrote {args.out}: {len(entries)} configurations, {deadline}, {len(manifest['files'])} files")
    for config, entry in zip(manifest["configurations"], entries, strict=True):
        print(
            f"  tag {config['tag']}: trial {entry['trial']}, k={config['k']}, codec {config['codec']['kind']}, "
            f"val accuracy {entry['val_accuracy']:.4f}, test {entry['test_accuracy']:.4f}, "
            f"{entry['payload_bytes_mean']:.0f} B"
        )
    for r in policy["ranges"]:
        high = "inf" if r["high_kbps"] is None else f"{r['high_kbps']:.4g}"
        note = "" if r["meets_deadline"] else " (no configuration meets the deadline: the one needing the least rate)"
        print(f"  uplink {r['low_kbps']:.4g} - {high} kbps -> tag {r['tag']}{note}")
    return 0
