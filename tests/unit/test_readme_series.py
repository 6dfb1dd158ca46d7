"""The README's examples of repeating tasks and retries are valid task documents (issue 10)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from after.core.dates import parse_date
from after.core.recurrence import next_after
from after.core.task import validate

README = Path(__file__).resolve().parents[2] / "README.md"


def bodies() -> list[dict[str, object]]:
    text = README.read_text()
    section = text[text.index("### Repeating tasks, retries, missed runs\n"):]
    block = re.search(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block is not None
    return [json.loads(body) for body in re.findall(r"-d '(.*?)'", block.group(1), re.DOTALL)]


def test_the_readme_examples_are_valid_and_start_at_an_occurrence() -> None:
    docs = bodies()
    assert len(docs) == 2
    for doc in docs:
        task = validate({"_id": "example", **doc})
        assert task.repeat is not None
        assert next_after(task.repeat, task.due - 0.001) == task.due  # the date is the first occurrence
    assert validate({"_id": "example", **docs[1]}).retry is not None
    assert parse_date(str(docs[1]["date"])) == parse_date("2026-12-01T08:00:00Z")
