"""The study's context (device, network, constraints, data, search space, sampler, versions,
time) and the messages that say what happened when a study is unusual: nothing completed,
nothing feasible, one trial."""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

import optuna
import plotly

from optimizer.report._records import StudyResults

__all__ = ["ContextInfo", "context_info", "status_messages"]

_DEVICE_SECTIONS = ("compute", "memory", "energy", "coding", "server")


class ContextInfo(NamedTuple):
    facts: list[tuple[str, str]]  # (what, value)
    device_name: str
    device_description: str
    device_rows: list[tuple[str, str, str]]  # (parameter, value, source)
    space_rows: list[tuple[str, str]]  # (parameter, values searched)
    network_name: str
    network_description: str
    network_rows: list[tuple[str, str, str]]  # (parameter, value, source)
    constraint_rows: list[tuple[str, str]]  # (constraint name, its rule)


def _limits(s: dict[str, Any]) -> str:
    active = (s.get("constraints") or {}).get("active")
    if isinstance(active, dict):
        return ", ".join(str(rule) for rule in active.values())
    parts = []
    if s.get("budget_bytes") is not None:
        parts.append(f"payload <= {s['budget_bytes'] / 1000:g} KB")
    parts.append("head within device memory")
    if s.get("max_latency_ms") is not None:
        parts.append(f"device latency <= {s['max_latency_ms']:g} ms")
    if s.get("min_accuracy") is not None:
        parts.append(f"val accuracy >= {s['min_accuracy']:g}")
    return ", ".join(parts)


def _facts(results: StudyResults) -> list[tuple[str, str]]:
    s = results.summary
    states = Counter(t.state.lower() for t in results.trials)
    sizes = s.get("split_sizes") or {}
    versions = {
        **(s.get("versions") or {}),
        "plotly (report)": plotly.__version__,
        "optuna (report)": optuna.__version__,
    }
    wall = s.get("wall_time_s")
    return [
        ("study", results.study_name),
        ("folder", str(results.report_dir)),
        ("dataset", str(s.get("dataset", "unknown (no pareto.json)"))),
        ("split sizes (images)", ", ".join(f"{k} {v}" for k, v in sizes.items()) or "unknown"),
        ("objectives", ", ".join(results.objectives)),
        ("constraints", _limits(s)),
        ("best chosen by", str(s.get("selection_rule") or "highest test accuracy within the budget (older study)")),
        ("trials", f"{len(results.trials)} ({', '.join(f'{n} {state}' for state, n in sorted(states.items()))})"),
        ("feasible trials", str(sum(t.feasible for t in results.complete))),
        ("sampler", f"{s.get('sampler', 'unknown')} (seed {s.get('seed', '?')})"),
        ("search space", str(s.get("search_space", "unknown"))),
        ("wall time of the last run", f"{wall:g} s" if wall is not None else "unknown"),
        ("first trial started / last ended", f"{results.first_start or '-'} / {results.last_end or '-'}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]


def _device_rows(results: StudyResults) -> list[tuple[str, str, str]]:
    if results.device is None:
        return []
    doc = results.device.to_json()
    rows: list[tuple[str, str, str]] = []
    for section in _DEVICE_SECTIONS:
        rows += _quantity_rows(section, doc.get(section, {}))
    return rows


def _network_rows(results: StudyResults) -> list[tuple[str, str, str]]:
    if results.device is None:
        return []
    doc = results.device.to_json().get("network", {})
    return _quantity_rows("network", {k: v for k, v in doc.items() if k not in ("name", "description")})


def _constraint_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """(constraint, rule) of every active constraint; older studies: their limits in words."""
    active = (s.get("constraints") or {}).get("active")
    if isinstance(active, dict):
        return [(str(name), str(rule)) for name, rule in active.items()]
    return [("limits (older study)", _limits(s))] if s else []


def _quantity_rows(prefix: str, doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows of one profile section: quantities with their sources, texts, nested sections."""
    rows: list[tuple[str, str, str]] = []
    for name, value in doc.items():
        if isinstance(value, dict) and "value" in value:
            rows.append((f"{prefix}.{name}", f"{value['value']:g}", str(value["source"])))
        elif isinstance(value, dict):
            rows += _quantity_rows(f"{prefix}.{name}", value)
        elif value not in ("", None):
            rows.append((f"{prefix}.{name}", str(value), ""))
    return rows


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _space_rows(results: StudyResults) -> list[tuple[str, str]]:
    """The search space file as the search read it (pareto.json), else what the trials show of it."""
    spec = results.summary.get("search_space_spec")
    if not isinstance(spec, dict):
        return [(name, _text(values)) for name, values in results.space.items()]
    rows = []
    for key, value in spec.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        rows += [(f"{key}.{sub}" if sub else key, _text(v)) for sub, v in items]
    return rows


def context_info(results: StudyResults) -> ContextInfo:
    device = results.device
    space_rows = _space_rows(results)
    return ContextInfo(
        _facts(results),
        device.name if device else str(results.summary.get("device", "unknown")),
        device.description if device else "",
        _device_rows(results),
        space_rows,
        device.network.name if device else str(results.summary.get("network") or "unknown"),
        device.network.description if device else "",
        _network_rows(results),
        _constraint_rows(results.summary),
    )


def status_messages(results: StudyResults) -> list[str]:
    """What a reader must know before the figures, in plain words (empty for a normal study)."""
    done = results.complete
    messages = list(results.notes)
    if not done:
        messages.append(f"No trial completed ({len(results.trials)} trials in the study): the figures are empty.")
    elif not any(t.feasible for t in done):
        # pareto.json's message names each constraint no trial meets; older studies had none
        why = (
            ""
            if results.summary.get("message")
            else (f"; the smallest mean payload reached was {min(t.payload_bytes or 0 for t in done):.0f} B")
        )
        messages.append(
            f"None of the {len(done)} completed trials is feasible ({_limits(results.summary)}){why}. "
            "The Pareto set and staircases below are over infeasible trials."
        )
    if len(done) == 1:
        messages.append("Only one trial completed: each figure shows that single point.")
    if results.summary.get("interrupted"):
        messages.append("The last search run was interrupted; completed trials are all here.")
    if results.summary.get("message"):
        messages.append(str(results.summary["message"]))
    return messages
