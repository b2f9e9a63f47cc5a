"""``split-opt export reports/NAME --adaptive (--max-latency-ms D | --fps F) --out deploy/NAME``.

The configurations the study's rule picks somewhere over the uplink range, for the deadline given
(re-priced from every completed trial's stored terms, as the study's own bandwidth sweep is, but at
this deadline), each rebuilt exactly as ``export --trial N`` rebuilds it, written as one bundle with
the policy (optimizer.deploy._policy_build, _adaptive_export). The policy is also written to the
study's folder (``adaptive-policy.json``), where the report shows it.

Kept apart from _export so that the single-configuration path can change without this one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from optimizer.errors import UserError
from optimizer.search import Evaluator, Limits, config_key, entry_of, modern_trial, trial_metrics
from optimizer.system import SweepCandidate

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["POLICY_FILE", "add_adaptive_args", "export_adaptive"]

POLICY_FILE = "adaptive-policy.json"
# Constraints that depend on the deadline or the rate: re-priced here, not read from the study.
_RE_PRICED = frozenset({"e2e_over_deadline", "device_over_frame", "link_over_frame", "latency_over_deadline"})
_NETWORK_KEYS = ("uplink_kbps", "downlink_kbps", "rtt_ms", "mss_bytes", "per_packet_overhead_bytes")


def add_adaptive_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-latency-ms", type=float, default=None, help="--adaptive: the deadline on e2e_ms")
    p.add_argument(
        "--fps", type=float, default=None, help="--adaptive: frames per second (deadline and frame time 1/F)"
    )
    p.add_argument("--min-kbps", type=float, default=10.0, help="--adaptive: the lowest uplink rate to plan for")
    p.add_argument("--max-kbps", type=float, default=1e6, help="--adaptive: the highest uplink rate to plan for")
    p.add_argument(
        "--min-range-ratio",
        type=float,
        default=1.0,
        help="--adaptive: a rate range narrower than this ratio (top / bottom) goes to the configuration of the "
        "range below, which meets the deadline there too: fewer configurations, a little accuracy lost (default: "
        "1, the study's rule exactly)",
    )


def _study(args: argparse.Namespace, pareto: dict[str, Any]) -> optuna.Study:
    storage = args.storage or f"sqlite:///{args.report / 'study.db'}"
    return optuna.load_study(study_name=pareto["study"], storage=storage)


def candidates(trials: list[optuna.trial.FrozenTrial]) -> list[SweepCandidate]:
    """Every completed trial with the system model's terms, its val accuracy, and whether it meets the
    constraints that do not depend on the deadline or the rate (budget, memory, energy, accuracy)."""
    out = []
    for t in trials:
        costs, names = t.user_attrs.get("costs"), t.user_attrs.get("constraint_names")
        if t.state != optuna.trial.TrialState.COMPLETE or not costs or not names:
            continue  # running, failed, or from before the system model
        values = dict(zip(names, t.user_attrs["constraints"], strict=True))
        static_ok = all(v <= 0 for name, v in values.items() if name not in _RE_PRICED)
        out.append(SweepCandidate(t.number, trial_metrics(t)["accuracy"], costs, static_ok))
    return out


def _network(pareto: dict[str, Any]) -> dict[str, Any]:
    """The study's link, as the device's estimator needs it (values of the profile's quantities)."""
    section = (pareto.get("device_profile") or {}).get("network")
    if not section:
        raise UserError("pareto.json has no device profile (a study from before the system model); search again")
    doc: dict[str, Any] = {"name": section.get("name", pareto.get("network"))}
    for key in _NETWORK_KEYS:
        value = section[key]
        doc[key] = float(value["value"] if isinstance(value, dict) else value)
    return doc


def _entry(trial: int, pareto: dict[str, Any], study: optuna.Study, evaluator: Evaluator) -> dict[str, Any]:
    """The study's entry for a trial: from the Pareto set, else re-scored on test (as --trial N does)."""
    for entry in pareto["pareto"]:
        if entry["trial"] == trial:
            return entry  # type: ignore[no-any-return]
    frozen = modern_trial(next(t for t in study.get_trials(deepcopy=False) if t.number == trial))
    return entry_of(frozen, evaluator.evaluate(config_key(frozen), "test"))


def _report_doc(out: Path, manifest: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the study's folder keeps of the exported policy (the report's policy table reads it)."""
    configs = [
        {
            "tag": c["tag"],
            "trial": e["trial"],
            "params": e["params"],
            "val_accuracy": e["val_accuracy"],
            "test_accuracy": e["test_accuracy"],
            "payload_bytes_mean": e["payload_bytes_mean"],
        }
        for c, e in zip(manifest["configurations"], entries, strict=True)
    ]
    return {"bundle": str(out), "policy": manifest["policy"], "configurations": configs}


def export_adaptive(
    args: argparse.Namespace,
    pareto: dict[str, Any],
    evaluator: Evaluator,
    spec_of: Any,
    sign_key: Ed25519PrivateKey | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write the adaptive bundle; (its manifest, the study's entry of each configuration by tag).
    ``spec_of(entry)``: the ExportSpec of one study entry (the single export's own)."""
    from optimizer.deploy._adaptive_export import export_adaptive_bundle
    from optimizer.deploy._policy_build import build_policy

    if args.max_latency_ms is None and args.fps is None:
        raise UserError("--adaptive needs a deadline: give --max-latency-ms D or --fps F")
    if args.min_range_ratio < 1:
        raise UserError(f"--min-range-ratio must be at least 1 (1: every range), got {args.min_range_ratio:g}")
    if not 0 < args.min_kbps < args.max_kbps:
        raise UserError(f"--min-kbps must be positive and below --max-kbps, got {args.min_kbps:g}, {args.max_kbps:g}")
    limits = Limits(float(pareto["budget_bytes"]), max_latency_ms=args.max_latency_ms, fps=args.fps)
    study = _study(args, pareto)
    plan = build_policy(
        candidates(study.get_trials(deepcopy=False)),
        limits.deadline_ms,
        limits.frame_ms,
        _network(pareto),
        str(pareto.get("transport") or "http"),
        args.min_kbps,
        args.max_kbps,
        args.min_range_ratio,
    )
    entries = [_entry(trial, pareto, study, evaluator) for trial in plan.trials]
    manifest = export_adaptive_bundle([spec_of(e) for e in entries], plan.doc, args.out, args.force, sign_key)
    doc = _report_doc(args.out, manifest, entries)
    (args.report / POLICY_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return manifest, entries
