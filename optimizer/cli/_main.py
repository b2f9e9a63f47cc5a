"""Entry point: parse, dispatch, and apply the error rule.

A :class:`UserError` prints one line on stderr and exits 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from optimizer import __version__
from optimizer.cli._commands import add_parsers, command_of, full_install_missing, needs_full_install
from optimizer.errors import UserError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (plus the usage hint) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"split-opt: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the module of the command it names is loaded (see _commands)."""
    parser = _Parser(
        prog="split-opt",
        description=(
            "Find where to split a vision network between a device and a server, trading device "
            "compute, bytes on the network and accuracy."
        ),
    )
    parser.add_argument("--version", action="version", version=f"split-opt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=_Parser,
        metavar="{zoo,splits,profile,calibrate,bottleneck,search,export,serve,infer,verify,report,keygen}",
    )
    add_parsers(sub, command_of(argv))
    return parser


def _run(args: argparse.Namespace) -> int:
    """Run the command; a module that only the full install has becomes a one-line user error."""
    try:
        return int(args.func(args))
    except ModuleNotFoundError as exc:
        missing = full_install_missing(exc)
        if missing is None:
            raise
        raise needs_full_install(args.command, missing) from exc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"split-opt: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("split-opt: interrupted\n")
        return 130
