"""`split-opt report` and the report written by `split-opt search`, end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer.cli import main

PI4 = Path(__file__).resolve().parents[1] / "profiles" / "pi4.yaml"


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny search (one random model, a few trials) run through the CLI; its reports folder."""
    from conftest import make_fake_fashion, write_tiny_space

    root = tmp_path_factory.mktemp("report-cli")
    data = make_fake_fashion(root / "fmnist")
    write_tiny_space(root, data)
    args = ["search", "--device", str(PI4), "--search-space", str(root / "tiny.yaml"), "--budget-kb", "5"]
    args += ["--reports-dir", str(root / "reports"), "--study", "t", "--sampler", "random", "--trials", "4"]
    assert main(args) == 0
    return root / "reports" / "t"


def test_search_writes_the_report_and_says_where(searched: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = searched / "index.html"
    assert page.is_file() and page.stat().st_size > 4e6  # Plotly's bundle is inlined
    html = page.read_text()
    assert "split-opt report: t" in html and f"split-opt export {searched} --trial" in html
    pareto = json.loads((searched / "pareto.json").read_text())
    assert pareto["device_profile"]["name"] == "pi4" and pareto["search_space_spec"]["name"] == "tiny"
    assert pareto["num_classes"] == 10


def test_report_command_prints_path_and_point_counts(searched: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (searched / "index.html").unlink()
    assert main(["report", str(searched), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["path"] == str(searched / "index.html") and Path(doc["path"]).is_file()
    complete = json.loads((searched / "pareto.json").read_text())["n_complete"]
    assert doc["figure_points"]["front-3d"] == complete == doc["figure_points"]["parallel"]
    assert set(doc["figure_points"]) == {
        "front-3d",
        "projections",
        "breakdown",
        "sweep",
        "tradeoff",
        "compression",
        "parallel",
        "pareto-table",
    }
    assert main(["report", str(searched)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {searched / 'index.html'} (") and "3-D front" in out


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_report_without_a_study_is_a_one_line_user_error(
    tmp_path: Path, make: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "reports" / "nothing"
    if make == "empty":
        folder.mkdir(parents=True)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("split-opt: error: ")
    assert ("does not exist" in err) if make == "missing" else ("no study in" in err and "split-opt search" in err)
    assert not (folder / "study.db").exists()  # nothing was created


def test_a_real_search_feeds_the_breakdown_and_the_sweep(searched: Path) -> None:
    from optimizer.report import breakdown_info, load_results, sweep_info

    results = load_results(searched)
    breakdown = breakdown_info(results)
    assert len(breakdown.rows) == len(results.pareto_trials) and not breakdown.missing
    for row in breakdown.rows:
        assert sum(row.segments.values()) == pytest.approx(row.e2e_ms, rel=1e-9) and row.segments["round trip"] > 0
    sweep = sweep_info(results)
    assert sweep.rates_kbps[0] == 10.0 and sweep.rates_kbps[-1] == 1e6 and sweep.link_kbps is not None
    assert all(t is None or t in {r.number for r in results.complete} for t in sweep.trials)
