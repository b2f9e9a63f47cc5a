"""Table data for the Pareto set: the metrics by name, test-split accuracy and the command that
deploys each row.

Rows come from pareto.json (re-scored on the test split); when it is missing, from the Pareto
trials with val metrics only. Each cell has the text shown and the key it sorts by; a metric a
trial does not have (a study from before the system model has no e2e_ms) shows "-".
"""

from __future__ import annotations

import shlex
from typing import Any, NamedTuple

from optimizer.report._records import StudyResults, TrialRecord, describe

__all__ = ["COLUMNS", "Cell", "TableInfo", "export_command", "table_info"]

COLUMNS = (
    "trial",
    "configuration",
    "val accuracy [95 % CI]",
    "test accuracy [95 % CI]",
    "payload mean B",
    "payload p95 B",
    "wire B",
    "device ms",
    "transfer ms",
    "server ms",
    "e2e ms",
    "energy mJ",
    "device M MACs",
    "feasible",
    "deploy it",
)


class Cell(NamedTuple):
    text: str
    sort: float | str


class TableInfo(NamedTuple):
    columns: tuple[str, ...]
    rows: list[list[Cell]]
    best_trial: int | None
    note: str  # what the metrics are and where they come from


def export_command(results: StudyResults, trial: int) -> str:
    """The `split-opt export` command line that deploys one trial of this study."""
    out = f"deploy/{results.study_name}-t{trial}"
    return f"split-opt export {shlex.quote(str(results.report_dir))} --trial {trial} --out {shlex.quote(out)}"


def _accuracy(value: float | None, ci: list[float] | None) -> Cell:
    if value is None:
        return Cell("-", -1.0)
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return Cell(f"{value:.4f}{interval}", float(value))


def _number(value: float | None, fmt: str) -> Cell:
    return Cell("-", -1.0) if value is None else Cell(format(value, fmt), float(value))


def _row(results: StudyResults, record: TrialRecord, entry: dict[str, Any] | None) -> list[Cell]:
    test = entry or {}
    macs = record.device_macs / 1e6 if record.device_macs is not None else None
    return [
        Cell(str(record.number), record.number),
        Cell(describe(record), describe(record)),
        _accuracy(record.accuracy, record.accuracy_ci),
        _accuracy(test.get("test_accuracy"), test.get("test_accuracy_ci")),
        _number(record.payload_bytes, ".0f"),
        _number(record.payload_bytes_p95, ".0f"),
        _number(record.metric("wire_bytes"), ".0f"),
        *(_number(record.metric(name), ".2f") for name in ("device_ms", "transfer_ms", "server_ms", "e2e_ms")),
        _number(record.metric("energy_mj"), ".3g"),
        _number(macs, ".2f"),
        Cell("yes" if record.feasible else "no", int(record.feasible)),
        Cell(export_command(results, record.number), record.number),
    ]


def table_info(results: StudyResults) -> TableInfo:
    by_number = {t.number: t for t in results.trials}
    entries = {int(e["trial"]): e for e in results.summary.get("pareto") or []}
    numbers = sorted(results.pareto_trials, key=lambda n: (by_number[n].payload_bytes or 0, n))
    rows = [_row(results, by_number[n], entries.get(n)) for n in numbers if n in by_number]
    best = results.summary.get("best")
    note = (
        "val: the split that scored the trials during the search; test: the Pareto set re-scored once on the test "
        "split, never seen by the search (95 % Wilson intervals); wire B: everything the link carries per "
        "inference (payload, HTTP request, packet headers); e2e ms = device + transfer + server"
    )
    if not entries:
        note += "; test metrics are missing because pareto.json is"
    return TableInfo(COLUMNS, rows, int(best["trial"]) if best else None, note)
