"""A chapter as a reveal.js slide deck that opens without network: ``make slides CH=04``.

    python tools/slides.py 04 [--out _build/slides]

The deck is made from the committed notebook (its full-profile outputs), not re-executed:

* a title slide (the chapter's title and first paragraph), the objectives, and one slide per
  section (``##``) with its heading and first paragraph; the summary and the exercises
  (without their solutions);
* every figure, each on its own slide under its section, with its caption;
* the small tables (at most ``MAX_TABLE_ROWS`` rows) that code cells print: the headline
  tables. Code cells themselves are never shown.

A cell tagged ``slide`` is always shown, one tagged ``no-slide`` never. Glued numbers are
filled in from the notebook's outputs, figure references become "Figure N", citations
"(key)"; mathematics is rendered by KaTeX. reveal.js and KaTeX come from npm (versions pinned
in ``tools/package.json``; ``npm ci`` once, on the first ``make slides``) and are copied next
to the deck, so the folder works offline and can be copied to a lecture-room computer.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from mnist_lib.book.lab import formatted, glued_in

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
MAX_TABLE_ROWS = 12
VENDOR = {  # what the deck needs from each npm package, copied next to it
    "reveal.js": ["dist/reveal.js", "dist/reveal.css", "dist/theme/white.css", "dist/theme/fonts"],
    "katex": ["dist/katex.min.js", "dist/katex.min.css", "dist/fonts"],
}
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table").use(dollarmath_plugin, double_inline=True)


def glued(values: dict[str, str], spec: str) -> str:
    """``name:format`` as the website shows it (``values``: :func:`mnist_lib.book.lab.glued_in`)."""
    name, _, fmt = spec.partition(":")
    if name not in values:
        raise KeyError(f"glue {name!r} is not in the notebook's outputs: re-execute the chapter")
    return formatted(values[name], fmt)


def myst_to_markdown(text: str, values: dict[str, str], figures: list[str]) -> str:
    """MyST roles and directives as plain Markdown: glue filled in, solutions dropped."""
    text = re.sub(r"(`{3,})\{dropdown\}.*?\n\1", "", text, flags=re.S)  # solutions stay out of the slides
    text = re.sub(r"(`{3,})\{(\w+)\}[^\n]*\n(.*?)\n\1", r"\3", text, flags=re.S)  # other directives: their body
    text = re.sub(r"\{glue:text\}`([^`]+)`", lambda m: glued(values, m.group(1)), text)
    text = re.sub(r"\{numref\}`([^`]+)`",
                  lambda m: f"Figure {figures.index(m.group(1)) + 1}" if m.group(1) in figures else "a figure", text)
    text = re.sub(r"\{cite\}`([^`]+)`", r"(\1)", text)
    text = re.sub(r"\{\w+\}`([^`]+)`", r"\1", text)  # any other role: its text
    return re.sub(r"\[([^\]]+)\]\([^)]*\.(?:ipynb|md)[^)]*\)", r"\1", text)  # links to other pages: their words


def figure_name(cell) -> str | None:
    return cell.metadata.get("mystnb", {}).get("figure", {}).get("name")


def section(title: str, body: str) -> str:
    return f"<section>\n<h2>{html.escape(title)}</h2>\n{body}\n</section>"


def paragraphs(markdown: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", markdown) if p.strip()]


def slides(path: Path) -> str:
    """The reveal.js ``<section>`` elements of one chapter."""
    nb = nbformat.read(path, as_version=4)
    values, figures = glued_in(nb), [n for n in map(figure_name, nb.cells) if n]
    groups: list[list[str]] = []  # one list of vertical slides per section
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if "no-slide" in tags or "remove-cell" in tags:
            continue
        if cell.cell_type == "markdown":
            groups.extend(markdown_slides(myst_to_markdown(cell.source, values, figures), tags))
        elif cell.cell_type == "code" and groups:
            groups[-1].extend(output_slides(cell, figures, "slide" in tags))
    return "\n".join(f"<section>\n{''.join(group)}\n</section>" if len(group) > 1 else group[0]
                     for group in groups if group)


def markdown_slides(markdown: str, tags: set[str]) -> list[list[str]]:
    """New sections for the headings of one markdown cell (``#`` title, ``##`` sections); the rest is not shown."""
    groups = []
    for part in re.split(r"(?m)^(?=#{1,2} )", markdown):
        heading = re.match(r"(#{1,2}) (.+)", part)
        if not heading:
            if "slide" in tags and part.strip():
                groups.append([section("", MARKDOWN.render(part))])
            continue
        title, rest = heading.group(2).strip(), paragraphs(part[heading.end():])
        lists = [p for p in rest if re.match(r"(\d+\.|-) ", p)]
        if title in ("Summary", "Objectives") or title.startswith("Exercises"):
            shown = lists or rest[:1]  # the bullet points / the exercises, without their solutions
            if title.startswith("Exercises"):
                shown = [p for p in rest if re.match(r"(\d+\.|\*\*Exercise)", p)]
        else:
            shown = rest[:1]
            while shown and shown[-1].rstrip().endswith(":") and len(shown) < len(rest):
                shown.append(rest[len(shown)])  # a paragraph that announces an equation or a list: keep them together
        level = "h1" if heading.group(1) == "#" else "h2"
        body = MARKDOWN.render("\n\n".join(shown))
        groups.append([f"<section>\n<{level}>{html.escape(title)}</{level}>\n{body}\n</section>"])
    return groups


def output_slides(cell, figures: list[str], forced: bool) -> list[str]:
    """A slide for the cell's figure (with its caption) or for a small table it prints."""
    name, shown = figure_name(cell), []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "image/png" in data and (name or forced):
            caption = cell.metadata["mystnb"]["figure"].get("caption", "") if name else ""
            number = f"Figure {figures.index(name) + 1}. " if name else ""
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", caption)
            image = f'<img src="data:image/png;base64,{data["image/png"].strip()}" alt="{html.escape(alt)}">'
            shown.append(f'<section>\n{image}\n<p class="caption">{html.escape(number + caption)}</p>\n</section>')
        elif "text/html" in data and "<table" in data["text/html"]:
            table = data["text/html"]
            if forced or table.count("<tr") - 1 <= MAX_TABLE_ROWS:
                shown.append(f'<section class="table">\n{table}\n</section>')
    return shown


def install_vendor(out: Path) -> None:
    """reveal.js and KaTeX next to the deck (npm ci on first use, from tools/package-lock.json)."""
    modules = TOOLS / "node_modules"
    if not all((modules / package).is_dir() for package in VENDOR):
        if shutil.which("npm") is None:
            sys.exit("error: make slides needs npm once, to fetch reveal.js and KaTeX (apt-get install npm)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(TOOLS)], check=True)
    for package, files in VENDOR.items():
        for name in files:
            source, target = modules / package / name, out / "vendor" / package / Path(name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="vendor/reveal.js/reveal.css">
<link rel="stylesheet" href="vendor/reveal.js/white.css">
<link rel="stylesheet" href="vendor/katex/katex.min.css">
<style>
.reveal {{ font-size: 26px; }}
.reveal h1 {{ font-size: 1.9em; }} .reveal h2 {{ font-size: 1.4em; }}
.reveal section img {{ max-height: 520px; margin: 0; }}
.reveal .caption {{ font-size: 0.6em; text-align: left; }}
.reveal section.table {{ font-size: 0.55em; }}
.reveal table {{ margin: 0 auto; }}
</style>
</head>
<body>
<div class="reveal"><div class="slides">
{slides}
</div></div>
<script src="vendor/katex/katex.min.js"></script>
<script src="vendor/reveal.js/reveal.js"></script>
<script>
document.querySelectorAll(".math").forEach(function (el) {{
  katex.render(el.textContent, el, {{displayMode: el.classList.contains("block"), throwOnError: false}});
}});
Reveal.initialize({{hash: true, width: 1280, height: 760, margin: 0.04}});
</script>
</body>
</html>
"""


def build(chapter: str, out: Path) -> Path:
    """Write the deck of chapter ``chapter`` (e.g. ``"04"``) into ``out``; returns its path."""
    matches = sorted((ROOT / "chapters").glob(f"{chapter}_*.ipynb"))
    if len(matches) != 1:
        sys.exit(f"error: no chapter {chapter!r}: expected a number like 04 (chapters/NN_*.ipynb)")
    path = matches[0]
    out.mkdir(parents=True, exist_ok=True)
    install_vendor(out)
    title = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0].lstrip("# ").strip()
    deck = out / f"{path.stem}.html"
    deck.write_text(PAGE.format(title=html.escape(title), slides=slides(path)), encoding="utf-8")
    return deck


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", help="the chapter's number, e.g. 04")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "slides", help="the folder (default _build/slides)")
    args = parser.parse_args()
    try:
        deck = build(args.chapter, args.out)
    except KeyError as e:
        sys.exit(f"error: {e.args[0]}")
    print(f"{deck}: {deck.read_text().count('<section') } slides; open it in a browser (works offline)")


if __name__ == "__main__":
    main()
