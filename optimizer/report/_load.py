"""Reading a study folder (reports/NAME/): the Optuna storage, pareto.json, the device profile.

A report must render from whatever a search left: pareto.json may be missing (the search was
killed before its summary) and the device profile file may have moved. What cannot be read is
noted and said on the page instead of failing; only a folder without a study is a user error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna

from optimizer.config import DeviceProfile, load_device_profile, load_network_profile, parse_device_profile
from optimizer.errors import UserError
from optimizer.report._records import StudyResults, record_of
from optimizer.search import legacy_block_ks, modern_trial, non_dominated
from optimizer.system import DEFAULT_OBJECTIVES, METRICS

__all__ = ["load_results", "results_from_trials"]

_REPO = Path(__file__).resolve().parents[2]


def load_results(report_dir: Path, storage: str | None = None) -> StudyResults:
    """The study in ``report_dir`` (its study.db, or the study of that name in ``storage``)."""
    if not report_dir.is_dir():
        raise UserError(
            f"report folder {report_dir} does not exist; give the reports/NAME folder that "
            "`split-opt search` wrote (it prints it)"
        )
    summary = _read_summary(report_dir)
    name = str(summary.get("study") or report_dir.name)
    study = _open_study(report_dir, name, storage)
    trials = [modern_trial(t) for t in study.get_trials(deepcopy=False)]
    return results_from_trials(report_dir, name, trials, summary, study.metric_names)


def results_from_trials(
    report_dir: Path,
    name: str,
    trials: list[optuna.trial.FrozenTrial],
    summary: dict[str, Any],
    metric_names: list[str] | None = None,
) -> StudyResults:
    """Assemble the results from trials and a pareto.json document (also used by tests).

    The objectives are pareto.json's, else the names the study carries, else the default three.
    """
    notes: list[str] = []
    objectives = _objectives(summary.get("objectives") or metric_names)
    if not summary:
        notes.append(
            "pareto.json is missing (the search stopped before its summary): no test-split metrics, no device profile"
        )
    if summary.get("pareto") is not None:
        pareto = frozenset(int(e["trial"]) for e in summary["pareto"])
    else:
        pareto = frozenset(t.number for t in non_dominated(trials, objectives))
    device = _device_profile(summary, notes)
    times = sorted(t.datetime_start for t in trials if t.datetime_start is not None)
    ends = sorted(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return StudyResults(
        report_dir=report_dir,
        study_name=name,
        trials=tuple(record_of(t) for t in sorted(trials, key=lambda t: t.number)),
        summary=summary,
        pareto_trials=pareto,
        space=_space_of(trials),
        models=_models_of(trials),
        device=device,
        objectives=objectives,
        num_classes=int(summary.get("num_classes") or 10),
        notes=tuple(notes),
        first_start=times[0].isoformat(timespec="seconds") if times else None,
        last_end=ends[-1].isoformat(timespec="seconds") if ends else None,
    )


def _objectives(names: Any) -> tuple[str, ...]:
    """Known metric names in the study's order; the default three when none are known."""
    if isinstance(names, list | tuple) and names and all(n in METRICS for n in names):
        return tuple(str(n) for n in names)
    return DEFAULT_OBJECTIVES


def _read_summary(report_dir: Path) -> dict[str, Any]:
    path = report_dir / "pareto.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); run the search again to rewrite it") from exc
    if not isinstance(doc, dict):
        raise UserError(f"{path} must hold a JSON object, got {type(doc).__name__}; run the search again")
    return doc


def _open_study(report_dir: Path, name: str, storage: str | None) -> optuna.Study:
    db = report_dir / "study.db"
    if storage is None and not db.is_file():
        # NOTE: checked here because SQLAlchemy would silently create an empty database.
        raise UserError(
            f"no study in {report_dir}: {db} does not exist; run `split-opt search` first, or pass "
            "--storage URL for a study kept in another database"
        )
    url = storage or f"sqlite:///{db}"
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise UserError(f"the storage {url} holds no study named {name!r}; pass the study's own folder") from None
    except Exception as exc:
        raise UserError(f"cannot read the study storage {url}: {exc}") from exc


def _space_of(trials: list[optuna.trial.FrozenTrial]) -> dict[str, list[Any]]:
    """The searched values, from the distributions Optuna kept with the trials."""
    space: dict[str, set[Any]] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                values = set(dist.choices)
            elif isinstance(dist, optuna.distributions.IntDistribution):
                values = set(range(dist.low, dist.high + 1, dist.step))
            else:
                continue
            space.setdefault(name, set()).update(values)
    return {name: _sorted(values) for name, values in space.items()}


def _models_of(trials: list[optuna.trial.FrozenTrial]) -> dict[str, dict[str, tuple[int, ...]]]:
    """Per model spec, the input sizes and split indices the search offered it (from the choices
    Optuna kept with each trial); a study from before model specs offered every block boundary."""
    offered: dict[str, dict[str, set[int]]] = {}
    for trial in trials:
        spec = trial.params.get("model")
        if spec is None:
            continue
        here = offered.setdefault(str(spec), {"input_size": set(), "k": set()})
        for name in ("input_size", "k"):
            # a space of several models names them per model (search.site_param)
            dist = trial.distributions.get(name) or trial.distributions.get(f"{name}_{spec}")
            if isinstance(dist, optuna.distributions.CategoricalDistribution) and name in trial.params:
                here[name].update(int(c) for c in dist.choices)  # type: ignore[arg-type]  # ints here
            elif (
                isinstance(dist, optuna.distributions.IntDistribution)
                and name == "k"
                and "alpha" in trial.distributions
            ):
                here["k"].update(legacy_block_ks(str(spec))[dist.low : dist.high + 1])  # block indices, before 0.4
            elif name in trial.params:
                here[name].add(int(trial.params[name]))
    return {spec: {name: tuple(sorted(v)) for name, v in d.items()} for spec, d in offered.items()}


def _sorted(values: set[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types (None among numbers)
        return sorted(values, key=str)


def _device_profile(summary: dict[str, Any], notes: list[str]) -> DeviceProfile | None:
    """The profile stored in pareto.json, else the file it names (as given, or in this checkout)."""
    stored = summary.get("device_profile")
    if isinstance(stored, dict):
        data = {key: value for key, value in stored.items() if key != "path"}
        try:
            return parse_device_profile(data, Path(str(stored.get("path", "pareto.json"))))
        except UserError as exc:
            notes.append(f"the device profile stored in pareto.json is not valid ({exc}); reading the files instead")
    given = summary.get("device_path")
    if not given:
        if summary:
            notes.append("pareto.json names no device profile: the device context and MACs per split are missing")
        return None
    for candidate in (Path(given), _REPO / given):
        if candidate.is_file():
            return _with_study_network(load_device_profile(candidate), summary, notes)
    notes.append(f"the device profile {given} is no longer there: the device context and MACs per split are missing")
    return None


def _with_study_network(device: DeviceProfile, summary: dict[str, Any], notes: list[str]) -> DeviceProfile:
    """The device on the study's link: a search with --network replaced the profile's own network."""
    name, given = summary.get("network"), summary.get("network_path")
    if not name or name == device.network.name or not given:
        return device
    for candidate in (Path(given), _REPO / given):
        if candidate.is_file():
            return device.with_network(load_network_profile(candidate))
    notes.append(f"the network profile {given} is no longer there: the context shows the device's own link")
    return device
