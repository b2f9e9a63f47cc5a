"""Write fitted prices into a device profile, each with where and how it was measured.

Shared by ``split-opt calibrate`` (the full install) and ``split-opt calibrate --kit`` (the device
install): the same keys, the same sources (naming the command), the same YAML.
"""

from __future__ import annotations

import copy
import datetime as dt
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from optimizer.config import DeviceProfile, load_yaml_mapping, parse_device_profile
from optimizer.profiler._coding import CodingFit
from optimizer.profiler._fit import UNMEASURABLE, Calibration

__all__ = ["apply_coding_fit", "apply_compute_fit", "write_profile"]


def _machine() -> str:
    return f"{platform.node() or 'this machine'} ({platform.machine()}, {platform.processor() or 'cpu'})"


def apply_compute_fit(
    data: dict[str, Any],
    fit: Calibration,
    models: Sequence[tuple[str, int]],
    threads: int,
    runtime: str,
    command: str = "split-opt calibrate",
) -> None:
    """Write a fit's prices, each with where it was measured, into a profile's data (in place)."""
    where = (
        f"calibrated by `{command}` on {_machine()} on {dt.date.today()}, "
        f"{runtime}, {threads} thread(s), models {', '.join(f'{s}@{n}' for s, n in models)}, "
        f"{fit.samples} runs (segments alone and heads), rms relative error {fit.rms_relative_error:.1%}"
    )
    compute = data["compute"]
    for key, value in fit.values.items():
        note = " (fit coefficient 0: no measurable cost)" if value == UNMEASURABLE else ""
        if key == "weight_cache_bytes":
            note = " (the size among CACHE_GRID whose fit explains the runs best)"
        compute[key] = {"value": float(f"{value:.4g}"), "source": where + note}
    compute["threads"] = {"value": threads, "source": "the thread count the calibration ran with"}


def apply_coding_fit(
    data: dict[str, Any], coding: CodingFit, server_here: bool, command: str = "split-opt calibrate"
) -> None:
    """Write the coding fit into the profile's ``coding`` section (and the server's, when
    ``server_here``: the server is this machine), in place."""
    coded = (
        f"calibrated by `{command}` on {platform.node() or 'this machine'} on {dt.date.today()}: "
        f"each unit timed through the real codec at {coding.samples} sizes in all, fitted as call + count / rate "
        f"(rms relative error {coding.rms_relative_error:.1%})"
    )
    section = {key: {"value": float(f"{value:.4g}"), "source": coded} for key, value in sorted(coding.values.items())}
    # NOTE: keys this calibration does not measure (the context coder's) keep their values
    data["coding"] = {**data.get("coding", {}), **section}
    if server_here:
        # a copy: the same objects twice would be written as a YAML anchor and alias
        data["server"]["coding"] = {**data["server"].get("coding", {}), **copy.deepcopy(section)}


def write_profile(data: dict[str, Any], out_path: Path, name: str | None = None) -> DeviceProfile:
    """Write a profile's data as YAML (renamed to ``name`` if given) and read it back, checked."""
    if name:
        data["name"] = name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(yaml.safe_dump(data, sort_keys=False, width=100))
    return parse_device_profile(load_yaml_mapping(out_path), out_path)
