"""Report benchmark: size and build time of index.html for a synthetic study of N trials.

    python benchmarks/bench_report.py [--trials 5000] [--out FILE]

The study is made by tests/synthetic_study.py (plausible numbers, no model or data), stored in a
SQLite study with its pareto.json like a real search's, and the report is written through the same
path as `split-opt report` (load from the storage, build, write). Size is the bytes of index.html
(Plotly's JavaScript, inlined, is about 4.8 MB of it); times are wall-clock seconds on this machine.
Storing 5,000 trials takes minutes (Optuna writes each trial in its own SQLite transaction); the
report itself takes seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from synthetic_study import summary_of, synthetic_trials

from optimizer.report import write_report


def store(trials: list[optuna.trial.FrozenTrial], folder: Path) -> None:
    """A reports/NAME folder as a search leaves it: study.db and pareto.json."""
    folder.mkdir(parents=True)
    study = optuna.create_study(
        study_name="synthetic",
        storage=f"sqlite:///{folder / 'study.db'}",
        directions=["maximize", "minimize", "minimize"],
    )
    study.add_trials(trials)
    (folder / "pareto.json").write_text(json.dumps(summary_of(study.get_trials(deepcopy=False))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "reports" / "synthetic"
        t0 = time.perf_counter()
        store(synthetic_trials(args.trials), folder)
        t1 = time.perf_counter()
        report = write_report(folder)
        t2 = time.perf_counter()
    result = {
        "trials": args.trials,
        "html_bytes": report.size_bytes,
        "html_mb": round(report.size_bytes / 1e6, 2),
        "under_10_mb": report.size_bytes < 10e6,
        "figure_points": report.points,
        "store_study_s": round(t1 - t0, 1),
        "write_report_s": round(t2 - t1, 1),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
