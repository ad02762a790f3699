"""Where things are: the package's folders and, in a checkout, the book's.

Every path the library computes from its own location is computed here, once. In an
installed wheel only the package folders exist; the book's folders (``CHECKOUT``) are
those of a git checkout and may be missing.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
WEIGHTS = PACKAGE / "weights"  # the shipped trained networks: package data, inside the wheel too
CHECKOUT = PACKAGE.parent  # the book's folder when mnist_lib runs from a checkout
CHECKOUT_DATA = CHECKOUT / "data" / "mnist"  # where `make data` puts the MNIST files
BENCH = CHECKOUT / "bench"  # the committed benchmark and timing results (JSON)
STATIC = CHECKOUT / "_static"  # the website's static files (the draw page's model export)


def in_checkout() -> bool:
    """Whether mnist_lib runs from a checkout of the book (not from an installed wheel)."""
    return (CHECKOUT / "_toc.yml").is_file()
