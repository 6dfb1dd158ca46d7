"""systemctl argv builders and parsers."""

from __future__ import annotations

import pytest

from after.systemd import systemctl


def test_unit_name_of_a_worker() -> None:
    assert systemctl.unit_name("manobi") == "after@manobi.service"
    assert systemctl.worker_name("after@manobi.service") == "manobi"


@pytest.mark.parametrize("name", ["", "a b", "a/b", "x" * 65, "über", "..", "a;rm -rf /"])
def test_invalid_worker_names_are_refused(name: str) -> None:
    with pytest.raises(systemctl.InvalidName, match="invalid worker name"):
        systemctl.unit_name(name)


def test_start_and_enable_argv() -> None:
    units = ["after@a.service", "after@b.service"]
    assert systemctl.start(units) == ["systemctl", "start", "after@a.service", "after@b.service"]
    assert systemctl.start(units, enable=True) == ["systemctl", "enable", "--now", *units]
    assert systemctl.stop(units) == ["systemctl", "stop", *units]
    assert systemctl.stop(units, disable=True) == ["systemctl", "disable", "--now", *units]


def test_show_and_list_argv() -> None:
    assert systemctl.show(["after@a.service"], ["Id", "MainPID"]) == [
        "systemctl", "show", "--property=Id,MainPID", "after@a.service",
    ]
    assert systemctl.list_units()[:2] == ["systemctl", "list-units"]
    assert systemctl.list_units()[-1] == "after@*.service"


def test_parse_show_blocks() -> None:
    text = "Id=after@a.service\nMainPID=12\nActiveState=active\n\nId=after@b.service\nMainPID=0\n"
    assert systemctl.parse_show(text) == [
        {"Id": "after@a.service", "MainPID": "12", "ActiveState": "active"},
        {"Id": "after@b.service", "MainPID": "0"},
    ]


def test_parse_show_keeps_equals_signs_in_values() -> None:
    assert systemctl.parse_show("ExecStart={ path=/usr/bin/after ; argv[]=after run a }") == [
        {"ExecStart": "{ path=/usr/bin/after ; argv[]=after run a }"}
    ]


def test_parse_list_units() -> None:
    text = (
        "after@a.service loaded active running After worker a\n"
        "● after@b.service loaded failed failed After worker b\n"
        "after.service loaded active exited After job scheduler\n"
    )
    assert systemctl.parse_list_units(text) == ["after@a.service", "after@b.service"]


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ({"ActiveState": "failed", "Result": "exit-code", "ExecMainCode": "1", "ExecMainStatus": "2"},
         "exited with status 2"),
        ({"ActiveState": "activating", "SubState": "auto-restart", "Result": "watchdog"}, "watchdog"),
        ({"ActiveState": "failed", "Result": "signal", "ExecMainStatus": "9"}, "signal 9"),
        ({"ActiveState": "failed", "Result": "timeout"}, "READY"),
        ({"ActiveState": "failed", "Result": "start-limit-hit"}, "reset-failed"),
    ],
)
def test_failure_reason(state: dict[str, str], words: str) -> None:
    assert words in systemctl.failure_reason(state)
    assert not systemctl.is_active(state)
