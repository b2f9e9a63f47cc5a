"""``split-opt zoo list|train|eval``: the models available, training one, re-measuring one."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from optimizer.cli._common import add_format, emit_json, parse_int_list, positive_int, table
from optimizer.data import DEFAULT_DATASET, make_splits, open_dataset
from optimizer.errors import UserError
from optimizer.models import (
    ModelSpec,
    TrainConfig,
    accuracy,
    adapter_for,
    legacy_model_spec,
    list_zoo,
    load_spec_model,
    parse_model_spec,
    train_zoo_model,
    zoo_name,
)

__all__ = ["add_zoo_parser"]


def add_zoo_parser(sub: argparse._SubParsersAction) -> None:
    zoo = sub.add_parser(
        "zoo",
        help="models available; train or re-evaluate one",
        description="The model zoo: the bundled Fashion-MNIST models of three families (`split-opt zoo list` "
        "shows them with their specs), torchvision's ImageNet weights, and models you train.",
    )
    zsub = zoo.add_subparsers(dest="zoo_command", required=True, metavar="{list,train,eval}")

    p = zsub.add_parser(
        "list",
        help="list the zoo's models with accuracy per input size",
        description="List every model: name, source, dataset, model spec, classes, "
        "and test accuracy per input size (from its model card).",
    )
    add_format(p)
    p.set_defaults(func=_list)

    p = zsub.add_parser(
        "train",
        help="train a model of any spec on a dataset (resumable)",
        description="Train a model (--model SPEC, or --alpha A for the zoo's width family at alpha=A) from scratch on "
        "the train split with the input sizes mixed, checkpointing as it goes; run the same command "
        "again to resume. Writes OUT/NAME.pt and the card OUT/NAME.json.",
    )
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset spec (default: %(default)s)")
    _add_model_arguments(p)
    p.add_argument(
        "--input-sizes",
        type=parse_int_list,
        default=(32, 48, 64, 96),
        help="comma-separated square input sizes to train for (default: 32,48,64,96)",
    )
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--train-samples", type=positive_int, default=None, help="use only this many train samples (default: all)"
    )
    p.add_argument(
        "--eval-samples",
        type=positive_int,
        default=None,
        help="score the card on only this many test samples (default: all)",
    )
    p.add_argument(
        "--name", default=None, help="model name (default: FAMILY_PARAMS_DATASET, as `split-opt zoo list` names them)"
    )
    p.add_argument("--out", type=Path, default=Path("zoo"), help="output folder (default: %(default)s)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument(
        "--init",
        default=None,
        help="start from these weights (file:PATH), e.g. to train a finished "
        "model further; its card, if beside it, is kept in the new card",
    )
    add_format(p)
    p.set_defaults(func=_train)

    p = zsub.add_parser(
        "eval",
        help="re-measure a zoo model's accuracy on a split",
        description="Measure top-1 accuracy of a model at each input size on one "
        "split of its dataset (default: test), next to its card.",
    )
    _add_model_arguments(p)
    p.add_argument(
        "--weights",
        default=None,
        help="zoo:NAME, torchvision or file:PATH (default: the zoo model of the spec for --dataset)",
    )
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument("--input-sizes", type=parse_int_list, default=None)
    p.add_argument("--split", default="test", choices=("calib", "val", "test"))
    p.add_argument("--samples", type=positive_int, default=None, help="evaluate only the first N")
    add_format(p)
    p.set_defaults(func=_eval)


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--model", help="model spec (`split-opt zoo list` shows the zoo's; docs/models.md all families)")
    group.add_argument("--alpha", type=float, help="shorthand for the zoo's width family at alpha=ALPHA")


def _model_spec(args: argparse.Namespace) -> ModelSpec:
    return parse_model_spec(args.model if args.model else legacy_model_spec(args.alpha))


def _list(args: argparse.Namespace) -> int:
    entries = list_zoo()
    if args.format == "json":
        emit_json([e.to_json() for e in entries])
        return 0
    rows = [
        [
            e.name,
            e.source,
            e.dataset,
            e.spec,
            str(e.num_classes),
            " ".join(f"{s}:{a:.3f}" for s, a in e.accuracy.items()),
            "yes" if e.available else "no",
        ]
        for e in entries
    ]
    print(table(rows, ["name", "source", "dataset", "model", "classes", "accuracy by input size", "available"]))
    return 0


def _dataset_slug(spec: str) -> str:
    kind, _, arg = spec.partition(":")
    return Path(arg).name if kind == "imagefolder" else kind


def _train(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.dataset)
    spec = _model_spec(args)
    for size in args.input_sizes:
        adapter_for(spec).check_input_size(size)
    cfg = TrainConfig(
        name=args.name or zoo_name(spec, _dataset_slug(args.dataset)),
        spec=str(spec),
        input_sizes=tuple(args.input_sizes),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        train_samples=args.train_samples,
        eval_samples=args.eval_samples,
        init=args.init,
        command="split-opt " + shlex.join(sys.argv[1:]),
    )
    bar = tqdm(desc=cfg.name, unit="step", dynamic_ncols=True, mininterval=1.0, disable=args.format == "json")

    def progress(step: int, total: int, info: dict[str, float]) -> None:
        bar.total = total
        bar.n = step
        bar.set_postfix(epoch=int(info["epoch"]), loss=f"{info['loss']:.3f}", acc=f"{info['acc']:.3f}", refresh=False)
        bar.update(0)

    result = train_zoo_model(cfg, dataset, args.out, restart=args.restart, progress=progress)
    bar.close()
    if args.format == "json":
        emit_json(result.card)
    else:
        acc = ", ".join(f"{s}: {a:.4f}" for s, a in result.card["accuracy"].items())
        print(f"wrote {result.weights_path} and {result.card_path}; test accuracy by input size: {acc}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.dataset)
    spec = _model_spec(args)
    loaded = load_spec_model(spec, args.weights, dataset.spec.split(":")[0])
    sizes = args.input_sizes or (tuple(loaded.entry.input_sizes) if loaded.entry else (224,))
    for size in sizes:
        adapter_for(spec).check_input_size(size)
    if loaded.num_classes != dataset.num_classes:
        raise UserError(
            f"weights {loaded.weights} have {loaded.num_classes} classes but dataset "
            f"{dataset.spec} has {dataset.num_classes}; use weights trained on it"
        )
    indices = make_splits(dataset)[args.split][: args.samples]
    with tqdm(total=len(indices) * len(sizes), unit="img", desc="evaluating", disable=args.format == "json") as bar:
        measured = {str(s): accuracy(loaded.at_size(s), dataset, indices, s, progress=bar.update) for s in sizes}
    card = loaded.entry.accuracy if loaded.entry else {}
    if args.format == "json":
        emit_json(
            {
                "weights": loaded.weights,
                "dataset": dataset.spec,
                "split": args.split,
                "samples": len(indices),
                "accuracy": measured,
                "card_accuracy": card,
            }
        )
        return 0
    rows = [[s, f"{a:.4f}", f"{card[s]:.4f}" if s in card else "-"] for s, a in measured.items()]
    print(f"{loaded.weights} on {dataset.spec}, {args.split} split, {len(indices)} samples")
    print(table(rows, ["input size", "accuracy", "card"]))
    return 0
