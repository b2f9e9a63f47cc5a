"""The search end to end on tiny data: pareto.json contract, references, resume, budgets."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TINY_K, write_tiny_space

from optimizer.cli import main
from optimizer.config import load_search_space
from optimizer.search import SearchChoices, reference_points

PI4 = Path(__file__).resolve().parents[1] / "profiles" / "pi4.yaml"
ENTRY_KEYS = (
    "trial",
    "params",
    "val_accuracy",
    "val_accuracy_ci",
    "test_accuracy",
    "test_accuracy_ci",
    "payload_bytes_mean",
    "payload_bytes_p95",
    "device_latency_ms",
    "device_macs",
    "feasible",
)


@pytest.fixture
def space(tmp_path: Path, fake_fashion_root: Path) -> Path:
    return write_tiny_space(tmp_path, fake_fashion_root)


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'reports' / 't' / 'study.db'}")


def _search_args(space: Path, tmp_path: Path) -> list[str]:
    """The search command line every test here shares: tiny space, one study, random sampler."""
    return [
        "search",
        "--device",
        str(PI4),
        "--search-space",
        str(space),
        "--reports-dir",
        str(tmp_path / "reports"),
        "--study",
        "t",
        "--sampler",
        "random",
        "--format",
        "json",
    ]


def _search(space: Path, tmp_path: Path, *extra: str) -> int:
    return main([*_search_args(space, tmp_path), *extra])


def test_search_writes_the_pareto_contract_and_resumes(
    space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "6") == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("study", "device", "budget_bytes", "n_trials", "pareto", "best"):
        assert key in doc, key
    assert doc["budget_bytes"] == 5000 and doc["pareto"]
    for entry in doc["pareto"]:
        for key in ENTRY_KEYS:
            assert key in entry, key
        assert entry["test_accuracy_ci"][0] <= entry["test_accuracy"] <= entry["test_accuracy_ci"][1]
    best = doc["best"]
    assert best is not None and best["payload_bytes_mean"] <= 5000 and best["feasible"]
    study_trials = [t for t in _study(tmp_path).trials if t.user_attrs.get("feasible")]
    assert best["val_accuracy"] == max(t.user_attrs["metrics"]["accuracy"] for t in study_trials)  # chosen on val
    assert doc["selection_rule"].startswith("highest val accuracy")
    for entry in doc["pareto"]:
        m = entry["metrics"]
        assert set(m) >= {"accuracy", "payload_bytes", "device_ms", "wire_bytes", "transfer_ms", "server_ms"}
        assert m["e2e_ms"] == pytest.approx(m["device_ms"] + m["transfer_ms"] + m["server_ms"])
        assert m["wire_bytes"] > m["payload_bytes"] + 100  # the HTTP request and packet headers travel too
        if entry["params"]["k"] == 0:
            assert m["device_ms"] > 0  # image encoding costs the device its calibrated time
    assert doc["objectives"] == ["accuracy", "payload_bytes", "device_ms"]
    sweep = doc["bandwidth_sweep"]
    assert len(sweep) == 31 and sweep[0]["uplink_kbps"] == 10 and sweep[-1]["uplink_kbps"] == 1e6
    on_disk = json.loads((tmp_path / "reports" / "t" / "pareto.json").read_text())
    assert on_disk["pareto"] == doc["pareto"]
    study = _study(tmp_path)
    ks = {t.params["k"] for t in study.trials}
    assert {0, TINY_K["float16"], TINY_K["class-id"]} <= ks  # images, the uncompressed middle split, all-local
    first = len(study.trials)
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "3") == 0
    capsys.readouterr()
    assert len(study.trials) == first + 3  # resumed: old trials kept, references not re-queued


def test_unreachable_budget_says_the_smallest_payload(
    space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _search(space, tmp_path, "--budget-kb", "0.001", "--trials", "2") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best"] is None
    # the smallest payload is the all-local class id: tag byte, length byte, one byte of class
    assert "mean payload <= 1 B: no trial meets it (nearest 3 B" in doc["message"]
    assert doc["smallest_payload_bytes"] > 1


def test_every_trial_over_the_deadline_says_which_constraint_binds(
    space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lte = str(PI4.parent / "networks" / "nb-iot.yaml")
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "2", "--network", lte, "--fps", "5") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best"] is None and doc["network"] == "nb-iot" and doc["fps"] == 5
    # NB-IoT's 300 ms round trip alone is over the 200 ms frame deadline
    assert "e2e_ms <= 200 ms: no trial meets it (nearest" in doc["message"]
    assert all(row["trial"] is None for row in doc["bandwidth_sweep"])


def test_objectives_are_named_in_the_study(space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    objectives = "accuracy,e2e_ms,energy_mj"
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "2", "--objectives", objectives) == 0
    doc = json.loads(capsys.readouterr().out)
    study = _study(tmp_path)
    assert study.metric_names == ["accuracy", "e2e_ms", "energy_mj"] and doc["objectives"] == study.metric_names
    trial = next(t for t in study.trials if t.values)
    assert trial.values == [trial.user_attrs["metrics"][n] for n in study.metric_names]
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "1") == 2  # other objectives: not resumed
    assert "optimises accuracy,e2e_ms,energy_mj, not accuracy,payload_bytes,device_ms" in capsys.readouterr().err


def test_study_from_before_named_metrics_is_not_resumed(
    space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'reports' / 't' / 'study.db'}"
    (tmp_path / "reports" / "t").mkdir(parents=True)
    old = optuna.create_study(storage=storage, study_name="t", directions=["maximize", "minimize", "minimize"])
    old.add_trial(optuna.trial.create_trial(values=[0.9, 100.0, 2.0]))
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "1") == 2
    assert "written by an older split-opt without named metrics" in capsys.readouterr().err


def test_search_user_errors(space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _search(space, tmp_path, "--budget-kb", "5", "--objectives", "accuracy,speed") == 2
    assert "unknown objective 'speed'" in capsys.readouterr().err
    assert _search(space, tmp_path, "--budget-kb", "5", "--fps", "0") == 2
    assert "--fps must be > 0" in capsys.readouterr().err
    assert _search(space, tmp_path, "--budget-kb", "-1") == 2
    assert "--budget-kb must be > 0" in capsys.readouterr().err
    assert _search(space, tmp_path, "--budget-kb", "5", "--min-accuracy", "2") == 2
    assert main(["search", "--device", str(PI4), "--budget-kb", "5", "--search-space", str(tmp_path / "no.yaml")]) == 2


def test_two_workers_share_one_study_without_losing_or_repeating_trials(
    space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "6", "--workers", "2") == 0
    doc = json.loads(capsys.readouterr().out)
    study = _study(tmp_path)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) == doc["n_trials"]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    references = reference_points(SearchChoices.of(load_search_space(space)))
    assert len(references) == 4  # all-local, PNG, JPEG, the uncompressed middle split
    assert len(complete) == 6 + len(references)


def test_grid_sampler_runs_distinct_configurations_and_continues(
    space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optimizer.search._objective import enumerate_params

    grid = enumerate_params(SearchChoices.of(load_search_space(space)))
    # k = 0: png + jpeg q50; 19 block boundaries: float16 + 2 x 2 PCA settings each; the class id
    assert len(grid) == 2 + 19 * 5 + 1
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "5", "--sampler", "grid") == 0
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "5", "--sampler", "grid") == 0
    capsys.readouterr()
    study = _study(tmp_path)
    sampled = [t for t in study.trials if not t.user_attrs.get("reference")]
    assert len(sampled) == 10
    assert len({tuple(sorted(t.params.items())) for t in sampled}) == 10


def _start(space: Path, tmp_path: Path, trials: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "optimizer", *_search_args(space, tmp_path), "--budget-kb", "5", "--trials", trials]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _complete_numbers(tmp_path: Path) -> set[int]:
    """COMPLETE trials, read-only (see _running_numbers: load_study would race the table creation)."""
    import sqlite3

    db = tmp_path / "reports" / "t" / "study.db"
    if not db.exists():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return {int(n) for (n,) in conn.execute("SELECT number FROM trials WHERE state = 'COMPLETE'")}
    except sqlite3.Error:  # not created yet, or locked by the writer
        return set()


def _wait_for_trials(tmp_path: Path, process: subprocess.Popen[str], count: int) -> set[int]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        done = _complete_numbers(tmp_path)
        if len(done) >= count:
            return done
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} trials completed; stderr: {process.communicate()[1][-2000:]}")


@pytest.mark.slow
def test_sigkill_then_restart_loses_no_completed_trial(space: Path, tmp_path: Path) -> None:
    process = _start(space, tmp_path, "200")
    before = _wait_for_trials(tmp_path, process, 3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    survived = _complete_numbers(tmp_path)
    assert before <= survived
    again = _start(space, tmp_path, "2")
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err
    after = _complete_numbers(tmp_path)
    assert survived <= after and len(after) >= len(survived) + 2
    assert json.loads(out)["n_complete"] == len(after)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_keeps_completed_trials(space: Path, tmp_path: Path) -> None:
    process = _start(space, tmp_path, "200")
    _wait_for_trials(tmp_path, process, 3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "completed trials are kept" in err and "Traceback" not in err, err[-3000:]
    doc = json.loads((tmp_path / "reports" / "t" / "pareto.json").read_text())
    assert doc["interrupted"] and doc["n_complete"] == len(_complete_numbers(tmp_path)) >= 3
    assert (tmp_path / "reports" / "t" / "index.html").is_file() and "index.html" in err  # the report of what completed


def _pareto_configs(doc: dict) -> set[str]:
    return {json.dumps(e["params"], sort_keys=True) for e in doc["pareto"]}


@pytest.mark.slow
def test_postgres_workers_match_a_single_worker_run(
    space: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two worker processes on a real PostgreSQL server evaluate the same grid trials as one worker on
    SQLite: nothing lost or repeated, and the same Pareto set."""
    from pg import postgres_bin, running_postgres

    if postgres_bin() is None:
        if os.environ.get("CI"):
            raise AssertionError("CI must install Debian's postgresql (scripts/setup.sh does)")
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    args = ("--budget-kb", "5", "--trials", "12", "--sampler", "grid", "--seed", "3")
    assert _search(space, tmp_path / "single", *args) == 0
    single = json.loads(capsys.readouterr().out)
    with running_postgres() as url:
        assert _search(space, tmp_path / "multi", *args, "--workers", "2", "--storage", url) == 0
        multi = json.loads(capsys.readouterr().out)
        study = optuna.load_study(study_name="t", storage=url)
        numbers = [t.number for t in study.trials]
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(numbers) == len(set(numbers)) == multi["n_trials"] == single["n_trials"]
    assert len(complete) == single["n_complete"] == multi["n_complete"]
    assert _pareto_configs(single) == _pareto_configs(multi)


def _running_numbers(tmp_path: Path) -> set[int]:
    """RUNNING trials, read with plain SQL on a read-only connection: opening the study through
    Optuna would create its tables, racing the search process that is creating them."""
    import sqlite3

    db = tmp_path / "reports" / "t" / "study.db"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return {int(n) for (n,) in conn.execute("SELECT number FROM trials WHERE state = 'RUNNING'")}
    except sqlite3.Error:  # not created yet, or locked by the writer
        return set()


@pytest.mark.slow
def test_the_trial_a_sigkill_interrupts_is_failed_on_resume(
    space: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The storage's heartbeat marks a killed worker's RUNNING trial stale; the next run of the study
    fails it (Optuna's fail_stale_trials) instead of leaving it RUNNING forever."""
    process = _start(space, tmp_path, "200")
    _wait_for_trials(tmp_path, process, 3)
    deadline = time.monotonic() + 60
    while not _running_numbers(tmp_path):
        assert time.monotonic() < deadline and process.poll() is None, "no trial seen running"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    stale = _running_numbers(tmp_path)
    assert stale, "the kill left no RUNNING trial (it landed between two trials)"

    import optimizer.search._study as study_module

    opened: list[dict] = []
    real_storage = optuna.storages.RDBStorage

    class ShortGrace(real_storage):  # type: ignore[misc,valid-type]
        def __init__(self, url: str, **kwargs: object) -> None:
            opened.append(kwargs)
            super().__init__(url, **{**kwargs, "grace_period": 1})

    monkeypatch.setattr(study_module.optuna.storages, "RDBStorage", ShortGrace)
    time.sleep(2.5)  # past the shortened grace period: the killed worker's last heartbeat is stale
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "1") == 0
    capsys.readouterr()
    assert opened[0].get("heartbeat_interval")  # the study the search opens has a heartbeat
    study = _study(tmp_path)
    states = {t.number: t.state for t in study.trials}
    assert all(states[n] == optuna.trial.TrialState.FAIL for n in stale), states
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_a_running_trial_that_never_beat_is_failed_after_the_grace_period(tmp_path: Path) -> None:
    """A worker killed within milliseconds of starting a trial leaves it RUNNING with no heartbeat,
    which Optuna's fail_stale_trials never fails; open_study does, once the grace period is over."""
    import warnings

    from optimizer.search._study import _fail_trials_without_heartbeat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=30, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="t")
    silent, beating = study.ask(), study.ask()  # ask() starts no heartbeat thread
    storage.record_heartbeat(beating._trial_id)
    _fail_trials_without_heartbeat(study, storage)
    assert study.trials[silent.number].state == optuna.trial.TrialState.RUNNING  # within the grace period
    time.sleep(1.5)
    _fail_trials_without_heartbeat(study, storage)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING]  # the beating one is alive


def test_a_configuration_scored_before_is_not_scored_again(
    tmp_path: Path, fake_fashion_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small space (two splits, one PCA setting) repeats configurations within 12 trials: each is
    scored once, and a repeat records the values and attributes of the trial it repeats."""
    from optimizer.search import Evaluator

    space = write_tiny_space(
        tmp_path,
        fake_fashion_root,
        pca={"geometry": ["channel"], "components": [4], "bits": [4], "coders": ["ans"]},
        image={"formats": ["png"], "qualities": [50]},
    )
    doc = yaml.safe_load(space.read_text())
    doc["models"][0]["cuts"] = ["features.4", "logits"]
    space.write_text(yaml.safe_dump(doc))
    scored: list[object] = []
    real = Evaluator.evaluate

    def counted(self: Evaluator, config: object, split: str = "val") -> object:
        scored.append(config)
        return real(self, config, split)  # type: ignore[arg-type]

    monkeypatch.setattr(Evaluator, "evaluate", counted)
    assert _search(space, tmp_path, "--budget-kb", "5", "--trials", "12") == 0
    capsys.readouterr()
    complete = [t for t in _study(tmp_path).trials if t.state == optuna.trial.TrialState.COMPLETE]
    repeats = [t for t in complete if "repeat_of" in t.user_attrs]
    assert len(complete) == 12 + 2 and repeats  # the all-local and float16 references, then 12 sampled
    assert len(scored) == len(complete) - len(repeats) == len({str(c) for c in scored}) <= 3
    by_number = {t.number: t for t in complete}
    for t in repeats:
        first = by_number[t.user_attrs["repeat_of"]]
        assert t.values == first.values and t.params == first.params
        assert t.user_attrs["metrics"] == first.user_attrs["metrics"]
