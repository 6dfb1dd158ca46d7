"""A task the worker cannot run: the error that carries the reason written into it."""

from __future__ import annotations


class InvalidTask(ValueError):
    """A task document the worker cannot run; ``reason`` is written to the document."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), "a value")
