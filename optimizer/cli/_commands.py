"""Which module registers which subcommands, loaded only as needed.

``split-opt infer`` and ``calibrate --kit`` must start without torch (the device install,
packaging/device, has no torch at all), so the parser loads only the module of the command being
run; ``--help`` loads them all. Where a module cannot be imported because the full install is
missing (the device install), its commands stay listed and answer with one line that says how to
get them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Sequence
from functools import partial
from typing import Any

from optimizer.errors import UserError

__all__ = ["COMMAND_MODULES", "add_parsers", "command_of", "full_install_missing", "needs_full_install"]

# (commands, module, function that adds their parsers), in the order `--help` lists them
COMMAND_MODULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("zoo",), "optimizer.cli._zoo", "add_zoo_parser"),
    (("splits",), "optimizer.cli._splits", "add_splits_parser"),
    (("profile",), "optimizer.cli._profile", "add_profile_parser"),
    (("calibrate",), "optimizer.cli._calibrate", "add_calibrate_parser"),
    (("bottleneck",), "optimizer.cli._bottleneck", "add_bottleneck_parser"),
    (("search",), "optimizer.cli._search", "add_search_parser"),
    (("export",), "optimizer.cli._export", "add_export_parser"),
    (("serve", "infer", "verify"), "optimizer.cli._deploy", "add_deploy_parsers"),
    (("report",), "optimizer.cli._report", "add_report_parser"),
    (("keygen",), "optimizer.cli._trust", "add_keygen_parser"),
)
# distributions only the full install brings (the device install has none of them)
_FULL_ONLY = {"torch", "torchvision", "fvcore", "optuna", "plotly", "yaml", "tqdm", "onnx", "sklearn"}


def full_install_missing(exc: ModuleNotFoundError) -> str | None:
    """The missing module's name if this is the device install (no torch) and the module is one only
    the full install has; None otherwise (in the full install a missing module is a real bug)."""
    name = exc.name or ""
    if importlib.util.find_spec("torch") is not None:
        return None
    return name if name.split(".")[0] in _FULL_ONLY or name.startswith("optimizer.") else None


def needs_full_install(command: str, missing: str) -> UserError:
    return UserError(
        f"`split-opt {command}` needs the full install, but {missing} is not installed (this is the device "
        "install); install split-opt itself (`pip install split-opt`) where you run this command"
    )


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _needs_full_install(command: str, missing: str, _args: argparse.Namespace) -> int:
    raise needs_full_install(command, missing)


def _add_unavailable(sub: Any, commands: tuple[str, ...], missing: str) -> None:
    for command in commands:
        # no option prefix: every word after the command, options included, is taken and ignored
        parser = sub.add_parser(
            command, help=f"(full install only: needs {missing})", add_help=False, prefix_chars="\0"
        )
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(func=partial(_needs_full_install, command, missing))


def add_parsers(sub: Any, command: str | None) -> None:
    """Register the parsers of ``command``'s module, or of every module when it names none of them."""
    chosen = [entry for entry in COMMAND_MODULES if command in entry[0]] or list(COMMAND_MODULES)
    for commands, module, function in chosen:
        try:
            adder = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError as exc:
            missing = full_install_missing(exc)
            if missing is None:
                raise
            _add_unavailable(sub, commands, missing)
            continue
        adder(sub)
