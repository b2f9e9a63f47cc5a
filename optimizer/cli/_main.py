"""Entry point: parse, dispatch, and apply the error rule.

A :class:`UserError` prints one line on stderr and exits 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from optimizer import __version__
from optimizer.errors import UserError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (plus the usage hint) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"split-opt: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from optimizer.cli._bottleneck import add_bottleneck_parser
    from optimizer.cli._deploy import add_deploy_parsers
    from optimizer.cli._export import add_export_parser
    from optimizer.cli._profile import add_profile_parsers
    from optimizer.cli._report import add_report_parser
    from optimizer.cli._search import add_search_parser
    from optimizer.cli._splits import add_splits_parser
    from optimizer.cli._trust import add_keygen_parser
    from optimizer.cli._zoo import add_zoo_parser

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
    add_zoo_parser(sub)
    add_splits_parser(sub)
    add_profile_parsers(sub)
    add_bottleneck_parser(sub)
    add_search_parser(sub)
    add_export_parser(sub)
    add_deploy_parsers(sub)
    add_report_parser(sub)
    add_keygen_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"split-opt: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("split-opt: interrupted\n")
        return 130
