"""The report's figure data, checked without a browser on synthetic and hand-made studies."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from synthetic_study import BLOCK_KS, MODELS, SIZES, hand_trial, numbered, summary_of, synthetic_results

from optimizer.report import (
    StudyResults,
    build_report,
    compression_info,
    context_info,
    export_command,
    front_info,
    parallel_info,
    projection_info,
    results_from_trials,
    split_rows,
    staircase,
    status_messages,
    table_info,
    tradeoff_info,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

FLOAT16 = {"kind": "float16"}
LOCAL = {"kind": "class-id"}


def _pca(bits: int) -> dict[str, object]:
    return {"kind": "pca", "geometry": "channel", "tile": 1, "components": 4, "bits": bits, "coder": "ans"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> StudyResults:
    return synthetic_results(120, tmp_path_factory.mktemp("reports") / "synthetic", seed=1)


def _hand(tmp_path: Path, trials: list[optuna.trial.FrozenTrial], budget: float = 5000.0) -> StudyResults:
    done = numbered(trials)
    return results_from_trials(tmp_path, "hand", done, summary_of(done, budget))


def test_front_groups_partition_the_completed_trials(results: StudyResults) -> None:
    info = front_info(results)
    numbers = [n for g in info.groups for n in g.trials]
    assert sorted(numbers) == [t.number for t in results.complete]
    pareto, feasible, infeasible = info.groups
    assert set(pareto.trials) == results.pareto_trials
    by_number = {t.number: t for t in results.trials}
    assert all(by_number[n].feasible for n in feasible.trials)
    assert not any(by_number[n].feasible for n in infeasible.trials) and infeasible.trials
    assert [a.metric for a in info.axes] == ["payload_bytes", "device_ms", "accuracy"] and not info.note
    assert info.limits["payload_bytes"].value == 5.0 and info.limits["payload_bytes"].label == "budget 5 KB"
    assert all("test accuracy" in h and "payload mean" in h and "M MACs" in h for h in pareto.hover)
    assert all("= e2e" in h and "B on the link" in h for h in pareto.hover)
    for g in info.groups:
        assert all(len(v) == len(g.trials) == len(g.hover) == len(g.k) for v in g.values.values())
        records = [by_number[n] for n in g.trials]
        assert g.values["payload_bytes"] == pytest.approx([r.metrics["payload_bytes"] / 1000 for r in records])
        assert g.values["accuracy"] == [r.metrics["accuracy"] for r in records]


def test_staircase_keeps_the_non_dominated_points_in_cost_order() -> None:
    points = [(1.0, 0.5, 0), (2.0, 0.4, 1), (2.0, 0.7, 2), (3.0, 0.7, 3), (5.0, 0.9, 4), (0.5, 0.1, 5)]
    stairs = staircase(points, "feasible")
    assert stairs.trials == [5, 0, 2, 4]
    assert stairs.cost == [0.5, 1.0, 2.0, 5.0] and stairs.accuracy == [0.1, 0.5, 0.7, 0.9]


def test_projection_staircases_are_fronts_of_their_planes(results: StudyResults) -> None:
    info = projection_info(results)
    feasible = [t for t in results.complete if t.feasible]
    for stairs, cost in ((info.payload, lambda t: t.payload_bytes / 1000), (info.latency, lambda t: t.device_ms)):
        for c, a in zip(stairs.cost, stairs.accuracy, strict=True):
            assert not any(cost(t) <= c and t.accuracy > a for t in feasible)
    by_number = {t.number: t for t in results.trials}
    splits = info.payload_splits.trials + info.latency_splits.trials
    assert all(0 < by_number[n].k < BLOCK_KS[-1] for n in splits)
    assert len(info.payload_splits.trials) > 1


def test_tradeoff_has_one_series_per_model_and_one_point_per_layer(results: StudyResults) -> None:
    info = tradeoff_info(results)
    assert [(s.spec, s.input_size) for s in info.series] == [(m, s) for m in MODELS.values() for s in SIZES]
    local: dict[tuple[str | None, int | None], float | None] = {}
    for t in results.complete:  # the first all-local trial of each model (a real study repeats the same value)
        if t.k == BLOCK_KS[-1]:
            local.setdefault((t.model, t.input_size), t.accuracy)
    for s in info.series:
        assert s.k == list(BLOCK_KS[:-1])  # the input and every block boundary the search offered
        assert s.macs_m[0] == 0 and s.macs_m == sorted(s.macs_m)
        rows = {r.k: r for r in split_rows(results, s.spec, s.input_size)}
        assert s.activation_kb == [rows[k].activation_bytes_fp32 / 1000 for k in BLOCK_KS[:-1]]
        assert s.activation_kb[0] == 3 * s.input_size**2 * 4 / 1000  # the input image, float32
        assert s.accuracy == local[(s.spec, s.input_size)] and "all-local" in s.accuracy_source
    assert "all-local" in info.accuracy_meaning


def test_compression_keeps_the_smallest_payload_within_one_point(tmp_path: Path) -> None:
    trials = [
        hand_trial(MODELS[1.0], 32, BLOCK_KS[20], LOCAL, 0.90, 13),  # uncompressed accuracy 0.90
        hand_trial(MODELS[1.0], 32, BLOCK_KS[3], _pca(8), 0.895, 900),
        hand_trial(MODELS[1.0], 32, BLOCK_KS[3], _pca(4), 0.891, 600),  # within 1 point, smaller: kept at k=3
        hand_trial(MODELS[1.0], 32, BLOCK_KS[3], _pca(2), 0.88, 300),  # 2 points down: ignored
        hand_trial(MODELS[1.0], 32, BLOCK_KS[9], _pca(4), 0.92, 250),  # the sweet spot
        hand_trial(MODELS[1.0], 32, BLOCK_KS[12], FLOAT16, 0.90, 5000),
        hand_trial(MODELS[1.0], 32, BLOCK_KS[0], {"kind": "image", "format": "jpeg", "quality": 50}, 0.895, 700),
        hand_trial(MODELS[1.0], 32, BLOCK_KS[0], {"kind": "image", "format": "webp", "quality": 10}, 0.80, 200),
        hand_trial(MODELS[0.35], 32, BLOCK_KS[5], _pca(4), 0.70, 100),  # another model
    ]
    info = compression_info(_hand(tmp_path, trials), MODELS[1.0], 32)
    b = BLOCK_KS
    assert info.reference_accuracy == 0.90
    assert [(p.k, p.payload_bytes) for p in info.smallest] == [(b[3], 600), (b[9], 250), (b[12], 5000)]
    assert info.sweet_spot is not None and (info.sweet_spot.k, info.sweet_spot.payload_bytes) == (b[9], 250)
    assert [p.payload_bytes for p in info.images] == [200, 700] and info.images_within == [False, True]
    assert info.missing_k == [k for k in b[1:20] if k not in (b[3], b[9], b[12])]  # the blocks offered
    assert info.float16_k == list(b[1:20]) and len(info.float16_bytes) == 19
    assert f"k={b[9]}, 250 B" in info.message and "needs 700 B, 2.8x the sweet spot" in info.message


def test_parallel_coordinates_have_one_value_per_trial_and_label_missing_parameters(results: StudyResults) -> None:
    info = parallel_info(results)
    n = len(results.complete)
    assert info.trials == [t.number for t in results.complete] and len(info.feasible) == n
    assert all(len(d.values) == n for d in info.dimensions)
    dims = {d.label: d for d in info.dimensions}
    assert dims["codec"].ticktext == ["image", "pca", "float16", "class-id"]
    assert dims["bits"].ticktext is not None and dims["bits"].ticktext[0] == "n/a" and "16" in dims["bits"].ticktext
    assert dims["val accuracy"].values == [t.accuracy for t in results.complete]


def test_table_has_the_pareto_set_with_test_metrics_and_export_commands(results: StudyResults) -> None:
    info = table_info(results)
    assert len(info.rows) == len(results.pareto_trials)
    assert {int(r[0].sort) for r in info.rows} == results.pareto_trials
    entries = {e["trial"]: e for e in results.summary["pareto"]}
    for row in info.rows:
        trial = int(row[0].sort)
        assert row[3].sort == entries[trial]["test_accuracy"] and "[" in row[3].text
        assert row[-1].text == f"split-opt export {results.report_dir} --trial {trial} --out deploy/synthetic-t{trial}"
    assert info.best_trial == results.summary["best"]["trial"]
    assert export_command(results, 7).endswith("--trial 7 --out deploy/synthetic-t7")


def test_context_cites_the_device_profile_and_counts_trials(results: StudyResults) -> None:
    info = context_info(results)
    assert info.device_name == "pi4"
    sources = {p: s for p, _, s in info.device_rows}
    assert "ncnn" in sources["compute.conv_macs_per_s"] and "compute.threads" in sources
    facts = dict(info.facts)
    assert facts["trials"].startswith("120 (120 complete")
    assert facts["split sizes (images)"] == "calib 100, val 200, test 1000"
    assert dict(info.space_rows)["model"] == "mobilenetv2:alpha=0.35, mobilenetv2:alpha=1.0"


def test_messages_say_what_happened_in_unusual_studies(tmp_path: Path) -> None:
    infeasible = [hand_trial(MODELS[1.0], 32, BLOCK_KS[5], _pca(8), 0.9, 9000, feasible=False) for _ in range(3)]
    messages = status_messages(_hand(tmp_path, infeasible))
    assert any("None of the 3 completed trials is feasible" in m and "9000 B" in m for m in messages)
    single = status_messages(_hand(tmp_path, infeasible[:1]))
    assert any("Only one trial completed" in m for m in single)
    empty = status_messages(results_from_trials(tmp_path, "e", [], {}))
    assert any("No trial completed" in m for m in empty) and any("pareto.json is missing" in m for m in empty)


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_and_empty_studies_still_build_a_page(tmp_path: Path, n: int) -> None:
    trials = numbered([hand_trial(MODELS[1.0], 32, BLOCK_KS[5], _pca(8), 0.9, 9000, feasible=False)][:n])
    report = build_report(results_from_trials(tmp_path, "tiny", trials, summary_of(trials) if n else {}))
    assert report.points["front-3d"] == n and report.points["pareto-table"] == n
    assert report.messages and all(m in report.html for m in report.messages if "<" not in m)


def test_the_page_is_self_contained(results: StudyResults) -> None:
    report = build_report(results)
    assert not re.search(r"<script[^>]+src=", report.html) and not re.search(r"<link[^>]+href=", report.html)
    assert report.html.count("<script") == 2 + 7  # Plotly, the table sorter, one per figure; all inline
    assert report.html.count('class="plotly-graph-div"') == 7
    assert report.points["front-3d"] == len(results.complete) == report.points["parallel"]


@pytest.mark.slow
def test_a_5000_trial_study_stays_under_10_mb(tmp_path: Path) -> None:
    report = build_report(synthetic_results(5000, tmp_path / "big"))
    assert report.points["front-3d"] == 5000
    assert report.size_bytes < 10e6, f"{report.size_bytes / 1e6:.2f} MB"


def test_a_study_from_before_model_specs_reads_as_todays(tmp_path: Path) -> None:
    """Trials that named the model by alpha and the split by its block index give the records, the
    figure data and the table of the same study written today."""
    today = synthetic_results(80, tmp_path / "today", seed=7)
    before = synthetic_results(80, tmp_path / "before", seed=7, by_alpha=True)
    assert [(t.model, t.input_size, t.k, t.split, t.codec) for t in before.trials] == [
        (t.model, t.input_size, t.k, t.split, t.codec) for t in today.trials
    ]
    assert tradeoff_info(before) == tradeoff_info(today)
    assert compression_info(before, MODELS[1.0], 64) == compression_info(today, MODELS[1.0], 64)
