"""``split-opt splits --model SPEC``: the fx split points of any registered model, as a table and as JSON."""

from __future__ import annotations

import json

import pytest

from optimizer.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_model_spec_json_lists_fx_split_points(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "splits", "--model", "resnet18", "--input-size", "64", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["model"] == "resnet18" and doc["input_size"] == 64
    splits = doc["splits"]
    assert [s["k"] for s in splits] == list(range(len(splits))) and len(splits) == 14
    for key in ("k", "name", "module", "shape", "elements", "reduction", "cum_macs"):
        assert key in splits[3], key
    assert (splits[3]["name"], splits[3]["module"], splits[3]["shape"]) == ("layer1_0_relu_1", "layer1.0", [64, 16, 16])
    assert doc["total_macs"] == splits[-1]["cum_macs"] and splits[-1]["shape"] == [10]
    assert splits[0]["cum_macs"] == 0 < splits[1]["cum_macs"] <= splits[-2]["cum_macs"] < doc["total_macs"]


def test_model_spec_table_and_canonical_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "splits", "--model", "mobilenetv2:alpha=0.5", "--input-size", "32")
    assert code == 0 and out.startswith("mobilenetv2:alpha=0.5 at 32x32, 10 classes: 36 split points, 21 at blocks")
    assert "features_18_2" in out and "cum MMACs" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "resnet18", "--alpha", "0.5"], "give a model: --model SPEC"),
        ([], "give a model: --model SPEC"),
        (["--model", "vgg11"], "unknown model family 'vgg11'"),
        (["--model", "resnet18", "--input-size", "16"], "at least 32 pixels for resnet18"),
        (["--model", "python:no_such_module_q:make"], "cannot import no_such_module_q"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, "splits", *argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_alpha_is_short_for_the_zoo_family_and_blocks_are_marked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "splits", "--alpha", "1", "--input-size", "32", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["model"] == "mobilenetv2:alpha=1.0" and len(doc["splits"]) == 36
    blocks = [s["k"] for s in doc["splits"] if s["block"]]
    assert len(blocks) == 21 and blocks[0] == 0 and blocks[-1] == 35  # the older block numbering k = 0..20
    assert [doc["splits"][k]["module"] for k in blocks[1:-2]] == [f"features.{i}" for i in range(18)]
