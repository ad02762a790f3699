"""The command line: ``python -m mnist_lib COMMAND ...`` (``--help`` for each command)."""

from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import data as data_mod
from . import files, saved
from .book import redraw
from .checkpoint import CheckpointError
from .experiments import CONFIGS, LOSSES, Config
from .models import count_parameters
from .train import (DEVICE_ENV_VAR, OPTIMIZERS, SCHEDULES, TrainingDiverged, choose_device, evaluate, fit,
                    predict_proba, seed_everything)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the message and where the usage is, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def number(kind: type, low: float, high: float, what: str):
    """An argparse type: a ``kind`` (int or float) with ``low <= value < high``, else a usage error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not low <= value < high:  # also rules out NaN
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = number(int, 1, float("inf"), "a positive integer")
non_negative_int = number(int, 0, float("inf"), "a whole number (0 or more)")
seed_value = number(int, 0, 2**63, "a seed from 0 to 2**63 - 1")
# Learning rates: positive, and small enough for float32 (this also rules out inf).
positive_float = number(float, 1e-30, 1e30, "a positive number below 1e30")


def device_name(text: str) -> torch.device:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a device name: cpu, cuda, cuda:N or mps")
    try:
        return choose_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def writable_path(text: str) -> Path:
    """A file that can be written (:func:`mnist_lib.files.check_writable`): not a folder or a device, in a
    writable folder. A symbolic link is written through to its target."""
    try:
        return files.check_writable(text)
    except files.WriteError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def folder_name(text: str) -> str:
    if not text.strip():  # Path("") is the current folder: never what an empty value meant
        raise argparse.ArgumentTypeError("expected a folder name, got an empty one (leave --data out to use the "
                                         "project's data/mnist)")
    return text


def command(commands, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand's parser, which the command's one-line errors use (``args.subparser``)."""
    sub = commands.add_parser(name, help=help, **kwargs)
    sub.set_defaults(subparser=sub)
    return sub


DATA_HELP = "folder of the four MNIST IDX files (default: the project's data/mnist)"
NO_VERIFY_HELP = ("read the files without checking that they are the original MNIST: any IDX dataset with "
                  "MNIST's file names (28x28 uint8 images, labels 0-9)")


def build_parser() -> argparse.ArgumentParser:
    # Over 60 lines on purpose: one declarative block per command, read as the CLI's reference.
    parser = Parser(prog="python -m mnist_lib", description="The MNIST Book's library, from the shell.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = command(
        commands, "train", "train a named setup and print per-epoch progress and the test accuracy",
        description="Train one of the book's setups on MNIST. Defaults are the setup's own (shown per setup below).",
        epilog="setups:\n" + "\n".join(f"  {name:8s} {c.name}: {c.optimizer} lr {c.lr}, batch {c.batch_size}, "
                                        f"{c.epochs} epochs" for name, c in CONFIGS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("model", choices=sorted(CONFIGS), help="which setup to train")
    train.add_argument("--epochs", type=positive_int, help="number of epochs")
    train.add_argument("--batch-size", type=positive_int, help="images per step")
    train.add_argument("--lr", type=positive_float, help="learning rate")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optimizer")
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    train.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    train.add_argument("--device", type=device_name, help="cpu, cuda, cuda:N or mps (default: the best available)")
    train.add_argument("--limit", type=positive_int, help="train on the first N images only (quick tries)")
    train.add_argument("--save", type=writable_path, metavar="FILE",
                       help="write the trained model to this file (its architecture and weights: mnist_lib.load_model reads it)")
    train.add_argument("--checkpoint", type=writable_path, metavar="FILE",
                       help="write the whole training state to this file after every epoch (atomically); "
                            "one run at a time may use it")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint if it exists (same setup and options), else start afresh")
    train.add_argument("--overwrite", action="store_true",
                       help="start afresh even though --checkpoint exists, replacing it after the first epoch")
    train.add_argument("--data", type=folder_name, help=DATA_HELP)
    train.add_argument("--no-verify", action="store_true",
                       help=NO_VERIFY_HELP + "; other data than MNIST are standardised with their own mean and std")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    check = command(commands, "data", "verify the MNIST files and print what they hold")
    check.add_argument("--data", type=folder_name, help=DATA_HELP)
    check.add_argument("--no-verify", action="store_true", help=NO_VERIFY_HELP)

    doctor = command(commands, "doctor", "print a report of the environment, the data and the book, to paste into "
                     "a question", description="Check the environment (versions, device, threads), the data "
                     "(checksums) and the book (built and up to date). Exit code 1 if a problem was found.")
    doctor.add_argument("--build", action="store_true", help="also build the book into a temporary folder (slow)")
    doctor.add_argument("--data", type=folder_name, help=DATA_HELP)
    doctor.add_argument("--root", type=Path, help="the book's folder (default: the project that holds mnist_lib)")

    export_web = command(commands, "export-web", "export a model to JSON for the draw-a-digit page (chapter 8)",
                         description="Write the layers and weights of a model as JSON for the browser (draw.js), "
                                     "after checking that the exported layers reproduce PyTorch's logits.")
    export_web.add_argument("model", nargs="?", default="lenet5_improved",
                            help="a shipped model name (default: lenet5_improved) or any file mnist_lib.load_model reads")
    export_web.add_argument("--out", type=writable_path, metavar="FILE",
                            help="where to write the JSON (default: _static/draw/MODEL.json)")

    bench = command(
        commands, "bench", "time the conventional PyTorch pipeline against mnist_lib's; print tables, write JSON",
        description="Benchmark, in one process on one device: the conventional pipeline (torchvision + DataLoader) "
                    "against mnist_lib's (fit on device-resident data, plain and with the switches that help here), "
                    "each switch on its own, cost against batch and model size, and the training time to 99% test "
                    "accuracy. PASS / FAIL against the targets is in the output. A full run takes about ten minutes "
                    "(on a GPU or a 2-core CPU); --quick checks everything in well under a minute.")
    bench.add_argument("--device", type=device_name, help="cpu, cuda, cuda:N or mps (default: the best available)")
    bench.add_argument("--model", choices=sorted(CONFIGS), default="lenet5-improved",
                       help="the network of the per-epoch comparison, ablation and batch sweep (default lenet5-improved)")
    bench.add_argument("--epochs", type=positive_int, default=2, help="epochs per timed run (default 2)")
    bench.add_argument("--repeats", type=positive_int, default=3, help="repeats of each timed run (default 3)")
    bench.add_argument("--quick", action="store_true",
                       help="every part on a small subset, 1 epoch, 1 repeat, no compilation: checks the code only")
    bench.add_argument("--out", type=writable_path, default=Path("bench.json"), metavar="FILE",
                       help="the JSON file to write (default bench.json)")
    bench.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    bench.add_argument("--threads", type=positive_int, help="torch CPU threads for the whole run (default: torch's)")
    bench.add_argument("--workers", type=non_negative_int,
                       help="DataLoader workers of the baseline (default: measured, the fastest of a few)")
    bench.add_argument("--no-compile", action="store_true", help="skip the torch.compile and CUDA-graph measurements")
    bench.add_argument("--strict", action="store_true", help="exit with code 1 if a target is judged FAIL")

    predict = command(commands, "predict", "read the digit in each picture with a model",
                      description="Print, for each image file, the digit MODEL reads in it and its probability.")
    predict.add_argument("model", help=f"{saved.KINDS}")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="picture files of one digit each (PNG, JPEG, ...)")

    ship = command(commands, "ship", "train a shipped model by its recorded recipe and write it to mnist_lib/weights",
                   description="Train a shipped model's recipe on MNIST (about 30 min on a CPU for the committee) "
                               "and write its weights and JSON sidecar.")
    ship.add_argument("model", choices=saved.SHIPPED, help="which shipped model")
    ship.add_argument("--out", type=Path, metavar="FOLDER", help="where to write it (default: mnist_lib/weights)")
    ship.add_argument("--overwrite", action="store_true", help="replace the model if the folder holds it already")
    ship.add_argument("--epochs", type=positive_int, help="epochs per member (default: the recipe's)")
    ship.add_argument("--limit", type=positive_int, help="train on the first N images only (a quick try)")
    ship.add_argument("--device", type=device_name, help="cpu, cuda, cuda:N or mps (default: the best available)")
    ship.add_argument("--no-progress", action="store_true", help="no progress bar")
    redraw.add_parser(lambda *args, **kwargs: command(commands, *args, **kwargs))
    return parser


def format_epoch(record: dict) -> str:
    """One epoch's line: classifiers report loss and accuracy, autoencoders only the loss."""
    metrics = "  ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in record.items() if k not in ("epoch", "seconds"))
    return f"epoch {record['epoch']:3d}  {metrics}  ({record['seconds']:.1f} s)"


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    config = CONFIGS[args.model]
    changes = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                 "optimizer": args.optimizer, "schedule": args.schedule}.items() if v is not None}
    config = replace(config, **changes)
    for flag in ("resume", "overwrite"):
        if getattr(args, flag) and not args.checkpoint:
            parser.error(f"--{flag} needs --checkpoint FILE, the checkpoint to {flag.replace('overwrite', 'replace')}")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --checkpoint, --overwrite starts a new one over it: choose one")
    if args.save and args.checkpoint and args.save.resolve() == args.checkpoint.resolve():
        parser.error("--save and --checkpoint name the same file; give them different names")
    try:
        device = args.device or choose_device()  # $MNIST_DEVICE, else the best available
    except ValueError as e:
        parser.error(f"${DEVICE_ENV_VAR}: {e}")
    with ExitStack() as stack:
        if args.checkpoint:
            stack.enter_context(ckpt.locked(args.checkpoint))  # two runs on one checkpoint would spoil it
            if args.checkpoint.exists() and not (args.resume or args.overwrite):
                parser.error(f"--checkpoint {args.checkpoint} exists: add --resume to continue its run, "
                             "or --overwrite to start afresh and replace it")
        return train_command(args, parser, config, device)


def for_other_data(model: nn.Module, data: data_mod.MNIST, folder: Path) -> None:
    """Make ``model`` standardise data that are not MNIST's with their own mean and std (said in one line).

    A model that keeps the pixels in [0, 1] keeps them so: it has no standardisation to recompute.
    """
    if (model.standardize.mean.item(), model.standardize.std.item()) == (0.0, 1.0):
        print(f"{folder} holds other data than MNIST; this setup keeps the pixels in [0, 1]")
        return
    mean, std = data_mod.pixel_stats(data.train)
    if not std > 0:
        raise data_mod.MNISTDataError(folder, "training images with more than one grey level",
                                      f"every pixel {mean * 255:.0f}", "check the files")
    print(f"{folder} holds other data than MNIST: pixels standardised with their own mean {mean:.4f} and "
          f"std {std:.4f} (of its {len(data.train):,} training images), not MNIST's")
    model.standardize.mean.fill_(mean)
    model.standardize.std.fill_(std)


def train_command(args: argparse.Namespace, parser: argparse.ArgumentParser, config: Config,
                  device: torch.device) -> int:
    """``train`` once the options are checked (and the checkpoint locked)."""
    data = data_mod.load_mnist(args.data, verify=not args.no_verify)
    train = data.train.head(args.limit) if args.limit else data.train
    seed_everything(args.seed)
    model = config.model()  # its first layer standardises the pixels: a --save file says how to scale its inputs
    if args.no_verify and not data_mod.is_original_mnist(args.data):
        for_other_data(model, data, data_mod.data_root(args.data))
    sizes = ({args.save: files.nbytes(model.state_dict())} if args.save else {}) | (
        {args.checkpoint: ckpt.estimated_size(model)} if args.checkpoint else {})
    try:  # before the work, not after it
        files.check_room(sizes)
    except files.WriteError as e:
        parser.error(str(e))
    print(f"{config}; {count_parameters(model):,} parameters, {len(train):,} training images, on {device}")
    resumed = 0
    if args.checkpoint and args.resume and args.checkpoint.exists():
        state = ckpt.read_checkpoint(args.checkpoint)
        resumed = state["epoch"]
        print(f"resuming from {args.checkpoint}: {resumed} of {state['run']['epochs']} epochs done")
        for record in state["history"]["epochs"]:
            print(format_epoch(record))
    elif args.checkpoint:
        fresh = f"no checkpoint at {args.checkpoint} yet, starting afresh; " if args.resume else ""
        print(f"{fresh}checkpoint after every epoch: {args.checkpoint}", flush=True)
    trained = []

    def epoch_done(record: dict) -> None:
        trained.append(record["epoch"])
        tqdm.write(format_epoch(record), file=sys.stdout)  # above the progress bar, if there is one
        sys.stdout.flush()

    try:
        history = fit(model, train, evals={"test": data.test}, seed=args.seed, device=device,
                      progress=False if args.no_progress else None, checkpoint=args.checkpoint, resume=args.resume,
                      on_epoch=epoch_done, **config.fit_kwargs())
    except KeyboardInterrupt:
        last = trained[-1] if trained else resumed
        hint = ("" if not args.checkpoint else
                f"; add --resume to continue from the last checkpoint, {args.checkpoint} (epoch {last})" if last else
                "; nothing to resume: the first checkpoint is written at the end of epoch 1")
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    if trained:
        final = history.epochs[-1]
        scores = {k.removeprefix("test_"): v for k, v in final.items() if k.startswith("test_")}
    else:  # a finished run, restored: measure its weights rather than repeat the file's numbers
        scores = evaluate(model, data.test, device=device, loss_fn=LOSSES[config.loss], target=config.target)
    print(f"test accuracy: {scores['acc']:.4f}" if config.target == "label" else f"test loss: {scores['loss']:.4f}")
    if args.save:
        saved.save(model, args.save, saved.describe(config.model))
        print(f"model written to {args.save} (mnist_lib.load_model({str(args.save)!r}) reads it back)")
    return 0


def cmd_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # (args.data, not the resolved folder: errors then name $MNIST_DATA if that was used)
    data = data_mod.load_mnist(args.data, verify=not args.no_verify)
    folder = data_mod.data_root(args.data)
    if not args.no_verify:
        print(f"{folder}: checksums OK")
    elif data_mod.is_original_mnist(args.data):
        print(f"{folder}: the original MNIST (checksums match)")
    else:
        mean, std = data_mod.pixel_stats(data.train)
        print(f"{folder}: other data than MNIST (checksums differ); training pixels: mean {mean:.4f}, std {std:.4f}")
    for name, split in (("train", data.train), ("test", data.test)):
        print(f"  {name}: images {tuple(split.images.shape)} {split.images.dtype}, labels {tuple(split.labels.shape)} {split.labels.dtype}")
    return 0


def cmd_doctor(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import doctor

    text, problems = doctor.report(args.root or doctor.PROJECT_ROOT, data=args.data, build=args.build)
    print(text)
    return 1 if problems else 0


def cmd_export_web(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import web

    path = web.export_web(args.model, args.out)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB, logits checked against PyTorch")
    return 0


def cmd_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .bench import format_report, run_bench

    try:
        device = args.device or choose_device()  # $MNIST_DEVICE, else the best available
    except ValueError as e:
        parser.error(f"${DEVICE_ENV_VAR}: {e}")
    if args.quick and (args.epochs != 2 or args.repeats != 3):
        print("note: --quick runs 1 epoch and 1 repeat; --epochs and --repeats are ignored", file=sys.stderr)

    def log(message: str) -> None:
        print(f"  ... {message}", file=sys.stderr, flush=True)

    result = run_bench(device, args.model, args.epochs, args.repeats, args.quick, args.out, seed=args.seed,
                       threads=args.threads, compile=not args.no_compile, workers=args.workers, log=log)
    print(format_report(result))
    print(f"written to {args.out}")
    failed = any(t["result"].startswith("FAIL") for t in result["targets"])
    return 1 if args.strict and failed else 0


def cmd_predict(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .preprocess import to_mnist

    model, failed = saved.load_model(args.model), 0
    for image in args.images:
        try:
            probability, digit = predict_proba(model, to_mnist(image)[None], device="cpu")[0].max(0)
            print(f"{image}: {digit.item()} (probability {probability.item():.2f})")
        except (OSError, ValueError) as e:  # one picture that cannot be read does not stop the others
            print(f"error: {image}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_ship(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    sidecar = saved.ship(args.model, folder=args.out, overwrite=args.overwrite, epochs=args.epochs, limit=args.limit,
                         device=args.device, progress=False if args.no_progress else None)
    print(f"{args.model}: test accuracy {sidecar['test_acc']:.4f}; written to {args.out or saved.paths.WEIGHTS}")
    return 0


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, like the errors (not Python's file:line and source)."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command's own parser, so the hint is its --help
        args.subparser.error(f"unrecognized arguments: {' '.join(extra)}")
    command = {"train": cmd_train, "data": cmd_data, "doctor": cmd_doctor, "export-web": cmd_export_web,
               "bench": cmd_bench, "predict": cmd_predict, "ship": cmd_ship, "figure": redraw.run}[args.command]
    with warnings.catch_warnings():  # restores warnings.showwarning afterwards
        warnings.showwarning = show_warning
        try:
            return command(args, args.subparser)
        except (data_mod.MNISTDataError, CheckpointError, TrainingDiverged, files.WriteError, saved.ModelError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
