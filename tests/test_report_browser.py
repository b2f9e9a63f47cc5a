"""The report in a real browser: Debian's headless Chromium opens index.html from file://.

Checked: no JavaScript error in the console, no request leaves the file, every figure rendered
(WebGL scene for the 3-D front and the parallel coordinates, SVG points for the others) with
the number of points the report says it drew, the table sorts, the messages are on the page,
and a screenshot is saved. Chromium and chromedriver come from `bash scripts/setup.sh --tests`;
without them these tests fail (they are part of CI), they do not skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from synthetic_study import BLOCK_KS, MODELS, hand_trial, numbered, summary_of, synthetic_results

from optimizer.report import Report, build_report, results_from_trials, sweep_info

pytestmark = pytest.mark.slow

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",  # WebGL in software: the 3-D front and the parallel coordinates need it
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1400,1000",
]
FIGURES = ("front-3d", "projections", "breakdown", "sweep", "tradeoff", "compression", "parallel")

# For each Plotly figure: points per trace (parallel coordinates: values per dimension), whether
# its WebGL scene or SVG points exist, and any "WebGL is not supported" notice.
PLOT_STATE_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (gd) {
  var points = gd.data.reduce(function (sum, t) {
    if (t.type === 'parcoords') { return sum + (t.dimensions.length ? t.dimensions[0].values.length : 0); }
    return sum + (t.x ? t.x.length : 0);
  }, 0);
  return {id: gd.id, points: points, ready: !!gd._fullLayout,
          scene: !!(gd._fullLayout && gd._fullLayout.scene && gd._fullLayout.scene._scene),
          canvases: gd.querySelectorAll('canvas').length,
          svgPoints: gd.querySelectorAll('.scatterlayer .point').length,
          bars: gd.querySelectorAll('.barlayer .point').length,
          parcoordsAxes: gd.querySelectorAll('.parcoords .y-axis').length,
          noWebGL: gd.innerText.indexOf('WebGL is not supported') >= 0};
});
"""


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(
            f"{name} is not installed; the browser tests need Debian's chromium and chromium-driver: "
            "run `bash scripts/setup.sh --tests`"
        )
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium")
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(_binary("chromedriver")), options=options)
    driver.set_page_load_timeout(180)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser: Any, report: Report, folder: Path) -> list[dict[str, Any]]:
    """Write the page, open it from file://, wait until Plotly has drawn every figure."""
    from selenium.webdriver.support.ui import WebDriverWait

    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "index.html"
    page.write_text(report.html, encoding="utf-8")
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(page.as_uri())
    WebDriverWait(browser, 120).until(
        lambda d: (s := d.execute_script(PLOT_STATE_JS)) and len(s) == len(FIGURES) and all(f["ready"] for f in s)
    )
    return list(browser.execute_script(PLOT_STATE_JS))


def _check_page(browser: Any, report: Report, folder: Path) -> dict[str, dict[str, Any]]:
    state = {f["id"]: f for f in _open(browser, report, folder)}
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(r.startswith("file:") for r in resources), resources  # nothing fetched from the network
    assert sorted(state) == sorted(FIGURES)
    for fig in FIGURES:
        assert state[fig]["points"] == report.points[fig], (fig, state[fig], report.points[fig])
        assert not state[fig]["noWebGL"], fig
    rows = browser.execute_script("return document.querySelectorAll('#pareto-table tbody tr').length")
    assert rows == report.points["pareto-table"]
    shown = browser.execute_script("return document.getElementById('messages').innerText")
    assert all(m in shown for m in report.messages), (report.messages, shown)
    shot = folder / "screenshot.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    return state


def test_a_normal_study_renders_every_figure_with_its_points(browser: Any, tmp_path: Path) -> None:
    results = synthetic_results(150, tmp_path / "normal", seed=2, deadline_ms=40.0)
    report = build_report(results)
    state = _check_page(browser, report, tmp_path / "normal")
    assert state["front-3d"]["points"] == 150 and state["front-3d"]["scene"] and state["front-3d"]["canvases"] > 0
    assert state["parallel"]["points"] == 150 and state["parallel"]["parcoordsAxes"] == 10
    for fig in ("projections", "sweep", "tradeoff", "compression"):
        assert state[fig]["svgPoints"] > 0, fig
    assert state["breakdown"]["bars"] == report.points["breakdown"] > 0  # one drawn bar per segment and entry
    policy = browser.execute_script("return document.querySelectorAll('#sweep-policy tbody tr').length")
    assert policy == len(sweep_info(results).policy) > 1
    # Sorting: click "payload mean B" twice, the rows follow the cell keys down.
    header = browser.find_elements("css selector", "#pareto-table th")[4]
    header.click()
    header.click()
    keys = browser.execute_script(
        "return Array.from(document.querySelectorAll('#pareto-table tbody tr')).map(r => +r.cells[4].dataset.sort)"
    )
    assert keys == sorted(keys, reverse=True) and len(keys) == len(results.pareto_trials)


def _hand_report(tmp_path: Path, trials: list[optuna.trial.FrozenTrial]) -> Report:
    done = numbered(trials)
    return build_report(results_from_trials(tmp_path, "edge", done, summary_of(done)))


def test_a_study_of_infeasible_trials_only_renders_and_says_so(browser: Any, tmp_path: Path) -> None:
    pca = {"kind": "pca", "geometry": "channel", "tile": 1, "components": 8, "bits": 8, "coder": "ans"}
    trials = [
        hand_trial(MODELS[1.0], 32, BLOCK_KS[k], pca, 0.8 + k / 100, 9000 - 100 * k, k, feasible=False)
        for k in (3, 5, 7)
    ]
    report = _hand_report(tmp_path, trials)
    assert any("None of the 3 completed trials is feasible" in m for m in report.messages)
    state = _check_page(browser, report, tmp_path / "infeasible")
    assert state["front-3d"]["points"] == 3


def test_a_single_trial_study_renders_and_says_so(browser: Any, tmp_path: Path) -> None:
    report = _hand_report(tmp_path, [hand_trial(MODELS[0.35], 32, BLOCK_KS[20], {"kind": "class-id"}, 0.8, 13)])
    assert any("Only one trial completed" in m for m in report.messages)
    state = _check_page(browser, report, tmp_path / "single")
    assert state["front-3d"]["points"] == 1 and state["parallel"]["points"] == 1


def test_a_study_from_before_named_metrics_renders(browser: Any, tmp_path: Path) -> None:
    report = build_report(synthetic_results(40, tmp_path / "old", seed=5, legacy=True))
    state = _check_page(browser, report, tmp_path / "old")
    assert state["front-3d"]["points"] == 40 and state["breakdown"]["points"] == 0 == state["sweep"]["points"]
    text = browser.execute_script("return document.getElementById('section-sweep').innerText")
    assert "no bandwidth sweep" in text
