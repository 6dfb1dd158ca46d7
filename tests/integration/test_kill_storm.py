"""A short kill storm (issue 7, item 5): processes of one worker name get SIGKILL mid-run, restarted at once.

The long run with the figures is ``python -m tests.fault.kill_storm`` (3000 tasks, 20 kills). Here: 2
processes, 400 tasks due over 8 seconds, 5 kills. Every task ends ``done``, and every job start beyond a
task's first (a killed process's job may still have run) is recorded as ``interrupted`` in its history,
and only those: ``attempts`` is every task's number of job starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fault.kill_storm import Settings, storm
from tests.server import TestServer

pytestmark = pytest.mark.couch


def test_a_short_kill_storm_loses_nothing_and_records_every_rerun(couch_server: TestServer,
                                                                   tmp_path: Path) -> None:
    figures = storm(couch_server, tmp_path, Settings(tasks=400, kills=5, spread=8.0, settle_timeout=60.0))
    assert figures.kills == 5
    assert figures.lost == 0, figures.examples
    assert figures.unrecorded_reruns == 0, figures.examples
    # start journals (issue 7, item 3): a claim the killed process never started its job for leaves no
    # interrupted entry and no attempt
    assert figures.phantom_interruptions == 0, figures.examples
    assert figures.attempts_off == 0, figures.examples
    assert figures.conflicts == 0
