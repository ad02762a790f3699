"""The command line: ``python -m mnist_lib COMMAND ...`` (``--help`` for each command)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import data as data_mod
from .experiments import CONFIGS
from .models import count_parameters
from .train import OPTIMIZERS, SCHEDULES, choose_device, fit, seed_everything


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def writable_path(text: str) -> Path:
    path = Path(text)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK) or path.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: its folder does not exist or is not writable")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_lib", description="The MNIST Book's library, from the shell.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a named setup and print per-epoch progress and the test accuracy",
        description="Train one of the book's setups on MNIST. Defaults are the setup's own (shown per setup below).",
        epilog="setups:\n" + "\n".join(
            f"  {name:8s} {c.name}: {c.optimizer} lr {c.lr}, batch {c.batch_size}, {c.epochs} epochs"
            for name, c in CONFIGS.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("model", choices=sorted(CONFIGS), help="which setup to train")
    train.add_argument("--epochs", type=positive_int, help="number of epochs")
    train.add_argument("--batch-size", type=positive_int, help="images per step")
    train.add_argument("--lr", type=positive_float, help="learning rate")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optimizer")
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    train.add_argument("--limit", type=positive_int, help="train on the first N images only (quick tries)")
    train.add_argument("--save", type=writable_path, help="write the trained weights (state_dict) to this file")
    train.add_argument("--data", help="folder of the four MNIST IDX files (default: the project's data/mnist)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    check = commands.add_parser("data", help="verify the MNIST files and print what they hold")
    check.add_argument("--data", help="folder of the four MNIST IDX files (default: the project's data/mnist)")
    return parser


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    config = CONFIGS[args.model]
    changes = {k: v for k, v in {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "optimizer": args.optimizer, "schedule": args.schedule,
    }.items() if v is not None}
    config = replace(config, **changes)
    try:
        device = choose_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    data = data_mod.load_mnist(args.data)
    train = data.train.head(args.limit) if args.limit else data.train
    seed_everything(args.seed)
    model = config.model()
    print(f"{config.name}: {count_parameters(model):,} parameters; {config.optimizer} lr {config.lr} "
          f"({config.schedule}), batch {config.batch_size}, {config.epochs} epochs, {len(train):,} images, on {device}")
    history = fit(
        model, train, evals={"test": data.test}, optimizer=config.optimizer, lr=config.lr,
        schedule=config.schedule, batch_size=config.batch_size, epochs=config.epochs, seed=args.seed,
        device=device, normalization=config.normalization, progress=not args.no_progress,
        **config.optimizer_kwargs,
    )
    for r in history.epochs:
        print(f"epoch {r['epoch']:3d}  train loss {r['train_loss']:.4f}  train acc {r['train_acc']:.4f}  "
              f"test loss {r['test_loss']:.4f}  test acc {r['test_acc']:.4f}  ({r['seconds']:.1f} s)")
    print(f"test accuracy: {history.final('test_acc'):.4f}")
    if args.save:
        import torch

        tmp = args.save.with_name(args.save.name + ".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(args.save)
        print(f"weights written to {args.save}")
    return 0


def cmd_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    root = data_mod.data_root(args.data)
    data = data_mod.load_mnist(root)
    print(f"{root}: checksums OK")
    for name, split in (("train", data.train), ("test", data.test)):
        print(f"  {name}: images {tuple(split.images.shape)} {split.images.dtype}, labels {tuple(split.labels.shape)} {split.labels.dtype}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"train": cmd_train, "data": cmd_data}[args.command](args, parser)
    except data_mod.MNISTDataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
