"""The command line: ``python -m mnist_lib COMMAND ...`` (``--help`` for each command)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from . import data as data_mod
from .bench import MODELS as BENCH_MODELS
from .checkpoint import CheckpointError, atomic_save
from .experiments import CONFIGS
from .models import count_parameters
from .train import DEVICE_ENV_VAR, OPTIMIZERS, SCHEDULES, TrainingDiverged, choose_device, fit, seed_everything


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
    path = Path(text)
    folder = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: it is a folder; name a file")
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {str(folder)!r} {problem}")
    try:  # a real write: os.access says yes to root, also on read-only file systems
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: the folder {str(folder)!r} is not writable ({e.strerror})"
        ) from None
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
    train.set_defaults(subparser=train)
    train.add_argument("model", choices=sorted(CONFIGS), help="which setup to train")
    train.add_argument("--epochs", type=positive_int, help="number of epochs")
    train.add_argument("--batch-size", type=positive_int, help="images per step")
    train.add_argument("--lr", type=positive_float, help="learning rate")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optimizer")
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    train.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    train.add_argument("--device", type=device_name, help="cpu, cuda, cuda:N or mps (default: the best available)")
    train.add_argument("--limit", type=positive_int, help="train on the first N images only (quick tries)")
    train.add_argument("--save", type=writable_path, metavar="FILE", help="write the trained weights (state_dict) to this file")
    train.add_argument("--checkpoint", type=writable_path, metavar="FILE",
                       help="write the whole training state to this file after every epoch (atomically)")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint if it exists (same setup and options), else start afresh")
    train.add_argument("--data", help="folder of the four MNIST IDX files (default: the project's data/mnist)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    check = commands.add_parser("data", help="verify the MNIST files and print what they hold")
    check.set_defaults(subparser=check)
    check.add_argument("--data", help="folder of the four MNIST IDX files (default: the project's data/mnist)")

    doctor = commands.add_parser(
        "doctor", help="print a report of the environment, the data and the book, to paste into a question",
        description="Check the environment (versions, device, threads), the data (checksums) and the book "
                    "(built and up to date). Exit code 1 if a problem was found.",
    )
    doctor.set_defaults(subparser=doctor)
    doctor.add_argument("--build", action="store_true", help="also build the book into a temporary folder (slow)")
    doctor.add_argument("--data", help="folder of the four MNIST IDX files (default: the project's data/mnist)")
    doctor.add_argument("--root", type=Path, help="the book's folder (default: the project that holds mnist_lib)")

    export_web = commands.add_parser(
        "export-web", help="export a shipped model's weights to JSON for the draw-a-digit page (chapter 8)",
        description="Write the layers and weights of a model in weights/ as JSON for the browser (draw.js), after "
                    "checking that the exported layers reproduce PyTorch's logits.",
    )
    export_web.set_defaults(subparser=export_web)
    export_web.add_argument("model", nargs="?", default="lenet5_improved",
                            help="a model name in weights/ (default: lenet5_improved), or the path of its .json sidecar or .pt")
    export_web.add_argument("--out", type=writable_path, metavar="FILE",
                            help="where to write the JSON (default: _static/draw/MODEL.json)")

    bench = commands.add_parser(
        "bench", help="time the conventional PyTorch pipeline against mnist_lib's; print tables, write JSON",
        description="Benchmark, in one process on one device: the conventional pipeline (torchvision + DataLoader) "
                    "against mnist_lib's (fit on device-resident data, plain and with the switches that help here), "
                    "each switch on its own, cost against batch and model size, and the training time to 99% test "
                    "accuracy. PASS / FAIL against the targets is in the output. A full run takes about ten minutes "
                    "(on a GPU or a 2-core CPU); --quick checks everything in well under a minute.",
    )
    bench.set_defaults(subparser=bench)
    bench.add_argument("--device", type=device_name, help="cpu, cuda, cuda:N or mps (default: the best available)")
    bench.add_argument("--model", choices=list(BENCH_MODELS), default="lenet5",
                       help="the network of the per-epoch comparison, ablation and batch sweep (default lenet5)")
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
    return parser


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    config = CONFIGS[args.model]
    changes = {k: v for k, v in {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "optimizer": args.optimizer, "schedule": args.schedule,
    }.items() if v is not None}
    config = replace(config, **changes)
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint FILE, the checkpoint to resume from")
    if args.save and args.checkpoint and args.save.resolve() == args.checkpoint.resolve():
        parser.error("--save and --checkpoint name the same file; give them different names")
    try:
        device = args.device or choose_device()  # $MNIST_DEVICE, else the best available
    except ValueError as e:
        parser.error(f"${DEVICE_ENV_VAR}: {e}")
    data = data_mod.load_mnist(args.data)
    train = data.train.head(args.limit) if args.limit else data.train
    seed_everything(args.seed)
    model = config.model()
    print(f"{config}; {count_parameters(model):,} parameters, {len(train):,} training images, on {device}")
    if args.checkpoint and args.resume and args.checkpoint.exists():
        print(f"resuming from {args.checkpoint}")
    elif args.checkpoint:
        fresh = f"no checkpoint at {args.checkpoint} yet, starting afresh; " if args.resume else ""
        print(f"{fresh}checkpoint after every epoch: {args.checkpoint}")
    history = fit(model, train, evals={"test": data.test}, seed=args.seed, device=device,
                  progress=False if args.no_progress else None, checkpoint=args.checkpoint, resume=args.resume,
                  **config.fit_kwargs())
    for r in history.epochs:  # classifiers report loss and accuracy, autoencoders only the loss
        metrics = "  ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in r.items() if k not in ("epoch", "seconds"))
        print(f"epoch {r['epoch']:3d}  {metrics}  ({r['seconds']:.1f} s)")
    if config.target == "label":
        print(f"test accuracy: {history.final('test_acc'):.4f}")
    else:
        print(f"test loss: {history.final('test_loss'):.4f}")
    if args.save:
        atomic_save(model.state_dict(), args.save)
        print(f"weights written to {args.save}")
    return 0


def cmd_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    data = data_mod.load_mnist(args.data)  # (not the resolved folder: its errors name $MNIST_DATA if that was used)
    print(f"{data_mod.data_root(args.data)}: checksums OK")
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

    try:
        path = web.export_web(args.model, args.out)
    except web.WebModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": cmd_train, "data": cmd_data, "doctor": cmd_doctor, "export-web": cmd_export_web,
               "bench": cmd_bench}[args.command]
    try:
        return command(args, args.subparser)
    except (data_mod.MNISTDataError, CheckpointError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        checkpoint = getattr(args, "checkpoint", None)
        hint = f"; add --resume to continue from the last checkpoint, {checkpoint}" if checkpoint else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
