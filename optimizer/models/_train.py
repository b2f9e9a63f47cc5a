"""Training a zoo model of any model spec: mixed input sizes, seeded, resumable, with a model card.

Each step draws one input size from ``input_sizes`` so a single set of weights serves all of them.
The run checkpoints to ``OUT/NAME.ckpt`` at every epoch end and every ``checkpoint_every_s``
seconds; running the same command again resumes from it. The finished run writes ``OUT/NAME.pt``
(a half-precision state dict) and ``OUT/NAME.json`` (the model card, with test accuracy per input
size measured on the test split, which training never sees).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optimizer.data import ImageDataset, SplitSizes, make_splits, normalize
from optimizer.errors import UserError
from optimizer.models._bnstats import apply_bn_stats, calibrate_bn, join_bn_stats, split_bn_stats
from optimizer.models._checkpoint import TrainingState, load_checkpoint, save_atomic
from optimizer.models._evaluate import accuracy
from optimizer.models._load import strict_load
from optimizer.models._registry import adapter_for, build_model, parse_model_spec
from optimizer.models._weights import load_state_dict_file

__all__ = ["TrainConfig", "TrainResult", "train_zoo_model"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (stored in the checkpoint and the card)."""

    name: str
    spec: str  # a canonical model spec, e.g. "mobilenetv2:alpha=0.35" or "resnet18:width=0.5"
    input_sizes: tuple[int, ...] = (32, 48, 64, 96)
    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    seed: int = 0
    split_seed: int = 0
    train_samples: int | None = None
    eval_samples: int | None = None
    checkpoint_every_s: float = 120.0
    command: str = ""
    init: str | None = None  # a weight spec to start from (file:PATH), e.g. to continue a finished run
    bn_samples: int = 2000  # train images that re-estimate BatchNorm statistics per input size

    def identity(self) -> dict[str, Any]:
        """The fields a checkpoint must agree on to be resumed (timing and command excluded)."""
        keep = asdict(self)
        for key in ("checkpoint_every_s", "command", "eval_samples", "bn_samples"):
            keep.pop(key)
        keep["input_sizes"] = list(self.input_sizes)
        return keep


@dataclass(frozen=True)
class TrainResult:
    weights_path: Path
    card_path: Path
    card: dict[str, Any]


def _augment(images01: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a shift of up to 1/14 of the size (zero padding)."""
    n, _, size, _ = images01.shape
    flip = torch.rand(n, generator=gen) < 0.5
    images01 = torch.where(flip.view(-1, 1, 1, 1), images01.flip(-1), images01)
    pad = max(1, size // 14)
    padded = F.pad(images01, (pad, pad, pad, pad))
    dx, dy = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
    return padded[:, :, dy : dy + size, dx : dx + size]


class _Run(TrainingState):
    """The mutable state of one training run; checkpoint = this object's ``state()``."""

    def __init__(self, cfg: TrainConfig, num_classes: int, steps_per_epoch: int) -> None:
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.spec, num_classes).train()
        if cfg.init:
            _load_init(model, cfg.init, cfg.spec)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
        )
        super().__init__(cfg.identity(), model, opt, sched)
        self.cfg = cfg


def _epoch_plan(cfg: TrainConfig, train_idx: np.ndarray, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """The sample order and the input size of every step of one epoch, from the seed alone."""
    rng = np.random.default_rng([cfg.seed, epoch])
    order = rng.permutation(train_idx)
    steps = len(order) // cfg.batch_size
    sizes = rng.choice(np.asarray(cfg.input_sizes), size=steps)
    return order[: steps * cfg.batch_size].reshape(steps, cfg.batch_size), sizes


def _train_step(
    run: _Run, dataset: ImageDataset, batch_idx: np.ndarray, size: int, gen: torch.Generator
) -> tuple[float, float]:
    x = normalize(_augment(dataset.images01(batch_idx, int(size)), gen))
    y = torch.from_numpy(dataset.labels[batch_idx])
    logits = run.model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=run.cfg.label_smoothing)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    return loss.item(), (logits.argmax(1) == y).float().mean().item()


ProgressFn = Callable[[int, int, dict[str, float]], None]


def _load_init(model: nn.Module, init: str, spec: str) -> None:
    kind, _, arg = init.partition(":")
    if kind != "file" or not arg:
        raise UserError(f"--init takes file:PATH (a state dict to start from), got {init!r}")
    state, _ = split_bn_stats(load_state_dict_file(Path(arg).expanduser()))
    strict_load(model, state, init, parse_model_spec(spec))


def _init_card(spec: str | None) -> dict[str, Any] | None:
    """The card of the run this one continued, when it sits beside the init weights."""
    if not spec:
        return None
    card = Path(spec.partition(":")[2]).expanduser().with_suffix(".json")
    return json.loads(card.read_text()) if card.is_file() else None


def _per_size_statistics(run: _Run, dataset: ImageDataset, train_idx: np.ndarray) -> dict[int, dict[str, torch.Tensor]]:
    cfg = run.cfg
    rng = np.random.default_rng(cfg.seed)
    sample = np.sort(rng.choice(train_idx, min(cfg.bn_samples, len(train_idx)), replace=False))
    return {s: calibrate_bn(run.model, dataset, sample, s) for s in cfg.input_sizes}


def _accuracy_at(
    model: nn.Module, stats: dict[str, torch.Tensor], dataset: ImageDataset, idx: np.ndarray, size: int
) -> float:
    sized = copy.deepcopy(model)
    apply_bn_stats(sized, stats)
    return round(accuracy(sized.eval(), dataset, idx, size), 4)


def _write_outputs(
    run: _Run,
    dataset: ImageDataset,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    out_dir: Path,
    split_sizes: dict[str, int],
) -> TrainResult:
    cfg = run.cfg
    model = run.model.eval()
    stats = _per_size_statistics(run, dataset, train_idx)
    acc = {str(s): _accuracy_at(model, stats[s], dataset, test_idx, s) for s in cfg.input_sizes}
    weights_path = out_dir / f"{cfg.name}.pt"
    state = join_bn_stats(model.state_dict(), stats)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    save_atomic(half, weights_path)
    previous = _init_card(cfg.init)
    spec = parse_model_spec(cfg.spec)
    card = {
        "name": cfg.name,
        "spec": str(spec),
        "family": spec.family,
        "alpha": dict(spec.values).get("alpha"),  # MobileNetV2 cards keep their alpha
        "parameters": sum(p.numel() for p in model.parameters()),
        "dataset": dataset.spec.split(":")[0],
        "dataset_spec": dataset.spec,
        "num_classes": dataset.num_classes,
        "classes": dataset.classes,
        "input_sizes": list(cfg.input_sizes),
        "accuracy": acc,
        "accuracy_split": "test",
        "test_samples": len(test_idx),
        "split_sizes": split_sizes,
        "split_seed": cfg.split_seed,
        "command": cfg.command,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "optimizer": f"AdamW(lr={cfg.lr:g}, weight_decay={cfg.weight_decay:g}), OneCycle, "
        f"label smoothing {cfg.label_smoothing:g}, flip + shift augmentation",
        "wall_time_s": round(run.wall_s, 1),
        "init": cfg.init,
        "init_card": previous and {k: previous.get(k) for k in ("command", "epochs", "wall_time_s", "accuracy")},
        "total_epochs": cfg.epochs + (previous.get("total_epochs", previous["epochs"]) if previous else 0),
        "total_wall_time_s": round(
            run.wall_s + (previous.get("total_wall_time_s", previous["wall_time_s"]) if previous else 0), 1
        ),
        "bn_statistics": f"per input size, re-estimated on {min(cfg.bn_samples, len(train_idx))} train images "
        "after training (stored as bn_stats.SIZE.* in the weights file)",
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "torch": torch.__version__,
        "weights_sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest(),
        "weights_dtype": "float16",
    }
    card_path = out_dir / f"{cfg.name}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return TrainResult(weights_path, card_path, card)


def train_zoo_model(
    cfg: TrainConfig, dataset: ImageDataset, out_dir: Path, restart: bool = False, progress: ProgressFn | None = None
) -> TrainResult:
    """Train (or resume) one zoo model and write its weights and card to ``out_dir``."""
    adapter = adapter_for(cfg.spec)
    for size in cfg.input_sizes:
        adapter.check_input_size(size)
    splits = make_splits(
        dataset, SplitSizes(**{**dataset.default_sizes.__dict__, "train": cfg.train_samples}), seed=cfg.split_seed
    )
    steps_per_epoch = len(splits.train) // cfg.batch_size
    if steps_per_epoch == 0:
        raise UserError(
            f"the train split has {len(splits.train)} samples, fewer than one batch of "
            f"{cfg.batch_size}; lower --batch-size"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / f"{cfg.name}.ckpt"
    if restart:
        ckpt_path.unlink(missing_ok=True)
    run = _Run(cfg, dataset.num_classes, steps_per_epoch)
    ckpt = load_checkpoint(ckpt_path, cfg.identity())
    if ckpt is not None:
        run.restore(ckpt)
    try:
        _run_steps(run, dataset, splits.train, steps_per_epoch, ckpt_path, progress)
    except KeyboardInterrupt:
        run.save(ckpt_path)  # Ctrl-C keeps every finished step
        raise
    test_idx = splits.test[: cfg.eval_samples] if cfg.eval_samples else splits.test
    result = _write_outputs(run, dataset, splits.train, test_idx, out_dir, splits.sizes())
    ckpt_path.unlink(missing_ok=True)
    return result


def _run_steps(
    run: _Run,
    dataset: ImageDataset,
    train_idx: np.ndarray,
    steps_per_epoch: int,
    ckpt_path: Path,
    progress: ProgressFn | None,
) -> None:
    cfg = run.cfg
    total = cfg.epochs * steps_per_epoch
    last_save = time.monotonic()
    while run.step < total:
        epoch, first = divmod(run.step, steps_per_epoch)
        batches, sizes = _epoch_plan(cfg, train_idx, epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + run.step)
        for i in range(first, steps_per_epoch):
            t0 = time.monotonic()
            loss, acc = _train_step(run, dataset, batches[i], int(sizes[i]), gen)
            run.step += 1
            run.wall_s += time.monotonic() - t0
            if progress:
                progress(run.step, total, {"epoch": epoch + 1, "loss": loss, "acc": acc})
            if time.monotonic() - last_save > cfg.checkpoint_every_s or i == steps_per_epoch - 1:
                run.save(ckpt_path)
                last_save = time.monotonic()
