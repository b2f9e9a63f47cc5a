"""Resumable training state shared by the zoo trainer and the bottleneck trainer.

A checkpoint is ``{"config": identity, "model", "opt", "sched", "step", "wall_s"}`` written
atomically (a crash mid-write leaves the previous checkpoint). Resuming requires the same identity
(the fields that determine the run), so a checkpoint is never continued under other settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optimizer.errors import UserError

__all__ = ["TrainingState", "load_checkpoint", "save_atomic"]


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class TrainingState:
    """Model, optimizer, scheduler, step count and training wall time of one run."""

    def __init__(
        self,
        identity: dict[str, Any],
        model: nn.Module,
        opt: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler,
    ) -> None:
        self.identity, self.model, self.opt, self.sched = identity, model, opt, sched
        self.step = 0
        self.wall_s = 0.0

    def state(self) -> dict[str, Any]:
        return {
            "config": self.identity,
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "step": self.step,
            "wall_s": self.wall_s,
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["opt"])
        self.sched.load_state_dict(ckpt["sched"])
        self.step, self.wall_s = int(ckpt["step"]), float(ckpt["wall_s"])

    def save(self, path: Path) -> None:
        save_atomic(self.state(), path)


def load_checkpoint(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if there is one; a UserError if it belongs to another run."""
    if not path.is_file():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("config") != identity:
        raise UserError(
            f"checkpoint {path} belongs to a different training configuration ({ckpt.get('config')}); "
            "delete it or pass --restart to start over"
        )
    return ckpt  # type: ignore[no-any-return]
