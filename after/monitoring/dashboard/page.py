"""The dashboard's page: ``index.html`` with its stylesheet and scripts inline, and the
Content-Security-Policy that lets exactly those run on Apache CouchDB. Pure.

Apache CouchDB 3 sends every attachment with ``Content-Security-Policy: sandbox`` (``[csp]
attachments_header_value``), so that no attachment anyone uploaded can run a script with a visitor's
session: the page's scripts would not run either. ``after init`` therefore replaces that value with
``policy(page)``: the sandbox stays, with scripts, forms and the origin allowed, and ``script-src`` /
``style-src`` name the page's one inline script and stylesheet by their SHA-256. Every other attachment
on the server still runs no script at all (none has that hash), loads nothing from elsewhere and
submits no form. The script is the same for every database (the database and the names it reads come in
a JSON block, which is data, not code), so one policy serves every After database of a server.

The sources stay readable files in ``static/``: plain scripts (no modules, no build tool), joined here in
the order below inside one function, so they share its scope and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

SCRIPTS = ("couch.js", "view.js", "chart.js", "app.js")
STYLESHEET = "dashboard.css"
TEMPLATE = "index.html"
PLACES = {"style": "/*after:style*/", "config": "/*after:config*/", "script": "/*after:script*/"}
# How After's policy starts: init recognises its own value (to update it) by this.
SANDBOX = "sandbox allow-scripts allow-same-origin allow-forms allow-modals"
COUCHDB_DEFAULT = "sandbox"


@dataclass(frozen=True)
class Page:
    html: bytes
    script: str  # the inline script's text, as hashed
    style: str


def source(name: str) -> str:
    """A file of ``static/`` (installed with the package: pyproject's package data)."""
    return resources.files("after.monitoring.dashboard").joinpath("static", name).read_text(encoding="utf-8")


def script() -> str:
    parts = [f"// --- {name} ---\n{source(name)}" for name in SCRIPTS]
    return "\n(function () {\n'use strict';\n" + "\n".join(parts) + "}());\n"


def build(config: dict[str, Any]) -> Page:
    """``index.html`` for one database's configuration."""
    code, style = script(), source(STYLESHEET)
    for text in (code, style):
        if "</" + "script" in text.lower() or "</" + "style" in text.lower():
            raise ValueError("an inline script or stylesheet must not contain a closing tag")
    data = json.dumps(config, indent=1, sort_keys=True).replace("</", "<\\/")  # cannot close the block
    html = source(TEMPLATE)
    for place, text in (("style", style), ("config", data), ("script", code)):
        if html.count(PLACES[place]) != 1:
            raise ValueError(f"{TEMPLATE} must hold {PLACES[place]} once")
        html = html.replace(PLACES[place], text)
    return Page(html.encode(), code, style)


def digest(text: str) -> str:
    """A CSP hash source: ``'sha256-<base64>'`` of the UTF-8 text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def policy(page: Page) -> str:
    """The attachments' Content-Security-Policy that lets this page, and only it, run."""
    return "; ".join([
        SANDBOX, "default-src 'none'", f"script-src {digest(page.script)}", f"style-src {digest(page.style)}",
        "connect-src 'self'", "img-src 'self' data:", "form-action 'none'", "base-uri 'none'",
        "frame-ancestors 'self'",
    ])


def is_replaceable(value: str) -> bool:
    """CouchDB's default policy, or one After wrote: init may set its own. An operator's is kept."""
    return value.strip() == COUCHDB_DEFAULT or value.startswith(SANDBOX + ";")
