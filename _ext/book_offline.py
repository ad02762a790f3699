"""Sphinx extension: the book's website works offline, without errors in the browser console.

1. **MathJax from the book, not a CDN.** Sphinx loads MathJax from cdn.jsdelivr.net by
   default, so formulas break (with a console error) without a network. This serves the
   vendored copy in ``_ext/static/mathjax`` (see its README) as ``_static/mathjax``. The
   folder is added to ``html_static_path`` only when the builder starts, after Jupyter
   Book has put every ``.js`` file of the configured static folders on every page, so
   MathJax is still loaded only on pages with formulas.
2. **Each inline script once.** Sphinx 7.4 writes an inline script that an extension adds
   after the builder started twice into every page (once kept with file name ``None``,
   once re-added with ``""`` before writing). For sphinx-thebe's
   ``const THEBE_JS_URL = ...`` that is a SyntaxError on every page. The page's script
   list is de-duplicated just before the page is written.

Enabled in ``_config.yml``: ``sphinx: local_extensions: {book_offline: _ext/}``.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
MATHJAX = "mathjax/tex-mml-chtml.js"  # relative to _static


def _use_vendored_mathjax(app, config) -> None:
    if "://" in (config.mathjax_path or ""):  # Sphinx's CDN default, unless the book chose a path itself
        config.mathjax_path = MATHJAX


def _add_static_folder(app) -> None:
    if str(STATIC) not in app.config.html_static_path:
        app.config.html_static_path.append(str(STATIC))


def _each_script_once(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # the builder's own list: it restores it after the page


def setup(app):
    app.connect("config-inited", _use_vendored_mathjax)
    app.connect("builder-inited", _add_static_folder)
    app.connect("html-page-context", _each_script_once, priority=900)  # after every extension has added its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
