"""The library's shape: one concern per module, no module longer than a reader can hold."""

from pathlib import Path

import pytest

import mnist_lib

MAX_LINES = 400
MODULES = sorted(Path(mnist_lib.__file__).parent.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(Path(mnist_lib.__file__).parent).as_posix())
def test_no_library_module_is_over_the_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines (at most {MAX_LINES}): split it by concern"


def test_the_subpackages_exist():
    root = Path(mnist_lib.__file__).parent
    assert all((root / name / "__init__.py").is_file() for name in ("book", "web", "bench"))
