"""``python -m mnist_lib figure``: list the book's figures, redraw one from the results store.

Redrawing reads the committed results of the full profile (:mod:`mnist_lib.book.store`)
and trains nothing. With ``--profile``, the chapter that owns the figure is executed first
under that profile (its results go to a temporary store), so the figure shows fresh
measurements: seconds under ``smoke``, the chapter's full time under ``full``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import paths
from ..profiles import PROFILES
from . import store

FORMATS = (".png", ".svg", ".pdf")


def add_parser(command) -> None:
    """The ``figure`` command's arguments, on the parser that ``command(name, help, **kwargs)`` makes."""
    parser = command("figure", "list the book's figures, or redraw one from the stored results (no training)",
                     description="Redraw a figure of the book from results/ (the committed full-profile results) "
                                 "in seconds; with --profile, re-measure it first by executing its chapter.")
    parser.add_argument("name", nargs="?", help="the figure's name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the figures: name, chapter, title")
    parser.add_argument("--out", type=Path, metavar="FILE", help="where to draw it: .png, .svg or .pdf (default NAME.png)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="re-measure under this profile before drawing")


def remeasure(chapter: str, profile: str, folder: Path) -> None:
    """Execute ``chapter`` under ``profile`` with its results stored in ``folder`` (a copy of the notebook)."""
    notebook = paths.CHECKOUT / "chapters" / f"{chapter}.ipynb"
    if not notebook.is_file():  # a page of the book outside chapters/, e.g. networks.ipynb
        notebook = paths.CHECKOUT / f"{chapter}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook} not found: re-measuring needs a checkout of the book")
    env = os.environ | {"MNIST_PROFILE": profile, "MNIST_PROGRESS": "0", store.ENV_VAR: str(folder)}
    print(f"executing {notebook.name} under the {profile} profile ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "jupyter", "execute", "--timeout=-1", f"--output={folder / notebook.name}",
                    str(notebook)], cwd=notebook.parent, env=env, check=True, capture_output=True)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The ``figure`` command."""
    from .figures import FIGURES, draw  # matplotlib: only for this command

    if args.list:
        width = max(map(len, FIGURES))
        for spec in FIGURES.values():
            print(f"{spec.name:{width}}  {spec.chapter}  {spec.title}")
        return 0
    if not args.name:
        parser.error("name a figure, or --list them")
    if args.name not in FIGURES:
        parser.error(f"no figure named {args.name!r}; --list shows the {len(FIGURES)} figures")
    out = args.out or Path(f"{args.name}.png")
    if out.suffix.lower() not in FORMATS:
        parser.error(f"--out must end in {', '.join(FORMATS)}, got {out.name!r}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = None
        if args.profile:
            folder = Path(tmp)
            try:
                remeasure(FIGURES[args.name].chapter, args.profile, folder)
            except subprocess.CalledProcessError as e:
                print(f"error: the chapter failed under the {args.profile} profile:\n{e.stderr.decode()[-2000:]}",
                      file=sys.stderr)
                return 1
        try:
            fig = draw(args.name, folder)
        except store.ResultNotFound as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    fig.savefig(out, bbox_inches="tight")
    made = store.about(FIGURES[args.name].results[0], folder) if folder is None else {"profile": args.profile}
    print(f"{out} ({', '.join(f'{k} {v}' for k, v in made.items() if k in ('profile', 'code', 'date'))})")
    return 0
