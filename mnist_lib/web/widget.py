"""The draw-a-digit page as one self-contained piece of HTML (script, style and model inlined).

It works in Jupyter, on the built website and from ``file://``; the browser side is plain
JavaScript in ``_static/draw/draw.js`` (and its ``draw.css``).
"""

from __future__ import annotations

import html
import json
import secrets

from .export import DEFAULT_MODEL, STATIC_DIR, WebModelError, read_export


def static_source(name: str) -> str:
    """The text of ``_static/draw/NAME`` (``draw.js``, ``draw.css``)."""
    path = STATIC_DIR / name
    if not path.exists():
        raise WebModelError(f"{path}: missing; it is part of the project (restore it: git checkout -- _static)")
    return path.read_text()


def _script_safe(text: str) -> str:
    """Text that can sit inside <script> or <style>: no "</" can end the element early."""
    return text.replace("</", "<\\/")


def _script_json(value) -> str:
    """``value`` as JSON that can sit inside <script>: every "<" escaped as \\u003c, which JSON reads back as "<".

    Escaping "</" alone is not enough: "<!--" followed by "<script" makes the HTML parser
    ignore the next "</script>", and the page's own scripts never run.
    """
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def widget_html(model: str = DEFAULT_MODEL, spec: dict | None = None) -> str:
    """The draw-a-digit widget as one piece of HTML, with the exported model inlined.

    On the built website, Jupyter Book loads ``_static/draw/draw.js`` and ``draw.css`` on
    every page, and the widget uses them. Anywhere else (a Jupyter notebook, a page
    without them) the inlined copies of both are used instead, so the HTML runs wherever
    it is shown with its scripts, ``file://`` included. No network either way.
    """
    spec = spec or read_export(model)
    uid = "mnist-draw-" + secrets.token_hex(4)
    model_json = _script_json(spec)
    css = _script_json(static_source("draw.css"))
    return (
        f'<div class="mnist-draw-widget" id="{uid}">\n'
        f'<div class="mnist-draw" aria-label="{html.escape(spec.get("title", "digit recogniser"))}">'
        '<noscript>This page draws with JavaScript; turn it on to try it.</noscript></div>\n'
        f'<script type="application/json" class="mnist-draw-model">{model_json}</script>\n'
        '<script>if (typeof MnistDraw === "undefined") {  // not on the website: bring draw.js and draw.css along\n'
        f'{_script_safe(static_source("draw.js"))}\n'
        '(function () {\n'
        '  var style = document.createElement("style");\n'
        f'  style.textContent = {css};\n'
        '  document.head.appendChild(style);\n'
        '})();\n'
        '}</script>\n'
        '<script>(function () {\n'
        '  var me = document.currentScript;\n'
        f'  var host = (me && me.closest && me.closest(".mnist-draw-widget")) || document.getElementById("{uid}");\n'
        '  var model = JSON.parse(host.querySelector("script.mnist-draw-model").textContent);\n'
        '  MnistDraw.mount(host.querySelector(".mnist-draw"), model);\n'
        '})();</script>\n'
        '</div>\n'
    )


def widget(model: str = DEFAULT_MODEL):
    """The widget for a notebook cell: ``IPython.display.HTML`` of :func:`widget_html`."""
    from IPython.display import HTML

    return HTML(widget_html(model))
