"""Helpers for the JavaScript kept in Python strings (``after.store.couch.design``)."""

from __future__ import annotations

import json
from typing import Any


def js(value: Any) -> str:
    """A Python value as a JavaScript literal (JSON is valid ES5)."""
    return json.dumps(value, sort_keys=True)


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{{name}}`` replaced; a name left unfilled is a bug, so it raises."""
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    if "{{" in template:
        raise ValueError("unfilled placeholder in a design function: " + template.split("{{")[1][:30])
    return template
