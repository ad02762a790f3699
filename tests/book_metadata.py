"""The book's metadata in one place, and every line elsewhere that repeats it.

The one place is the ``[tool.mnist_book]`` table of ``pyproject.toml`` (author, repository,
year; the version is ``mnist_lib.__version__``, which ``[project]`` reads too). Files that cannot read it (``_config.yml``,
``CITATION.cff``, the README, the licences, the chapters' first cell) repeat its values on
the lines that :data:`RULES` names. ``tests/test_publish.py`` checks that they agree, and

    python tests/book_metadata.py      (make metadata)

rewrites them after a change: moving the repository is a one-line edit of pyproject.toml
followed by ``make metadata``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Metadata:
    """The values that several files repeat (read from pyproject.toml)."""

    author: str
    repository: str  # https://github.com/OWNER/NAME
    year: int
    version: str

    @property
    def pages(self) -> str:
        """The address of the published website (GitHub Pages of the repository)."""
        owner, name = self.repository.rstrip("/").split("/")[-2:]
        return f"https://{owner.lower()}.github.io/{name}/"

    def value(self, key: str) -> str:
        return str(getattr(self, key))


def read_metadata(root: Path = ROOT) -> Metadata:
    """The metadata of the checkout at ``root``, from its pyproject.toml."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    table = project["tool"]["mnist_book"]
    version = re.search(r'^__version__ = "([^"]+)"', (root / "mnist_lib" / "__init__.py").read_text(), re.M).group(1)
    return Metadata(table["author"], table["repository"], int(table["year"]), version)


@dataclass(frozen=True)
class Rule:
    """Every match of ``pattern`` (one group, multiline) in the files ``glob`` holds ``key``."""

    glob: str
    pattern: str
    key: str


URL = r"(https://[^\s\"\\)>]+?)"  # a URL up to a quote, backslash, bracket or space
RULES = [
    Rule("pyproject.toml", r'^authors = \[\{name = "(.+)"\}\]$', "author"),
    Rule("pyproject.toml", r'^Repository = "(.+)"$', "repository"),
    Rule("pyproject.toml", r'^Documentation = "(.+)"$', "pages"),
    Rule("_config.yml", r"^author: (.+)$", "author"),
    Rule("_config.yml", r'^copyright: "(\d+)"$', "year"),
    Rule("_config.yml", r"^  url: (\S+)$", "repository"),
    Rule("CITATION.cff", r'^ *- name: "(.+)"$', "author"),
    Rule("CITATION.cff", r'^version: "(.+)"$', "version"),
    Rule("CITATION.cff", r'^ *repository-code: "(.+)"$', "repository"),
    Rule("CITATION.cff", r'^ *url: "(.+)"$', "pages"),
    Rule("CITATION.cff", r"^  year: (\d+)$", "year"),
    Rule("LICENSE", r"^Copyright \(c\) (\d+) ", "year"),
    Rule("LICENSE", r"^Copyright \(c\) \d+ (.+)$", "author"),
    Rule("LICENSE-CONTENT.md", r'Credit "([^"]+)"', "author"),
    Rule("README.md", r"git\+" + URL + r'"', "repository"),
    Rule("README.md", r"^> (.+) \(\d+\)\. \*The MNIST Book\*", "author"),
    Rule("README.md", r"^> .+ \((\d+)\)\. \*The MNIST Book\*", "year"),
    Rule("README.md", r"^> .+ \*The MNIST Book\*\. " + URL + r"$", "pages"),
    # The chapters' first cell installs the library from the repository (Colab, Binder).
    Rule("chapters/*.ipynb", r"git\+" + URL + r'\\"', "repository"),
]


def _files(rule: Rule, root: Path) -> list[Path]:
    return sorted(root.glob(rule.glob))


def disagreements(root: Path = ROOT, meta: Metadata | None = None, rules: list[Rule] = RULES) -> list[str]:
    """Each line that does not repeat the metadata (or a file that lacks the line): what to fix."""
    meta = meta or read_metadata(root)
    problems = []
    for rule in rules:
        files = _files(rule, root)
        if not files:
            problems.append(f"{rule.glob}: missing")
        for path in files:
            found = [m.group(1) for m in re.finditer(rule.pattern, path.read_text(), re.M)]
            name = path.relative_to(root).as_posix()
            if not found:
                problems.append(f"{name}: expected a line with the {rule.key} {meta.value(rule.key)!r} "
                                f"(the pattern {rule.pattern!r} of tests/book_metadata.py)")
            problems += [f"{name}: {rule.key} is {value!r}, pyproject.toml says {meta.value(rule.key)!r}"
                         for value in found if value != meta.value(rule.key)]
    return problems


def sync(root: Path = ROOT, meta: Metadata | None = None) -> list[Path]:
    """Rewrite every line of :data:`RULES` with the metadata; return the files changed."""
    meta = meta or read_metadata(root)
    changed = []
    for rule in RULES:
        for path in _files(rule, root):
            text = path.read_text()
            new = re.sub(rule.pattern, lambda m: m.group(0)[:m.start(1) - m.start(0)] + meta.value(rule.key)
                         + m.group(0)[m.end(1) - m.start(0):], text, flags=re.M)
            if new != text:
                path.write_text(new)
                changed.append(path)
    return changed


if __name__ == "__main__":
    for path in sync():
        print(f"updated {path.relative_to(ROOT)}")
    left = disagreements()
    print("\n".join(left) if left else "the metadata agree everywhere")
    sys.exit(1 if left else 0)
