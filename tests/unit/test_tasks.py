"""What `after add` builds from the command line."""

from __future__ import annotations

import pytest

from after.cli.tasks import new_task, parse_argument, parse_delay, table, when
from after.core.dates import format_date
from after.core.invalid import InvalidTask


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), ("250ms", 0.25),
    ("PT10M", 600.0), ("1.5h", 5400.0),
])
def test_delays(text: str, seconds: float) -> None:
    assert parse_delay(text) == seconds


def test_a_bad_delay_says_so() -> None:
    with pytest.raises(InvalidTask, match="delay 'soon' is not an ISO 8601 duration"):
        parse_delay("soon")


def test_arguments_are_json_when_they_parse_and_strings_otherwise() -> None:
    assert [parse_argument(text) for text in ["2", "teste", "[1]", "true", "rm -rf /"]] == \
        [2, "teste", [1], True, "rm -rf /"]


def test_new_task_is_the_original_document_shape() -> None:
    doc = new_task("manobi", "start_campaign", ["2", "3", "teste"], 1_318_377_600.0, task_id="x")
    assert doc == {"_id": "x", "worker": "manobi", "date": "2011-10-12T00:00:00.000Z",
                   "job": {"name": "start_campaign", "arguments": [2, 3, "teste"]}, "status": "waiting"}


def test_new_task_refuses_what_validation_refuses() -> None:
    with pytest.raises(InvalidTask, match="worker must be a name"):
        new_task("bad name!", "noop", [], 0.0)


def test_when_takes_a_date_or_a_delay_but_not_both() -> None:
    assert when(100.0, None, "10s") == 110.0
    assert format_date(when(0.0, "2011-10-12", None)) == "2011-10-12T00:00:00.000Z"
    with pytest.raises(InvalidTask, match="either --at or --in"):
        when(0.0, "2011-10-12", "5m")


def test_table_lists_one_line_per_task_under_a_header() -> None:
    doc = {"_id": "t1", "worker": "manobi", "status": "err", "date": "2011-10-12",
           "job": {"name": "x"}, "result": {"reason": "exit code 3"}}
    lines = table([doc]).splitlines()
    assert lines[0].split() == ["ID", "WORKER", "STATUS", "NEXT", "JOB", "REPEAT", "RESULT"]
    assert lines[1].split() == ["t1", "manobi", "err", "-", "x", "-", "exit", "code", "3"]
