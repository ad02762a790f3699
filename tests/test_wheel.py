"""The library as a user gets it from ``pip install``: a wheel, used outside the checkout.

The wheel is built from a copy of the files it is made of (so the build leaves nothing in
the checkout), installed with ``pip install --target`` into a temporary folder, and used
by a Python started in another folder with that folder first on its path: the shipped
weights must come from the wheel (package data), the data from a folder given by path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import PROJECT_ROOT, SHIPPED
from mnist_lib.data import load_split
from mnist_lib import load_model, predict_proba

N_IMAGES = 8

# Run in the installed copy: which mnist_lib it is, and what its shipped model says.
USE_THE_WHEEL = f"""
import json, sys
import mnist_lib
from mnist_lib import load_mnist
from mnist_lib import load_model, paths, predict_proba

data = load_mnist(root=sys.argv[1])
model = load_model("lenet5_improved")
print(json.dumps({{
    "file": mnist_lib.__file__,
    "weights": str(paths.WEIGHTS / "lenet5_improved.pt"),
    "sizes": [len(data.train.labels), len(data.test.labels)],
    "probabilities": predict_proba(model, data.test.images[:{N_IMAGES}], device="cpu").tolist(),
}}))
"""


def pip(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project's wheel, installed into a folder of its own; returns that folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(PROJECT_ROOT / "mnist_lib", source / "mnist_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp / "dist"), str(source), cwd=tmp)
    (wheel,) = (tmp / "dist").glob("mnist_lib-*.whl")
    pip("install", "--no-deps", "--no-index", "--target", str(tmp / "target"), str(wheel), cwd=tmp)
    return tmp / "target"


def test_wheel_ships_the_weights_and_the_licence(installed):
    (wheel,) = (installed.parent / "dist").glob("mnist_lib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"mnist_lib/weights/{p.name}" for p in (PROJECT_ROOT / "mnist_lib" / "weights").glob("*.*")}
    assert "mnist_lib/weights/lenet5_improved.pt" in shipped
    assert shipped <= names, f"not in the wheel: {sorted(shipped - names)}"
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_installed_library_works_from_another_folder(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("MNIST_DATA", None)
    proc = subprocess.run([sys.executable, "-c", USE_THE_WHEEL, str(SHIPPED)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ran = json.loads(proc.stdout)
    # The wheel's copy was imported (not the checkout's editable install), with its own weights.
    assert Path(ran["file"]).is_relative_to(installed), ran["file"]
    assert Path(ran["weights"]).is_relative_to(installed), ran["weights"]
    assert ran["sizes"] == [60_000, 10_000]
    # Same weights as the checkout's: the same probabilities for the same digits.
    expected = predict_proba(load_model("lenet5_improved"), load_split("test", SHIPPED).images[:N_IMAGES], device="cpu")
    torch.testing.assert_close(torch.tensor(ran["probabilities"]), expected, rtol=1e-4, atol=1e-5)
