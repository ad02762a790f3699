"""Browser tests of the built website (headless Chromium): ``make browser``."""
