"""Run profiles: how big the book's experiments are.

One environment variable, ``MNIST_PROFILE``, is read here and nowhere else:

* ``full`` (the default): the book's real results, on all 60,000 training images.
* ``lecture``: all the data, but one seed and at most three epochs per setup (or the setup's
  own ``short_epochs``, for cheap setups that three epochs would leave far behind), so that a
  chapter runs in class time; its headline numbers must stay close to the full run's
  (:mod:`mnist_lib.book.headlines`, checked by ``make test-lecture``). Experiments too slow
  even so are *replayed*: the chapter shows the full run's stored table and says so.
* ``smoke``: a few hundred images, one epoch, two seeds. Every cell runs in seconds;
  no number means anything. CI and ``nbval`` use it.

Experiments never hard-code sizes twice: they ask the active profile, e.g.
``profile().epochs(20)`` is 20 under ``full`` and 1 under ``smoke``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_VAR = "MNIST_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes of a run. ``None`` means "no limit"."""

    name: str
    max_train: int | None = None
    max_test: int | None = None
    max_epochs: int | None = None
    max_seeds: int | None = None
    about: str = ""  # what the profile's numbers are, for a sentence in a chapter
    # Experiments too slow for class show the full run's stored results (mnist_lib.book.store.measured)
    replay: bool = False
    short_epochs: bool = False  # a setup's own short_epochs, where it has one, replace max_epochs

    def epochs(self, wanted: int, short: int | None = None) -> int:
        """The number of epochs to run when a setup asks for ``wanted`` (``short``: enough for numbers close
        to the full run's, which a profile with ``short_epochs`` runs instead of its ``max_epochs``)."""
        if self.max_epochs is None:
            return wanted
        return min(wanted, short if self.short_epochs and short is not None else self.max_epochs)

    def seeds(self, wanted: int) -> list[int]:
        """The seeds to run when a setup asks for ``wanted`` independent runs."""
        n = wanted if self.max_seeds is None else min(wanted, self.max_seeds)
        return list(range(n))

    def train_size(self, available: int) -> int:
        return available if self.max_train is None else min(available, self.max_train)

    def test_size(self, available: int) -> int:
        return available if self.max_test is None else min(available, self.max_test)


PROFILES = {
    "full": Profile("full", about="the full profile: all the images, every seed and epoch the chapter asks for"),
    "lecture": Profile("lecture", max_epochs=3, max_seeds=1, replay=True, short_epochs=True,
                       about="the lecture profile: all the images, but one seed and fewer epochs for the slower "
                             "setups, so its numbers are close to the full run's, not equal to them; the slowest "
                             "experiments show the full run's stored results, and say so where they do"),
    "smoke": Profile("smoke", max_train=512, max_test=512, max_epochs=1, max_seeds=2,
                     about="the smoke profile: a few hundred images and one epoch, so no number means anything"),
}


def profile(name: str | None = None) -> Profile:
    """The active profile: ``name``, else ``$MNIST_PROFILE``, else ``full``."""
    name = (name or os.environ.get(ENV_VAR) or "full").strip().lower()
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r} (from ${ENV_VAR} or argument); "
            f"expected one of: {', '.join(PROFILES)}"
        ) from None
