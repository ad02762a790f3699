"""``python -m mnist_lib.book DIR``: write the lab copies of the chapters into DIR (:mod:`mnist_lib.book.lab`)."""

import sys

from .lab import main

sys.exit(main())
