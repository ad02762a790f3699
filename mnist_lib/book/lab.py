"""The chapters in JupyterLab: glued numbers shown in the prose of the cells a reader runs.

On the website, MyST-NB replaces each ``{glue:text}`name:fmt``` of the prose with the value
a code cell glued under ``name``. JupyterLab's MyST renderer (``jupyterlab-myst``) knows no
glue, but it evaluates inline ``{eval}`` expressions in the running kernel when a markdown
cell is run. So ``make lab`` opens *lab copies* of the chapters (:func:`lab_copy`), whose
prose asks the kernel for each glued value with ``{eval}`book.glued("name", "fmt")```, and
the kernel remembers every value glued since the chapter imported :mod:`mnist_lib.book`
(:func:`watch`, :func:`glued`). Run the cells in order and the prose shows this run's
numbers; before its code cell has run, a value shows as a note saying so.

    python -m mnist_lib.book DIR     # write the lab copies of chapters/ into DIR
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

GLUE_ROLE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
NOT_YET = "[run the cells above]"

_glued: dict[str, str] = {}  # name -> the glued value's text/plain, as MyST-NB reads it


def _record(msg: dict) -> dict:
    """A display hook: remember what ``myst_nb.glue`` publishes, and publish it unchanged."""
    content = msg.get("content", {})
    scrapbook = content.get("metadata", {}).get("scrapbook")
    if scrapbook and "name" in scrapbook:
        data = content.get("data", {})
        text = data.get(scrapbook.get("mime_prefix", "") + "text/plain")
        if text is not None:
            _glued[scrapbook["name"]] = text
    return msg


def watch() -> None:
    """In a Jupyter kernel, start remembering glued values (idempotent); elsewhere, do nothing."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    publisher = getattr(shell, "display_pub", None)
    if publisher is not None and hasattr(publisher, "register_hook") and _record not in publisher._hooks:
        publisher.register_hook(_record)


class Text(str):
    """A string that displays as itself, without the quotes of ``repr``."""

    def __repr__(self) -> str:
        return str(self)


def formatted(text: str, spec: str) -> Text:
    """A glued value's text/plain as ``{glue:text}`name:spec``` shows it."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return Text(text)  # words glued with glue_text show as they are
    return Text(format(value, spec) if spec else str(value))


def glued(name: str, spec: str = "") -> Text:
    """The value glued under ``name`` in this kernel, formatted as ``{glue:text}`name:spec``` shows it."""
    return formatted(_glued[name], spec) if name in _glued else Text(NOT_YET)


def _expression(name: str, spec: str) -> str:
    return f"book.glued({name!r}, {spec!r})"


def to_lab(source: str) -> str:
    """Markdown with each ``{glue:text}`` role replaced by an ``{eval}`` of :func:`glued`."""
    return GLUE_ROLE.sub(lambda m: f"{{eval}}`{_expression(m[1], m[2] or '')}`", source)


def glued_in(notebook) -> dict[str, str]:
    """What a run of ``notebook`` glued: name -> text/plain (as MyST-NB reads it from the outputs)."""
    found = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            text = output.get("data", {}).get(scrapbook.get("mime_prefix", "") + "text/plain")
            if "name" in scrapbook and text is not None:
                found[scrapbook["name"]] = text
    return found


def lab_copy(chapter: Path, folder: Path) -> Path:
    """Write ``chapter``'s lab copy into ``folder``, signed as trusted.

    Its prose goes through :func:`to_lab`; each markdown cell starts with the values of the
    chapter's committed (full) run as its evaluated expressions, so that the prose shows
    numbers before any cell has run, as on the website; running the cells replaces them.
    """
    import nbformat
    from nbformat.sign import NotebookNotary

    notebook = nbformat.read(chapter, as_version=4)
    committed = glued_in(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            roles = GLUE_ROLE.findall(cell.source)
            cell.source = to_lab(cell.source)
            shown = [{"expression": _expression(name, spec), "result": {
                "status": "ok", "data": {"text/plain": formatted(committed[name], spec)}, "metadata": {}}}
                for name, spec in roles if name in committed]
            if shown:
                cell.metadata["user_expressions"] = shown
    target = folder / chapter.name
    nbformat.write(notebook, target)
    NotebookNotary().sign(notebook)  # a trusted notebook: JupyterLab shows the evaluated expressions
    return target


def main(argv: list[str] | None = None) -> int:
    import hashlib
    import json

    from ..paths import CHECKOUT

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mnist_lib.book DIR  (writes the lab copies of the chapters into DIR)",
              file=sys.stderr)
        return 2
    folder = Path(args[0])
    folder.mkdir(parents=True, exist_ok=True)
    ledger = folder / ".written.json"  # the hash of each copy as written: a different file is the reader's work
    written = json.loads(ledger.read_text()) if ledger.is_file() else {}
    digest = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()  # noqa: E731
    fresh, kept = [], []
    for chapter in sorted((CHECKOUT / "chapters").glob("*.ipynb")):
        target = folder / chapter.name
        if target.is_file() and digest(target) != written.get(target.name):
            kept.append(target.name)  # run or edited since: never overwrite it (delete it for a fresh copy)
            continue
        written[target.name] = digest(lab_copy(chapter, folder))
        fresh.append(target.name)
    ledger.write_text(json.dumps(written, indent=1) + "\n")
    print(f"lab copies in {folder}: {len(fresh)} written" + (f"; kept, as the reader left them (delete one for "
          f"a fresh copy): {', '.join(kept)}" if kept else ""))
    return 0

