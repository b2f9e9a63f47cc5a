"""``split-opt calibrate``: fit a device profile's throughputs on the machine it describes.

Three ways: measure here with the full install (fx segments exported and timed, the default); write
a calibration kit on the host (``--make-kit DIR``, full install); or time a kit on the device
(``--kit DIR``), which needs only the device install. This module imports nothing that needs torch
at load time, so the device install can parse the command; each way imports what it needs when it
runs.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.cli._commands import full_install_missing
from optimizer.cli._common import add_format, emit_json, positive_int
from optimizer.errors import UserError
from optimizer.profiler import RUNTIMES  # loads optimizer/profiler/_timing.py alone (the package is lazy)

if TYPE_CHECKING:
    from optimizer.config import DeviceProfile
    from optimizer.profiler import Calibration, CodingFit

__all__ = ["add_calibrate_parser"]

PARTS = ("compute", "coding")
_ON_THE_DEVICE = "split-opt calibrate --kit DIR --device P --out Y.yaml"


def add_calibrate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a device profile's throughputs from measurements here",
        description="Time every fx segment and head of a few models on this machine, fit the profile's "
        "latency-model prices (per-class throughputs, weight streaming, per-layer and per-run overheads; "
        "non-negative least squares on the relative error), time the codecs' coding steps (ANS, Huffman, "
        "raw packing, float16, JPEG/WebP/PNG) and fit their costs, and write the calibrated profile. Run "
        "it on the device the profile describes. Without torch there (the device install), make a kit "
        f"on the host with --make-kit DIR, copy DIR over, and run `{_ON_THE_DEVICE}`.",
    )
    p.add_argument("--device", type=Path, default=None, help="the profile to start from")
    p.add_argument("--out", type=Path, default=None, help="where to write the calibrated profile")
    p.add_argument("--name", default=None, help="name of the written profile (default: keep)")
    p.add_argument(
        "--make-kit",
        type=Path,
        default=None,
        metavar="DIR",
        help="write a calibration kit to DIR instead (full install): the ONNX graphs to time, their countable "
        "terms and sha256s, for `calibrate --kit DIR` on a device without torch",
    )
    p.add_argument(
        "--kit",
        type=Path,
        default=None,
        metavar="DIR",
        help="time the graphs of a kit made by --make-kit (works in the device install) instead of exporting "
        "models here",
    )
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated SPEC@SIZE models to measure, one or more per family the profile will price "
        "(default: the bundled zoo's family at alpha 1.0 @ 224 and alpha 0.35 @ 96); with --kit the kit's",
    )
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--repeats", type=positive_int, default=15)
    p.add_argument(
        "--parts",
        default=None,
        help="what to measure and replace: compute (the network's segments), coding (the codecs' steps), or "
        "both (default: compute,coding; with --kit the kit's parts)",
    )
    p.add_argument(
        "--server-here",
        action="store_true",
        help="the profile's server is this machine too: also write the server's coding (decoder) costs",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="what runs the segments: ONNX Runtime, as a deployed head does (default), or PyTorch eager "
        "(not with --kit: a kit holds ONNX graphs)",
    )
    add_format(p)
    p.set_defaults(func=_calibrate)


def _parse_parts(text: str | None) -> list[str] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or set(parts) - set(PARTS):
        raise UserError(f"--parts takes compute, coding or both, comma-separated; got {text!r}")
    return parts


_MODEL_ITEM = re.compile(r"\s*([^@]+?)\s*@\s*(\d+)\s*(?:,|$)")


def _parse_models(text: str | None) -> list[tuple[str, int]]:
    """``SPEC@SIZE,SPEC@SIZE``; a spec may hold commas of its own (``f:a=1,b=2@96``). Full install."""
    from optimizer.models import FAMILY, adapter_for, parse_model_spec

    default = f"{FAMILY}:alpha=1.0@224,{FAMILY}:alpha=0.35@96"
    text = default if text is None else text
    models, end = [], 0
    for match in _MODEL_ITEM.finditer(text):
        if match.start() != end:
            break
        spec = str(parse_model_spec(match.group(1)))
        models.append((spec, adapter_for(spec).check_input_size(int(match.group(2)))))
        end = match.end()
    if not models or end != len(text):
        raise UserError(f"--models expects SPEC@SIZE items separated by commas, like {default}; got {text!r}")
    return models


def _check_options(args: argparse.Namespace) -> None:
    """Which options go with which way; one line naming the clash and the fix."""
    if args.make_kit is not None and args.kit is not None:
        raise UserError("give --make-kit DIR (on the host) or --kit DIR (on the device), not both")
    if args.make_kit is not None:
        given = [o for o, v in (("--device", args.device), ("--out", args.out), ("--runtime", args.runtime)) if v]
        if given:
            raise UserError(
                f"--make-kit writes a kit, not a profile: drop {', '.join(given)} (the device gives them to "
                f"`{_ON_THE_DEVICE}`)"
            )
        return
    missing = [o for o, v in (("--device", args.device), ("--out", args.out)) if v is None]
    if missing:
        raise UserError(f"calibrate needs {' and '.join(missing)} (or --make-kit DIR to write a kit on the host)")
    if args.kit is not None and (args.models is not None or args.runtime not in (None, "onnxruntime")):
        raise UserError(
            "--kit times the kit's own models in ONNX Runtime: drop --models and --runtime (make another kit "
            "with --make-kit DIR --models ... for other models)"
        )


def _calibrate(args: argparse.Namespace) -> int:
    _check_options(args)
    parts = _parse_parts(args.parts)
    if args.make_kit is not None:
        return _make_kit(args, parts or list(PARTS))
    if args.kit is not None:
        return _run_kit(args, parts)
    with _full_install_only("`split-opt calibrate` without --kit"):
        from tqdm import tqdm

        from optimizer.profiler import calibrate_profile

    models = _parse_models(args.models)
    parts = parts or list(PARTS)
    runtime = args.runtime or "onnxruntime"
    _load_profile(args.device)
    with tqdm(total=1, desc=f"measuring {' and '.join(parts)} here", disable=args.format == "json") as bar:
        profile, fit, coding = calibrate_profile(
            args.device, args.out, models, args.threads, args.name, args.repeats, runtime, args.server_here, parts
        )
        bar.update(1)
    return _report(args, profile, fit, coding, parts, models, {})


@contextlib.contextmanager
def _full_install_only(what: str) -> Iterator[None]:
    """A module only the full install has, missing (the device install): one line saying where to run what."""
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = full_install_missing(exc)
        if missing is None:
            raise
        raise UserError(
            f"{what} exports the models with torch and needs the full install ({missing} is missing: this is the "
            f"device install); on the host run `split-opt calibrate --make-kit DIR`, copy DIR here and run "
            f"`{_ON_THE_DEVICE}`"
        ) from None


def _load_profile(path: Path) -> None:
    """Refuse a broken base profile before any measuring (one line, exit 2)."""
    from optimizer.config import load_device_profile

    load_device_profile(path)


def _make_kit(args: argparse.Namespace, parts: list[str]) -> int:
    with _full_install_only("`split-opt calibrate --make-kit`"):
        from optimizer.profiler import make_kit

    models = _parse_models(args.models) if "compute" in parts else []
    if args.format != "json":
        print(f"exporting the graphs of {len(models)} model(s) to {args.make_kit} ...", file=sys.stderr)
    kit = make_kit(args.make_kit, models, parts)
    files = sorted(p for p in args.make_kit.iterdir() if p.is_file())
    size = sum(p.stat().st_size for p in files)
    summary = {
        "kit": str(args.make_kit),
        "parts": list(kit.parts),
        "models": [f"{m.spec}@{m.input_size}" for m in kit.models],
        "graphs": kit.graphs,
        "files": len(files),
        "bytes": size,
    }
    if args.format == "json":
        emit_json(summary)
    else:
        print(
            f"wrote the calibration kit {args.make_kit}: {kit.graphs} graphs of {len(kit.models)} model(s), "
            f"{len(files)} files, {size / 1e6:.1f} MB\ncopy it to the device and run there: "
            f"{_ON_THE_DEVICE.replace('DIR', str(args.make_kit))}"
        )
    return 0


def _run_kit(args: argparse.Namespace, parts: list[str] | None) -> int:
    from optimizer.profiler import calibrate_from_kit, kit_parts, open_kit

    kit = open_kit(args.kit)
    chosen = kit_parts(kit, parts)
    _load_profile(args.device)
    if args.format != "json":
        what = f"the {kit.graphs} graphs of the kit" if "compute" in chosen else "the coding steps"
        print(f"timing {what} here ({args.threads} thread(s), {args.repeats} repeats) ...", file=sys.stderr)
    profile, fit, coding = calibrate_from_kit(
        kit, args.device, args.out, args.threads, args.name, args.repeats, args.server_here, chosen
    )
    models = [(m.spec, m.input_size) for m in kit.models]
    return _report(args, profile, fit, coding, list(chosen), models, {"kit": str(args.kit)})


def _report(
    args: argparse.Namespace,
    profile: DeviceProfile,
    fit: Calibration | None,
    coding: CodingFit | None,
    parts: list[str],
    models: list[tuple[str, int]],
    extra: dict[str, Any],
) -> int:
    compute = {k: v["value"] for k, v in asdict(profile.compute).items()}
    summary: dict[str, Any] = {"out": str(args.out), "parts": parts, **extra, "compute": compute}
    lines = [f"wrote {args.out}"]
    if fit is not None:
        summary |= {
            "models": [f"{spec}@{size}" for spec, size in models],
            "samples": fit.samples,
            "rms_residual_ms": fit.residual_ms,
            "rms_relative_error": fit.rms_relative_error,
            "fitted": fit.values,
        }
        lines.append(
            f"compute fitted on {fit.samples} segments, rms residual {fit.residual_ms:.3f} ms "
            f"({fit.rms_relative_error:.1%} relative)"
        )
        lines += [f"  {key}: {value:.4g}" for key, value in compute.items()]
    if coding is not None:
        summary |= {"coding": coding.values, "coding_rms_relative_error": coding.rms_relative_error}
        lines.append(f"coding fitted on {coding.samples} timings, rms relative error {coding.rms_relative_error:.1%}")
        lines += [f"  {key}: {value:.4g}" for key, value in coding.values.items()]
    if args.format == "json":
        emit_json(summary)
    else:
        print("\n".join(lines))
    return 0
