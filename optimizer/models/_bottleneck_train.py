"""Training a bottleneck at split k by distillation from the frozen model (the teacher).

The teacher's head activations at k and its logits are computed once for the train images used
(train split only). Each step: encoder -> rounded latent (straight-through) -> decoder -> frozen
tail; loss = ||decoded - activation||^2 / Var(activation) + kl_weight * T^2 KL(teacher || student at
temperature T) + ce_weight * CE(student, label) + beta * bits per image (the prior's estimate under
uniform noise). The label term is the second half of Matsubara et al.'s objective: with the tail
frozen it lets encoder and decoder correct some of the teacher's mistakes instead of copying
them. Checkpoints go to ``OUT/NAME.ckpt`` every epoch and every ``checkpoint_every_s`` seconds and
on Ctrl-C; the same command resumes. The end writes ``OUT/NAME.pt`` and the card ``OUT/NAME.json`` with val accuracy
through the rounded latent and the prior's bits (the coded payload is measured by the codec layer).
"""

from __future__ import annotations

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

from optimizer.data import ImageDataset, make_splits
from optimizer.errors import UserError
from optimizer.models._bottleneck import ENTROPY_MODELS, BottleneckSpec, LearnedBottleneck, conv_macs
from optimizer.models._bottleneck_io import LoadedBottleneck, bottleneck_name, load_bottleneck
from optimizer.models._bottleneck_teacher import TeacherData, teacher_outputs
from optimizer.models._checkpoint import TrainingState, load_checkpoint, save_atomic

__all__ = ["BottleneckTrainConfig", "train_bottleneck"]

ProgressFn = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class BottleneckTrainConfig:
    model: str  # the teacher's model spec (canonical)
    input_size: int
    split: str  # the split point: a node or module name, or its index k
    beta: float
    weights: str | None = None  # the teacher's weights (None = the zoo model of the spec)
    epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    latent: int = 16
    hidden: int = 0  # 0 = the split's channel count
    stride: int = 2
    kl_weight: float = 1.0
    ce_weight: float = 2.0  # chosen on k = 11 (README, issue 8 note): 0 / 0.5 / 1 / 2 / 4
    temperature: float = 2.0
    train_samples: int | None = None  # None = the whole train split
    eval_samples: int | None = None
    entropy: str = "factorized"  # or "hyperprior"
    side: int = 8  # the hyperprior's side latent channels
    seed: int = 0
    split_seed: int = 0
    checkpoint_every_s: float = 120.0
    command: str = ""

    def name(self, node: str) -> str:
        """The files' name, once the split point's fx node name is known."""
        return bottleneck_name(self.model, self.input_size, node, self.beta, self.entropy)

    def identity(self) -> dict[str, Any]:
        keep = asdict(self)
        for key in ("checkpoint_every_s", "command", "eval_samples"):
            keep.pop(key)
        if self.entropy == "factorized":  # as before the hyperprior existed: older checkpoints resume
            keep.pop("entropy")
            keep.pop("side")
        return keep


def _spec(cfg: BottleneckTrainConfig, shape: tuple[int, ...]) -> BottleneckSpec:
    c, h, w = (int(d) for d in shape)
    return BottleneckSpec(c, h, w, cfg.hidden or c, cfg.latent, cfg.stride, entropy=cfg.entropy, side=cfg.side)


class _Run(TrainingState):
    def __init__(self, cfg: BottleneckTrainConfig, spec: BottleneckSpec, total_steps: int) -> None:
        torch.manual_seed(cfg.seed)
        net = LearnedBottleneck(spec)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=total_steps, pct_start=0.1)
        super().__init__(cfg.identity(), net, opt, sched)
        self.cfg, self.spec, self.net = cfg, spec, net


def _loss(run: _Run, data: TeacherData, batch: np.ndarray, var: float) -> tuple[torch.Tensor, dict[str, float]]:
    cfg = run.cfg
    act, teacher = data.acts[batch], data.logits[batch]
    recon, bits = run.net(act)
    mse = F.mse_loss(recon, act) / var
    t = cfg.temperature
    logits = data.tail(recon)
    student = F.log_softmax(logits / t, dim=1)
    kl = F.kl_div(student, F.log_softmax(teacher / t, dim=1), log_target=True, reduction="batchmean") * t * t
    ce = F.cross_entropy(logits, data.labels[batch])
    rate = bits.mean()
    loss = mse + cfg.kl_weight * kl + cfg.ce_weight * ce + cfg.beta * rate
    return loss, {"mse": mse.item(), "kl": kl.item(), "ce": ce.item(), "bits": rate.item()}


def _run_steps(run: _Run, data: TeacherData, ckpt: Path, progress: ProgressFn | None) -> None:
    n, bs = len(data.acts), run.cfg.batch_size
    per_epoch = n // bs
    total = run.cfg.epochs * per_epoch
    var = float(data.acts.var())
    last_save = time.monotonic()
    while run.step < total:
        epoch, first = divmod(run.step, per_epoch)
        order = np.random.default_rng([run.cfg.seed, epoch]).permutation(n)
        for i in range(first, per_epoch):
            t0 = time.monotonic()
            torch.manual_seed(run.cfg.seed * 1_000_003 + run.step)  # per step: a resumed run draws the same noise
            loss, info = _loss(run, data, order[i * bs : (i + 1) * bs], var)
            run.opt.zero_grad(set_to_none=True)
            loss.backward()
            run.opt.step()
            run.sched.step()
            run.step += 1
            run.wall_s += time.monotonic() - t0
            if progress:
                progress(run.step, total, {"epoch": epoch + 1, "loss": loss.item(), **info})
            if time.monotonic() - last_save > run.cfg.checkpoint_every_s or i == per_epoch - 1:
                run.save(ckpt)
                last_save = time.monotonic()


@torch.no_grad()
def _val_scores(net: LearnedBottleneck, data: TeacherData, labels: np.ndarray) -> dict[str, float]:
    net.eval()
    correct, bits = [], []
    for start in range(0, len(data.acts), 250):
        latent = net.latent(data.acts[start : start + 250])
        bits.append(net.bits(latent))
        correct.append(data.tail(net.decode(latent)).argmax(1).numpy() == labels[start : start + 250])
    teacher = data.logits.argmax(1).numpy() == labels
    return {
        "val_accuracy": round(float(np.concatenate(correct).mean()), 4),
        "val_teacher_accuracy": round(float(teacher.mean()), 4),
        "val_prior_bits_mean": round(float(torch.cat(bits).mean()), 1),
    }


def _card(
    run: _Run, dataset: ImageDataset, scores: dict[str, float], weights: Path, n_train: int, data: TeacherData
) -> dict[str, Any]:
    cfg, spec = run.cfg, run.spec
    return {
        "name": cfg.name(data.name),
        "kind": "bottleneck",
        "model": cfg.model,
        "input_size": cfg.input_size,
        "split": data.name,
        "k": data.k,
        "beta": cfg.beta,
        "teacher": cfg.weights or "zoo",
        "dataset_spec": dataset.spec,
        "spec": spec.to_json(),
        "latent_shape": list(spec.latent_shape),
        "entropy": spec.entropy,
        "encoder_macs": conv_macs(run.net.encoder, (spec.channels, spec.height, spec.width)),
        "decoder_macs": conv_macs(run.net.decoder, spec.latent_shape),
        "training": {**cfg.identity(), "command": cfg.command},
        "epochs": cfg.epochs,
        "train_images": n_train,
        "steps": run.step,
        "wall_time_s": round(run.wall_s, 1),
        "val_samples": len(data.labels),
        **scores,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "torch": torch.__version__,
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }


def train_bottleneck(
    cfg: BottleneckTrainConfig,
    dataset: ImageDataset,
    out_dir: Path,
    restart: bool = False,
    progress: ProgressFn | None = None,
    cache_dir: Path | None = None,
) -> LoadedBottleneck:
    """Train (or resume) one bottleneck; write ``OUT/NAME.pt`` and ``OUT/NAME.json``. A finished one
    (card present, no checkpoint) is replaced only with ``restart``.

    ``cache_dir``: where the teacher's outputs on the train images are kept between runs (several
    betas at one split share them)."""
    if cfg.entropy not in ENTROPY_MODELS or cfg.side < 1:
        raise UserError(
            f"a bottleneck's entropy model is one of {', '.join(ENTROPY_MODELS)} with side >= 1, got "
            f"{cfg.entropy!r} and side={cfg.side}; pass one of those"
        )
    if min(cfg.beta, cfg.kl_weight, cfg.ce_weight) < 0 or cfg.stride < 1 or cfg.latent < 1:
        raise UserError(
            f"a bottleneck needs beta, kl_weight, ce_weight >= 0, stride >= 1 and latent >= 1, got "
            f"beta={cfg.beta:g}, kl_weight={cfg.kl_weight:g}, ce_weight={cfg.ce_weight:g}, stride={cfg.stride}, "
            f"latent={cfg.latent}; pass values in those ranges"
        )
    splits = make_splits(dataset, seed=cfg.split_seed)
    train_idx = np.sort(np.random.default_rng(cfg.seed).permutation(splits.train)[: cfg.train_samples])
    if len(train_idx) < cfg.batch_size:
        raise UserError(f"{len(train_idx)} train images are fewer than one batch of {cfg.batch_size}; lower it")
    data = teacher_outputs(cfg, dataset, train_idx, cache_dir / "bottleneck-teacher" if cache_dir else None)
    name = cfg.name(data.name)
    finished = out_dir / f"{name}.json"
    if finished.is_file() and not (out_dir / f"{name}.ckpt").is_file() and not restart:
        raise UserError(
            f"bottleneck {name} is already trained in {out_dir} (card {finished.name}); pass --restart to "
            "train it again and replace it, or --out another folder"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / f"{name}.ckpt"
    if restart:
        ckpt.unlink(missing_ok=True)
    run = _Run(cfg, _spec(cfg, tuple(data.acts.shape[1:])), cfg.epochs * (len(train_idx) // cfg.batch_size))
    state = load_checkpoint(ckpt, cfg.identity())
    if state is not None:
        run.restore(state)
    try:
        _run_steps(run, data, ckpt, progress)
    except KeyboardInterrupt:
        run.save(ckpt)
        raise
    val_idx = splits.val[: cfg.eval_samples] if cfg.eval_samples else splits.val
    val = teacher_outputs(cfg, dataset, val_idx)
    scores = _val_scores(run.net, val, dataset.labels[val_idx])
    weights = out_dir / f"{name}.pt"
    save_atomic(run.net.state_dict(), weights)
    finished.write_text(json.dumps(_card(run, dataset, scores, weights, len(train_idx), val), indent=2))
    ckpt.unlink(missing_ok=True)
    return load_bottleneck(weights)
