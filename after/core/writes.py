"""A write the worker asks for: a transform of the current document (``after.core.transitions``) and
its purpose. The writer applies it, and again to the fresh document after a conflict."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from after.core.task import Document
from after.core.transitions import Transform


class Purpose(enum.StrEnum):
    """What a write is for; the writer routes on it, the loop dispatches its answer on it."""

    ACKNOWLEDGE = "acknowledge"  # a client's new or changed task: scheduled
    REJECT = "reject"  # an invalid task: err with the reason
    CANCEL = "cancel"  # a client's cancel: canceled
    CLAIM = "claim"  # running, under our lease
    RENEW = "renew"  # a longer lease
    RELEASE = "release"  # scheduled again (the worker stops)
    FINISH = "finish"  # the job's result


def never(doc: Document) -> bool:
    return False


@dataclass(frozen=True)
class WriteRequest:
    """Write ``transform(doc)``; after a 409, re-read and apply ``transform`` to the fresh document.

    ``applied`` recognises a write that already took effect (an answer lost to a broken connection).
    """

    task_id: str
    purpose: Purpose
    base: Document
    transform: Transform
    applied: Callable[[Document], bool] = field(default=never, compare=False)
    fresh: bool = False  # read the document anew before the first try (a takeover: see every branch)
