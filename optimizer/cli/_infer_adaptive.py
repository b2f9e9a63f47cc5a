"""``split-opt infer deploy/NAME IMAGE... --adaptive``: the bandwidth-adaptive device half.

Frames at the policy's rate (``--fps`` overrides it), each with the configuration the policy names for
the link the device estimates; every switch is printed as it happens (time, estimate, old -> new; on
stderr with ``--format json``, whose stdout is the trace: frames, switches, probes, summary).
``--config TAG`` runs one configuration through the same loop instead (no switching).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from optimizer.cli._common import emit_json, table

__all__ = ["add_adaptive_infer_args", "infer_adaptive"]


def add_adaptive_infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--adaptive",
        action="store_true",
        help="an adaptive bundle: estimate the uplink rate and RTT, switch configuration by the bundle's policy",
    )
    p.add_argument("--fps", type=float, default=None, help="--adaptive: frames per second (default: the policy's)")
    p.add_argument(
        "--config", type=int, default=None, metavar="TAG", help="--adaptive: run this configuration only (no switching)"
    )


def _switch_line(record: Any) -> str:
    return (
        f"t={record.t_s:7.2f} s  frame {record.frame}: uplink ~{record.rate_kbps:.4g} kbps, rtt ~{record.rtt_ms:.3g} ms"
        f"  tag {record.old} -> {record.new} ({record.reason})"
    )


def infer_adaptive(args: argparse.Namespace, bundle: Any, server: Any, transport: str) -> int:
    from optimizer.deploy._adaptive import AdaptiveOptions, run_adaptive

    out = sys.stderr if args.format == "json" else sys.stdout

    def report(record: Any) -> None:
        out.write(_switch_line(record) + "\n")
        out.flush()

    options = AdaptiveOptions(fps=args.fps, fixed_tag=args.config)
    trace = run_adaptive(bundle, args.images, server, options, report)
    doc = {"url": args.url, "transport": transport, **trace.to_json()}
    if args.format == "json":
        emit_json(doc)
        return 0
    summary = doc["summary"]
    met = summary["deadline_met_fraction"]
    rows = [[str(tag), str(n)] for tag, n in sorted(summary["frames_per_tag"].items(), key=lambda kv: int(kv[0]))]
    print(table(rows, ["tag", "frames"]))
    print(
        f"{summary['frames']} frames answered, {summary['switches']} switches, {summary['probes']} probes; "
        f"deadline {doc['deadline_ms']} ms met by {'-' if met is None else f'{100 * met:.1f} %'} of frames"
    )
    return 0
