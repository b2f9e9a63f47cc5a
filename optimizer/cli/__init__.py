"""The ``split-opt`` command line: the only module that prints or exits."""

from __future__ import annotations

from optimizer.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
