"""The fault suite's figures (``tests.fault.chaos.figures``) count what they say: a suite whose counting
could not see a lost task or a duplicate run would pass whatever After did."""

from __future__ import annotations

from tests.fault.chaos.figures import Start, count, read_starts

DATE = 1_800_000_000.0


def test_lost_tasks_duplicates_the_documents_tell_of_and_those_they_do_not_are_counted_apart() -> None:
    starts = read_starts("\n".join([
        f"once {DATE + 0.1} hostA 11",
        f"told {DATE + 0.2} hostA 11", f"told {DATE + 9.0} hostB 22",  # a takeover that recorded the first
        f"twice {DATE + 0.3} hostA 11", f"twice {DATE + 0.4} hostB 22",  # a double run nobody recorded
        "a torn line",
    ]))
    interrupted = {"outcome": "interrupted", "by": "manobi@hostA:11"}
    docs = {
        "once": {"status": "done", "result": {"by": "manobi@hostA:11"}},
        "told": {"status": "done", "result": {"by": "manobi@hostB:22"}, "history": [interrupted]},
        "twice": {"status": "done", "result": {"by": "manobi@hostB:22"}},
        "lost": {"status": "running"},
    }
    dates = dict.fromkeys(docs, DATE)
    figures = count("x", list(docs), docs, starts, dates, ahead={"once", "told", "twice"})
    assert (figures.tasks, figures.lost, figures.unrecorded, figures.recorded) == (4, 1, 1, 1)
    assert [round(ms) for ms in figures.details["lateness"]] == [100, 200, 300]
    assert round(figures.p50_ms) == 200
    assert list(figures.examples) == ["unrecorded", "lost"] and not figures.clean
    assert starts["twice"][1] == Start("twice", DATE + 0.4, "hostB", 22)
